//! Batch output files: `COPY ... TO` and `INSERT INTO` a file table write to
//! a staging name and are renamed into place when the statement succeeds
//! (see `connectors::file_sink`), so a failed or killed run leaves the old
//! output intact and no half file.
//!
//! `COPY ... TO 'dir/'` replaces the directory's files of its format (run
//! twice, it holds one copy of the rows); `'append' 'true'` among its options
//! adds files instead. A single file is replaced whole. `INSERT INTO` adds
//! files to a directory table, and to a single-file table rewrites the file
//! with its old rows followed by the new ones; `INSERT OVERWRITE` replaces.

use std::sync::Arc;

use arrow::array::{RecordBatch, UInt64Array};
use datafusion::common::plan_err;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::physical_plan::FileOutputMode;
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::dml::{CopyTo, InsertOp};
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::memory::MemoryStream;
use futures::TryStreamExt;

use crate::connectors::file_sink::{FileTarget, Staging};

/// The file table an `INSERT` writes to, if it is one (and the statement an
/// insert, not an update or delete).
pub fn insert_target(dml: &DmlStatement) -> Option<(FileTarget, InsertOp)> {
    let WriteOp::Insert(op) = dml.op else {
        return None;
    };
    let provider = source_as_provider(&dml.target).ok()?;
    let target = FileTarget::of(&provider)?;
    // DataFusion's own `CREATE EXTERNAL TABLE` (it keeps its SQL as the
    // definition) keeps DataFusion's rule: no INSERT into a single file.
    if target.single_file && provider.get_table_definition().is_some() {
        return None;
    }
    Some((target, op))
}

/// `COPY ... TO` through a staging directory.
pub async fn copy(ctx: &SessionContext, copy: &CopyTo) -> Result<SendableRecordBatchStream> {
    let mut copy = copy.clone();
    // DataFusion's parser files options without a dot under `format.`.
    let append = match copy.options.remove("format.append").as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return plan_err!("COPY option 'append' is 'true' or 'false', not '{other}'"),
    };
    let url = ListingTableUrl::parse(&copy.output_url)?;
    let mode = match copy.options.get("single_file_output").map(|v| v.trim()) {
        Some("true") => FileOutputMode::SingleFile,
        Some("false") => FileOutputMode::Directory,
        // DataFusion's own planner reports a bad value.
        _ => FileOutputMode::Automatic,
    };
    let single_file = mode.single_file_output(&url);
    if append && single_file {
        return plan_err!(
            "COPY ... TO '{}' writes one file, which cannot be appended to: copy to a directory ('{}/') to add files",
            copy.output_url,
            copy.output_url.trim_end_matches('/')
        );
    }
    if !copy.partition_by.is_empty() && single_file {
        // DataFusion writes partitions as directories whatever the name.
        return plan_err!(
            "COPY ... TO '{}' PARTITIONED BY writes a directory: end the path with '/'",
            copy.output_url
        );
    }
    let state = ctx.state();
    let staging = Staging::begin(&state, &url, single_file).await?;
    copy.output_url = staging.part_url("0")?.as_str().to_string();
    copy.options
        .insert("single_file_output".into(), single_file.to_string());
    let extension = copy.file_type.get_ext();
    let schema = Arc::clone(copy.output_schema.inner());
    let written = async {
        let stream = ctx
            .execute_logical_plan(LogicalPlan::Copy(copy))
            .await?
            .execute_stream()
            .await?;
        let batches: Vec<RecordBatch> = stream.try_collect().await?;
        let replace = (!append).then_some(extension.as_str());
        staging.commit("0", replace, None).await?;
        Ok::<_, DataFusionError>(batches)
    }
    .await;
    let written = written.map_err(|e| staging.explain(e));
    let cleaned = staging.finish().await;
    let batches = written?;
    cleaned?;
    Ok(Box::pin(MemoryStream::try_new(batches, schema, None)?))
}

/// `INSERT INTO` a file table through a staging directory.
pub async fn insert(
    ctx: &SessionContext,
    dml: &DmlStatement,
    target: FileTarget,
    op: InsertOp,
) -> Result<SendableRecordBatchStream> {
    target.check()?;
    let state = ctx.state();
    let plan = state.create_physical_plan(&dml.input).await?;
    let input = datafusion::physical_plan::execute_stream(plan, state.task_ctx())?;
    let replace = !matches!(op, InsertOp::Append);
    let staging = Staging::begin(&state, &target.url, target.single_file).await?;
    let written = target
        .write_part(&state, &staging, "0", input, replace, true)
        .await;
    let cleaned = staging.finish().await;
    let rows = written?;
    cleaned?;
    let schema = Arc::clone(dml.output_schema.inner());
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(UInt64Array::from(vec![rows]))])?;
    Ok(Box::pin(MemoryStream::try_new(vec![batch], schema, None)?))
}

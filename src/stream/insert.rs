//! `INSERT INTO sink SELECT ...` from a continuous query.

use std::sync::Arc;

use datafusion::common::{not_impl_err, plan_err};
use datafusion::datasource::source_as_provider;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{DmlStatement, WriteOp};
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::StreamExt;

use super::changelog::{is_changelog, unmarked_schema};
use super::checkpoint::CheckpointOptions;
use super::driver::{execute, execute_outputs};
use super::metrics::StreamMetrics;
use crate::connectors::file::DEFAULT_ROLLOVER;
use crate::connectors::file_sink::{FileTarget, OnceStream};
use crate::plan::SourceCatalog;
use crate::sql::Emit;

/// `INSERT INTO sink SELECT ...` continuously: the query's rows stream into
/// the target table's own writer (`insert_into`), which runs as long as the
/// query does. The result is the writer's row count, at the end.
pub async fn execute_insert(
    state: &SessionState,
    insert: &DmlStatement,
    emit: Option<Emit>,
    catalog: &SourceCatalog,
    metrics: Arc<StreamMetrics>,
) -> Result<SendableRecordBatchStream> {
    let WriteOp::Insert(op) = insert.op else {
        return not_impl_err!("{} on a continuous query; only INSERT INTO streams", insert.op);
    };
    if emit == Some(Emit::Changes) {
        return not_impl_err!(
            "INSERT with EMIT CHANGES: the sinks take appended rows only; drop EMIT CHANGES"
        );
    }
    let target = source_as_provider(&insert.target)?;
    let rollover = catalog.source_of(&target).map(|s| s.rollover);
    if let Some(file) = FileTarget::of(&target) {
        // A file table takes an updating query's changelog as it is, as
        // plain columns (a Parquet or Arrow file keeps field metadata, and a
        // query reading it is not updating); with checkpoints, exactly once.
        let rollover = rollover.unwrap_or(DEFAULT_ROLLOVER);
        let exactly_once = CheckpointOptions::of(state).dir.is_some();
        let (schema, rows) = execute_outputs(state, &insert.input, emit, catalog, metrics).await?;
        let schema = Arc::new(unmarked_schema(&schema));
        let count = Arc::clone(insert.output_schema.inner());
        return super::rolling_sink::execute(state, file, rows, schema, rollover, exactly_once, count).await;
    }
    let rows = execute(state, &insert.input, emit, catalog, metrics).await?;
    let rows = changelog_into(rows, &target, insert.table_name.to_string(), catalog)?;
    let schema = rows.schema();
    let partition: Arc<dyn PartitionStream> = Arc::new(OnceStream::new(rows));
    let input = Arc::new(StreamingTableExec::try_new(
        schema,
        vec![partition],
        None,
        [],
        true,
        None,
    )?);
    let writer = target.insert_into(state, input, op).await?;
    execute_stream(writer, state.task_ctx())
}

/// The rows of an updating query (a changelog: `op` first) for `target`, not
/// a file table (which is written the changelog as it is, `op` first: in
/// JSON, lines a `'changelog-json'` table reads back): a blackhole takes the rows without
/// it (it only counts them); the other sinks take appended rows only, and
/// are refused with the fix. Whether rows are a changelog is the planner's
/// mark on the change column ([`is_changelog`]): a query's own first
/// column named `op` is a column like any other.
fn changelog_into(
    rows: SendableRecordBatchStream,
    target: &Arc<dyn datafusion::catalog::TableProvider>,
    table: String,
    catalog: &SourceCatalog,
) -> Result<SendableRecordBatchStream> {
    let schema = rows.schema();
    if !is_changelog(&schema) {
        return Ok(rows);
    }
    if catalog
        .source_of(target)
        .is_some_and(|s| s.connector == "blackhole")
    {
        let columns: Vec<usize> = (1..schema.fields().len()).collect();
        let projected = Arc::new(schema.project(&columns)?);
        let stream_schema = Arc::clone(&projected);
        let stream = rows.map(move |batch| Ok(batch?.project(&columns)?));
        return Ok(Box::pin(RecordBatchStreamAdapter::new(stream_schema, stream)));
    }
    plan_err!(
        "INSERT INTO {table}: the query's result is updating (a changelog of -U/+U/-D rows, from a GROUP BY without a window or an outer join of two streams), and {table} takes appended rows: window the aggregate (TUMBLE, HOP, ...), insert into a file table (written the changelog, its op column first), or print it with --format changelog"
    )
}

//! `INSERT INTO sink SELECT ...` from a continuous query.

use std::sync::Arc;

use datafusion::common::not_impl_err;
use datafusion::datasource::source_as_provider;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{DmlStatement, WriteOp};
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use super::driver::execute;
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
    let rows = execute(state, &insert.input, emit, catalog, metrics).await?;
    if let Some(file) = FileTarget::of(&target) {
        let rollover = rollover.unwrap_or(DEFAULT_ROLLOVER);
        let count = Arc::clone(insert.output_schema.inner());
        return super::rolling_sink::execute(state, file, rows, rollover, count).await;
    }
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

//! `INSERT INTO sink SELECT ...` from a continuous query.

use std::sync::Arc;

use datafusion::common::not_impl_err;
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{DmlStatement, WriteOp};
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use super::driver::execute;
use super::metrics::StreamMetrics;
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
    let rows = execute(state, &insert.input, emit, catalog, metrics).await?;
    let schema = rows.schema();
    let partition: Arc<dyn PartitionStream> = Arc::new(OnceStream {
        schema: Arc::clone(&schema),
        stream: std::sync::Mutex::new(Some(rows)),
    });
    let input = Arc::new(StreamingTableExec::try_new(
        schema,
        vec![partition],
        None,
        [],
        true,
        None,
    )?);
    let target = source_as_provider(&insert.target)?;
    let writer = target.insert_into(state, input, op).await?;
    execute_stream(writer, state.task_ctx())
}

/// A stream handed to DataFusion as the one partition of a plan.
struct OnceStream {
    schema: arrow::datatypes::SchemaRef,
    stream: std::sync::Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OnceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("continuous query rows")
    }
}

impl PartitionStream for OnceStream {
    fn schema(&self) -> &arrow::datatypes::SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<datafusion::execution::TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().ok().and_then(|mut s| s.take());
        match taken {
            Some(stream) => stream,
            None => Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::once(async {
                    Err(DataFusionError::Internal(
                        "a continuous query's rows can be read once".into(),
                    ))
                }),
            )),
        }
    }
}

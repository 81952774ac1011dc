//! The continuous executor: incremental operators over unbounded sources.
//!
//! The plan is analyzed without batch's window lowering and optimized by
//! DataFusion, then [`planner`] maps it to a source and a chain of
//! [`operator::Operator`]s. One task drives the chain: it awaits the source,
//! passes each event through every operator, and sends the rows that come out
//! into a bounded channel, so a slow reader (a pipe, a terminal) slows the
//! source down and memory stays flat. Rows are sent as soon as an operator
//! emits them; dropping the result stream stops the task.

pub mod final_aggregate;
pub mod groups;
pub mod late;
pub mod lookup_join;
pub mod operator;
pub mod planner;
pub mod session_aggregate;
pub mod sort;
pub mod source;
pub mod stateless;
pub mod window_aggregate;
pub mod window_functions;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use arrow::array::RecordBatch;
use datafusion::common::not_impl_err;
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use crate::plan::SourceCatalog;
use crate::sql::Emit;
use operator::{Event, NO_WATERMARK, Operator, StreamBatch};
use planner::{Pipeline, StreamPlanner};
use source::Source;

/// What a running continuous query reports (for stderr at the end, and the
/// REPL's status line).
#[derive(Debug)]
pub struct StreamMetrics {
    /// Rows read from the source.
    pub rows_in: AtomicU64,
    /// Rows that came after a window they belong to had closed.
    pub late_rows: AtomicU64,
    /// The source's watermark, nanoseconds since the epoch.
    pub watermark: AtomicI64,
    /// Where late rows are written, if the table says so.
    pub late_output: std::sync::OnceLock<std::path::PathBuf>,
}

impl Default for StreamMetrics {
    fn default() -> Self {
        Self {
            rows_in: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            watermark: AtomicI64::new(NO_WATERMARK),
            late_output: std::sync::OnceLock::new(),
        }
    }
}

/// The column a changelog's rows carry their change in (`+I`, `-U`, `+U`,
/// `-D`), first in `EMIT CHANGES` results.
pub const CHANGE_COLUMN: &str = "op";

/// `schema` with the change column first.
pub fn changelog_schema(schema: &arrow::datatypes::Schema) -> arrow::datatypes::Schema {
    let change = Arc::new(arrow::datatypes::Field::new(
        CHANGE_COLUMN,
        arrow::datatypes::DataType::Utf8,
        false,
    ));
    arrow::datatypes::Schema::new(
        std::iter::once(change)
            .chain(schema.fields().iter().cloned())
            .collect::<Vec<_>>(),
    )
}

/// `batch` with its rows' changes first; `None` marks every row an insert
/// (`+I`), as appended rows are.
pub fn with_changes(
    batch: &RecordBatch,
    changes: Option<arrow::array::ArrayRef>,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let change =
        changes.unwrap_or_else(|| Arc::new(arrow::array::StringArray::from(vec!["+I"; batch.num_rows()])));
    let columns = std::iter::once(change)
        .chain(batch.columns().iter().cloned())
        .collect();
    RecordBatch::try_new(Arc::new(changelog_schema(&batch.schema())), columns)
}

/// Batches in flight between the pipeline and its reader.
const OUTPUT_CHANNEL_CAPACITY: usize = 2;

/// Plan `plan` for continuous execution (for EXPLAIN and [`execute`]).
pub async fn plan(
    state: &SessionState,
    plan: &LogicalPlan,
    emit: Option<Emit>,
    catalog: &SourceCatalog,
    metrics: Arc<StreamMetrics>,
) -> Result<Pipeline> {
    let optimized = state.optimize(plan)?;
    StreamPlanner::new(state, catalog, metrics)
        .with_emit(emit)
        .plan(&optimized)
        .await
}

/// Run `plan` continuously; rows come out as windows close.
pub async fn execute(
    state: &SessionState,
    plan: &LogicalPlan,
    emit: Option<Emit>,
    catalog: &SourceCatalog,
    metrics: Arc<StreamMetrics>,
) -> Result<SendableRecordBatchStream> {
    let pipeline = self::plan(state, plan, emit, catalog, Arc::clone(&metrics)).await?;
    let schema = Arc::clone(&pipeline.schema);
    let source = Source::try_new(pipeline.source, state).await?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(OUTPUT_CHANNEL_CAPACITY);
    let task = tokio::spawn(run(
        source,
        pipeline.operators,
        pipeline.changes,
        sender.clone(),
        metrics,
    ));
    let errors = sender;
    // The task's own failure (a panic) reaches the reader as an error.
    let watcher = tokio::spawn(async move {
        if let Err(e) = task.await
            && !e.is_cancelled()
        {
            let _ = errors
                .send(Err(DataFusionError::Internal(format!(
                    "the continuous query stopped: {e}"
                ))))
                .await;
        }
    });
    let stream = futures::stream::unfold(
        (receiver, AbortOnDrop(watcher)),
        |(mut receiver, guard)| async move { receiver.recv().await.map(|item| (item, (receiver, guard))) },
    );
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
}

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

/// Stops the pipeline task when the result stream is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The pipeline task: source events through the operators to the channel.
async fn run(
    source: Source,
    mut operators: Vec<Box<dyn Operator>>,
    changes: bool,
    output: tokio::sync::mpsc::Sender<Result<RecordBatch>>,
    metrics: Arc<StreamMetrics>,
) {
    let table = source.table().to_string();
    let (mut events_in, _reader) = read_ahead(source);
    while let Some(events) = events_in.recv().await {
        let result = events.and_then(|events| {
            for event in &events {
                match event {
                    Event::Data(batch) => {
                        metrics
                            .rows_in
                            .fetch_add(batch.batch.num_rows() as u64, Ordering::Relaxed);
                    }
                    Event::Watermark(w) => metrics.watermark.store(*w, Ordering::Relaxed),
                }
            }
            push_through(&mut operators, events)?
                .into_iter()
                .map(|rows| match changes {
                    true => Ok(with_changes(&rows.batch, rows.changes)?),
                    false => Ok(rows.batch),
                })
                .collect::<Result<Vec<_>>>()
        });
        let batches = match result {
            Ok(batches) => batches,
            Err(e) => {
                let e = e.context(format!("reading table '{table}'"));
                let _ = output.send(Err(e)).await;
                return;
            }
        };
        for batch in batches {
            if output.send(Ok(batch)).await.is_err() {
                return; // the reader is gone
            }
        }
        if operators.iter().any(|o| o.is_finished()) {
            return;
        }
    }
}

/// Source events read ahead of the operators.
const SOURCE_CHANNEL_CAPACITY: usize = 2;

/// Read the source on its own task, a few events ahead of the operators, so
/// that decoding (a CSV file, JSON, a generator) and the operators use two
/// cores; the channel is bounded, so a slow pipeline slows the source. The
/// reader stops when the returned guard is dropped.
fn read_ahead(mut source: Source) -> (tokio::sync::mpsc::Receiver<Result<Vec<Event>>>, AbortOnDrop) {
    let (sender, receiver) = tokio::sync::mpsc::channel(SOURCE_CHANNEL_CAPACITY);
    let reader = tokio::spawn(async move {
        while let Some(events) = source.next().await {
            if sender.send(events).await.is_err() {
                return; // the pipeline stopped
            }
        }
    });
    (receiver, AbortOnDrop(reader))
}

/// Events through every operator in order; the rows that come out the end.
fn push_through(operators: &mut [Box<dyn Operator>], mut events: Vec<Event>) -> Result<Vec<StreamBatch>> {
    for operator in operators.iter_mut() {
        let mut next = Vec::with_capacity(events.len());
        for event in events {
            match event {
                Event::Data(batch) => operator.process(batch, &mut next)?,
                Event::Watermark(w) => operator.on_watermark(w, &mut next)?,
            }
        }
        events = next;
    }
    Ok(events
        .into_iter()
        .filter_map(|e| match e {
            Event::Data(b) if b.batch.num_rows() > 0 => Some(b),
            _ => None,
        })
        .collect())
}

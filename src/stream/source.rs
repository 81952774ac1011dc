//! A continuous query's source: a table scanned as one ordered stream, with
//! the watermark assigned row by row.
//!
//! Any table provider works (stdin, followed files, generators, and bounded
//! files replayed with `--mode continuous`): the scan is planned by the
//! provider itself on one partition, so a file reads front to back and a
//! directory in path order. The watermark of `WATERMARK FOR ts AS expr` is
//! `max(expr)` over all earlier rows, computed per batch as a prefix max.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::catalog::TableProvider;
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;

use super::changelog::Changes;
use super::checkpoint::manifest::{FileIdentity, SourcePosition, fingerprint_bytes};
use super::operator::{
    END_OF_INPUT, Event, NO_WATERMARK, Nanos, RowWatermarks, StreamBatch, nanos_values, to_nanos,
};
use crate::connectors::changelog::CHANGE_CODE_COLUMN;
use crate::connectors::follow::{FilePositions, FollowTable};

/// What the planner hands the source: a table, the columns the query reads,
/// and its declared watermark.
#[derive(Clone)]
pub struct SourceSpec {
    /// The table's name, for messages.
    pub table: String,
    /// The provider to scan.
    pub provider: Arc<dyn TableProvider>,
    /// The provider's columns the query reads (`None`: all).
    pub projection: Option<Vec<usize>>,
    /// Filters the provider may apply itself (the plan re-checks inexact ones).
    pub filters: Vec<Expr>,
    /// At most this many rows.
    pub fetch: Option<usize>,
    /// `WATERMARK FOR ... AS expr`, over the provider's columns.
    pub watermark: Option<Expr>,
    /// Whether the source ends (a file, a bounded generator).
    pub bounded: bool,
    /// The query windows by processing time (`PROCTIME()`): the watermark is
    /// the wall clock, not `watermark`, and it moves while no rows come.
    pub processing_time: bool,
    /// `'scan.watermark.idle-timeout'` of a source that never ends: quiet
    /// this long, it stops holding back a merge's watermark (see
    /// [`super::idle`]).
    pub idle_timeout: Option<std::time::Duration>,
    /// The table is scanned more than once and can be read once (stdin):
    /// its scans share one source, which reads every column and applies no
    /// filter (each scan selects its own after it).
    pub shared: bool,
}

/// How often a processing-time source moves its watermark while no rows
/// come, so that a window over `PROCTIME()` closes on time on a quiet input.
pub const CLOCK_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// A running source.
pub struct Source {
    table: String,
    plan: Arc<dyn ExecutionPlan>,
    state: SessionState,
    partition: usize,
    stream: Option<SendableRecordBatchStream>,
    /// How each row's watermark is computed.
    watermark: Option<WatermarkFn>,
    /// The watermark is the wall clock (see [`SourceSpec::processing_time`]).
    processing_time: bool,
    /// The scanned columns the query reads, in its order.
    output: Vec<usize>,
    /// The scan's first column is each row's change (a changelog source).
    changelog: bool,
    current: Nanos,
    ended: bool,
    /// Rows of the scan still to pass over before the first one sent (a
    /// query resumed from a checkpoint: those rows were taken before it).
    to_skip: u64,
    /// Where a followed file's scan is in its files, for checkpoints.
    files: Option<FilePositions>,
    /// What resuming found (a followed file rotated while the query was down).
    notices: Vec<String>,
    /// The local files it reads once, as they were when the scan was planned.
    read_once: Vec<FileIdentity>,
}

impl Source {
    /// Plan the scan (one partition, so rows keep their order).
    pub async fn try_new(spec: SourceSpec, state: &SessionState) -> Result<Self> {
        Self::resumed(spec, state, None, false).await
    }

    /// A source that goes on from `resume` (a checkpoint's position; with
    /// `checkpointed`, it keeps what its checkpoints need): a
    /// generator starts at its row; a followed file seeks to each file's
    /// byte offset; any other source scans again and passes over the rows
    /// before it.
    pub async fn resumed(
        spec: SourceSpec,
        state: &SessionState,
        resume: Option<&SourcePosition>,
        checkpointed: bool,
    ) -> Result<Self> {
        let (rows_before, watermark_before) = resume.map_or((0, NO_WATERMARK), |p| (p.rows, p.watermark));
        // stdin gives new rows after a restart: none is passed over.
        let mut to_skip = match Self::replayable(&spec) {
            true => rows_before,
            false => 0,
        };
        let follow = spec.provider.downcast_ref::<FollowTable>();
        let mut notices = Vec::new();
        let mut start = Vec::new();
        // A checkpoint from before byte offsets has none: rows are skipped.
        if let (Some(follow), Some(resume)) = (follow, resume)
            && !resume.files.is_empty()
        {
            to_skip = 0;
            let (kept, changed) = follow.resume_from(&resume.files);
            start = kept;
            notices = changed
                .into_iter()
                .map(|change| format!("table '{}': followed file {change}", spec.table))
                .collect();
        }
        let provider: Arc<dyn TableProvider> = match spec
            .provider
            .downcast_ref::<crate::connectors::generator::GeneratorProvider>(
        ) {
            Some(generator) if rows_before > 0 => {
                to_skip = 0;
                Arc::new(generator.starting_at(rows_before))
            }
            _ => Arc::clone(&spec.provider),
        };
        let table_schema = provider.schema();
        let wanted: Vec<usize> = spec
            .projection
            .clone()
            .unwrap_or_else(|| (0..table_schema.fields().len()).collect());
        // The watermark may read columns the query does not: scan those too.
        let mut scanned = wanted.clone();
        if let Some(expr) = &spec.watermark {
            for column in expr.column_refs() {
                let index = table_schema.index_of(&column.name)?;
                if !scanned.contains(&index) {
                    scanned.push(index);
                }
            }
        }
        let plan = provider
            .scan(state, Some(&scanned), &spec.filters, spec.fetch)
            .await?;
        let files = follow.map(|f| FilePositions::new(f.positions(), start));
        let read_once = match checkpointed {
            true => local_files(&plan),
            false => Vec::new(),
        };
        if let Some(resume) = resume
            && !resume.ended
            && resume.rows > 0
        {
            check_unchanged(&spec.table, resume, &read_once)?;
        }
        let scanned_schema = plan.schema();
        // A changelog source's batches carry each row's change first.
        let changelog = scanned_schema
            .fields()
            .first()
            .is_some_and(|f| f.name() == CHANGE_CODE_COLUMN);
        let first = usize::from(changelog);
        let output: Vec<usize> = (first..first + wanted.len()).collect();
        let watermark = match &spec.watermark {
            Some(expr) => Some(match delayed_column(expr, &scanned_schema) {
                Some((column, delay)) => WatermarkFn::Delayed { column, delay },
                None => {
                    let df_schema = DFSchema::try_from(scanned_schema.as_ref().clone())?;
                    WatermarkFn::Expr(state.create_physical_expr(expr.clone(), &df_schema)?)
                }
            }),
            None => None,
        };
        Ok(Self {
            table: spec.table,
            plan,
            state: state.clone(),
            partition: 0,
            stream: None,
            watermark,
            processing_time: spec.processing_time,
            output,
            changelog,
            current: watermark_before,
            ended: false,
            to_skip,
            files,
            notices,
            read_once,
        })
    }

    /// Rows of the scan it will pass over before its first (those taken
    /// before a checkpoint, when it resumes by count): the scan's rows are
    /// counted from its start.
    pub fn rows_to_pass_over(&self) -> u64 {
        self.to_skip
    }

    /// The local files it reads once (for its checkpoints).
    pub fn read_once(&self) -> &[FileIdentity] {
        &self.read_once
    }

    /// Where a followed file's scan is in its files (taken once, by the
    /// driver, which counts the rows the query takes).
    pub fn take_file_positions(&mut self) -> Option<FilePositions> {
        self.files.take()
    }

    /// What resuming found that the user should know.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Whether it can be read again from a position after a restart (not
    /// stdin, whose rows are gone once read).
    pub fn replayable(spec: &SourceSpec) -> bool {
        !spec.provider.is::<crate::connectors::stdin::StdinTable>()
    }

    /// The next events: rows (with their watermarks) and the watermark after
    /// them; at the end, the closing watermark and the end, then `None`.
    pub async fn next(&mut self) -> Option<Result<Vec<Event>>> {
        loop {
            if self.ended {
                return None;
            }
            if self.stream.is_none() {
                if self.partition >= self.plan.properties().partitioning.partition_count() {
                    self.ended = true;
                    return Some(Ok(vec![Event::Watermark(END_OF_INPUT), Event::End]));
                }
                match self.plan.execute(self.partition, self.state.task_ctx()) {
                    Ok(stream) => self.stream = Some(stream),
                    Err(e) => return Some(Err(e)),
                }
            }
            let stream = self.stream.as_mut()?;
            let next = match self.processing_time {
                // A stream's next is cancel-safe: a tick loses no rows.
                true => match tokio::time::timeout(CLOCK_TICK, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        self.current = self.current.max(clock_now());
                        return Some(Ok(vec![Event::Watermark(self.current)]));
                    }
                },
                false => stream.next().await,
            };
            match next {
                Some(Ok(batch)) if batch.num_rows() == 0 => continue,
                Some(Ok(batch)) if self.to_skip >= batch.num_rows() as u64 => {
                    self.to_skip -= batch.num_rows() as u64;
                }
                Some(Ok(batch)) => {
                    let skip = std::mem::take(&mut self.to_skip) as usize;
                    let batch = batch.slice(skip, batch.num_rows() - skip);
                    return Some(self.assign(batch));
                }
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    self.stream = None;
                    self.partition += 1;
                }
            }
        }
    }

    /// Each row gets the watermark before it; the source's moves past the batch.
    fn assign(&mut self, batch: RecordBatch) -> Result<Vec<Event>> {
        if self.processing_time {
            // Rows get PROCTIME() after this (in a projection), so no row's
            // processing time is below the watermark it arrives under.
            self.current = self.current.max(clock_now());
        }
        let watermarks = match &self.watermark {
            Some(watermark) if !self.processing_time => {
                let (values, delay, name) = match watermark {
                    WatermarkFn::Delayed { column, delay } => (
                        Arc::clone(batch.column(*column)),
                        *delay,
                        batch.schema_ref().field(*column).name().clone(),
                    ),
                    WatermarkFn::Expr(expr) => (
                        expr.evaluate(&batch)?.into_array(batch.num_rows())?,
                        0,
                        expr.to_string(),
                    ),
                };
                let values = to_nanos(&values, &name)?;
                let values = nanos_values(&values)?;
                let mut running = self.current;
                let mut before = Vec::with_capacity(values.len());
                for i in 0..values.len() {
                    before.push(running);
                    if values.is_valid(i) {
                        running = running.max(values.value(i).saturating_sub(delay));
                    }
                }
                self.current = running;
                RowWatermarks::PerRow(Arc::new(Int64Array::from(before)))
            }
            _ => RowWatermarks::Constant(self.current),
        };
        let changes = match self.changelog {
            true => Some(Changes::from_codes(batch.column(0))?),
            false => None,
        };
        let batch = batch.project(&self.output)?;
        let mut rows = StreamBatch::new(batch, watermarks);
        rows.changes = changes;
        let mut events = vec![Event::Data(rows)];
        if self.current != NO_WATERMARK {
            events.push(Event::Watermark(self.current));
        }
        Ok(events)
    }
}

/// The local files a scan reads (a file table's), as they are now.
fn local_files(plan: &Arc<dyn ExecutionPlan>) -> Vec<FileIdentity> {
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::execution::object_store::ObjectStoreUrl;
    let mut files: Vec<FileIdentity> = Vec::new();
    let mut nodes = vec![Arc::clone(plan)];
    while let Some(node) = nodes.pop() {
        let scan = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>());
        if let Some(scan) = scan
            && scan.object_store_url == ObjectStoreUrl::local_filesystem()
        {
            for file in scan.file_groups.iter().flat_map(|g| g.files()) {
                let path = std::path::Path::new("/").join(file.object_meta.location.as_ref());
                let path = path.display().to_string();
                if files.iter().any(|f| f.path == path) {
                    continue; // a file split into byte ranges
                }
                let head = crate::connectors::follow::head_of(std::path::Path::new(&path));
                files.push(FileIdentity {
                    path,
                    size: file.object_meta.size,
                    head_hash: fingerprint_bytes(&head),
                });
            }
        }
        nodes.extend(node.children().into_iter().cloned());
    }
    files
}

/// A source that reads its files once resumes by passing over the rows it
/// had taken: an error if its files are not those it read (the rows passed
/// over would be others, so rows would be lost or repeated without a word).
fn check_unchanged(table: &str, resume: &SourcePosition, now: &[FileIdentity]) -> Result<()> {
    let change = resume.read_once.iter().find_map(|then| {
        let Some(file) = now.iter().find(|f| f.path == then.path) else {
            return Some(format!("'{}' is gone", then.path));
        };
        if file.size != then.size {
            return Some(format!(
                "'{}' has {} bytes, {} then",
                then.path, file.size, then.size
            ));
        }
        if file.head_hash != then.head_hash {
            return Some(format!("'{}' begins with other bytes", then.path));
        }
        None
    });
    let change = change.or_else(|| {
        now.iter()
            .find(|f| !resume.read_once.iter().any(|then| then.path == f.path))
            .filter(|_| !resume.read_once.is_empty())
            .map(|f| format!("'{}' is new", f.path))
    });
    match change {
        None => Ok(()),
        Some(change) => datafusion::common::plan_err!(
            "table '{table}' reads its files once and resumes by passing over the {} rows it had read at the checkpoint, but since then {change}: those rows would not be the ones read. Put the files back as they were, or delete the checkpoint directory to start afresh",
            resume.rows
        ),
    }
}

/// The wall clock, in nanoseconds, cut to the millisecond: `PROCTIME()` is a
/// TIMESTAMP(3) of the same clock read later, so never below it.
fn clock_now() -> Nanos {
    let millis = chrono::Utc::now().timestamp_millis();
    millis.saturating_mul(1_000_000)
}

/// How a source computes its rows' watermarks.
enum WatermarkFn {
    /// `ts - INTERVAL '5' SECOND` (or `ts`): the column less a fixed delay, so
    /// no expression is evaluated per row (the watermark is a running max of
    /// `ts - delay`, integer arithmetic).
    Delayed {
        /// The event-time column in the scanned batch.
        column: usize,
        /// The delay, in nanoseconds.
        delay: Nanos,
    },
    /// Any other expression, evaluated per batch.
    Expr(Arc<dyn PhysicalExpr>),
}

/// `column` or `column - <fixed interval>`: the column's index and the delay.
fn delayed_column(expr: &Expr, schema: &arrow::datatypes::Schema) -> Option<(usize, Nanos)> {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let column = |e: &Expr| match e {
        Expr::Column(c) => schema.index_of(&c.name).ok(),
        _ => None,
    };
    match expr {
        Expr::Column(_) => column(expr).map(|i| (i, 0)),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Minus,
            right,
        }) => {
            let delay = match right.as_ref() {
                Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
                    i64::from(v.days) * 86_400_000_000_000 + v.nanoseconds
                }
                Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
                    i64::from(v.days) * 86_400_000_000_000 + i64::from(v.milliseconds) * 1_000_000
                }
                _ => return None,
            };
            column(left).map(|i| (i, delay))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::logical_expr::{col, lit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ])
    }

    fn interval(nanos: i64) -> Expr {
        lit(datafusion::common::ScalarValue::IntervalMonthDayNano(Some(
            arrow::datatypes::IntervalMonthDayNano::new(0, 0, nanos),
        )))
    }

    #[test]
    fn a_column_less_a_fixed_interval_is_a_delay() {
        assert_eq!(delayed_column(&col("ts"), &schema()), Some((1, 0)));
        assert_eq!(
            delayed_column(&(col("ts") - interval(4_000_000_000)), &schema()),
            Some((1, 4_000_000_000))
        );
    }

    #[test]
    fn other_watermarks_are_evaluated() {
        assert_eq!(delayed_column(&(col("ts") + interval(1)), &schema()), None);
        let months = lit(datafusion::common::ScalarValue::IntervalMonthDayNano(Some(
            arrow::datatypes::IntervalMonthDayNano::new(1, 0, 0),
        )));
        assert_eq!(delayed_column(&(col("ts") - months), &schema()), None);
    }
}

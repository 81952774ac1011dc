//! What flows between continuous operators, and the operator contracts.
//!
//! A continuous query is a graph of operators (see [`super::graph`]): sources
//! at the leaves, one sink at the root. Events are Arrow batches, watermarks
//! and the end of an input; event time is carried as `i64` nanoseconds since
//! the epoch (UTC) whatever the columns' own unit, so comparisons never
//! convert twice.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{filter, take};
use arrow::datatypes::{DataType, TimeUnit, TimestampNanosecondType};
use datafusion::common::{internal_err, not_impl_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use futures::future::BoxFuture;

use super::changelog::Changes;
use super::checkpoint::StateSnapshot;

/// Event time in nanoseconds since the epoch.
pub type Nanos = i64;

/// One millisecond: `window_time` is `window_end` minus this (Flink's rowtime).
pub const MILLISECOND: Nanos = 1_000_000;

/// The watermark before any row: no event-time progress yet.
pub const NO_WATERMARK: Nanos = Nanos::MIN;

/// The watermark at the end of a bounded input: every window closes.
pub const END_OF_INPUT: Nanos = Nanos::MAX;

/// The watermark in force when each row arrived (`max` of the watermark
/// expression over all earlier rows of the source). Windowed operators judge
/// lateness by it, so results do not depend on how rows were cut into batches.
#[derive(Debug, Clone)]
pub enum RowWatermarks {
    /// The same for every row (rows a window emitted; sources with no watermark).
    Constant(Nanos),
    /// One per row.
    PerRow(Arc<Int64Array>),
}

impl RowWatermarks {
    /// The watermark of row `i`.
    pub fn get(&self, i: usize) -> Nanos {
        match self {
            RowWatermarks::Constant(w) => *w,
            RowWatermarks::PerRow(a) => a.value(i),
        }
    }

    /// The rows `mask` keeps, as a filter keeps them.
    pub fn filter(&self, mask: &BooleanArray) -> Result<Self> {
        Ok(match self {
            RowWatermarks::Constant(w) => RowWatermarks::Constant(*w),
            RowWatermarks::PerRow(a) => {
                RowWatermarks::PerRow(Arc::new(filter(a.as_ref(), mask)?.as_primitive().clone()))
            }
        })
    }

    /// Rows `indices`, in that order (repeats allowed).
    pub fn take(&self, indices: &UInt32Array) -> Result<Self> {
        Ok(match self {
            RowWatermarks::Constant(w) => RowWatermarks::Constant(*w),
            RowWatermarks::PerRow(a) => {
                RowWatermarks::PerRow(Arc::new(take(a.as_ref(), indices, None)?.as_primitive().clone()))
            }
        })
    }

    /// Each row's watermark through `f` (a join holding time back).
    pub fn map(&self, f: impl Fn(Nanos) -> Nanos) -> Self {
        match self {
            RowWatermarks::Constant(w) => RowWatermarks::Constant(f(*w)),
            RowWatermarks::PerRow(a) => {
                RowWatermarks::PerRow(Arc::new(a.values().iter().map(|w| f(*w)).collect::<Int64Array>()))
            }
        }
    }

    /// Rows `offset..offset + len`.
    pub fn slice(&self, offset: usize, len: usize) -> Self {
        match self {
            RowWatermarks::Constant(w) => RowWatermarks::Constant(*w),
            RowWatermarks::PerRow(a) => RowWatermarks::PerRow(Arc::new(a.slice(offset, len))),
        }
    }
}

/// Rows with the watermark each arrived under.
#[derive(Debug, Clone)]
pub struct StreamBatch {
    /// The rows.
    pub batch: RecordBatch,
    /// The watermark in force at each row.
    pub watermarks: RowWatermarks,
    /// For an updating stream, each row's change (`+I`, `-U`, `+U`, `-D`);
    /// `None` for appended rows (all `+I`).
    pub changes: Option<Changes>,
}

impl StreamBatch {
    /// Appended rows.
    pub fn new(batch: RecordBatch, watermarks: RowWatermarks) -> Self {
        Self {
            batch,
            watermarks,
            changes: None,
        }
    }

    /// The rows `mask` keeps, with their watermarks and changes.
    pub fn filter(&self, mask: &BooleanArray) -> Result<Self> {
        Ok(Self {
            batch: arrow::compute::filter_record_batch(&self.batch, mask)?,
            watermarks: self.watermarks.filter(mask)?,
            changes: self.changes.as_ref().map(|c| c.filter(mask)).transpose()?,
        })
    }

    /// Rows `offset..offset + len`.
    pub fn slice(&self, offset: usize, len: usize) -> Self {
        Self {
            batch: self.batch.slice(offset, len),
            watermarks: self.watermarks.slice(offset, len),
            changes: self.changes.as_ref().map(|c| c.slice(offset, len)),
        }
    }

    /// The same rows under `schema`, which has the same types (a rename, a
    /// union's columns).
    pub fn renamed(&self, schema: &arrow::datatypes::SchemaRef) -> Result<Self> {
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(self.batch.num_rows()));
        let batch =
            RecordBatch::try_new_with_options(Arc::clone(schema), self.batch.columns().to_vec(), &options)?;
        Ok(self.with_batch(batch))
    }

    /// The same rows (and changes) with other columns.
    pub fn with_batch(&self, batch: RecordBatch) -> Self {
        Self {
            batch,
            watermarks: self.watermarks.clone(),
            changes: self.changes.clone(),
        }
    }
}

/// What travels down a pipeline.
#[derive(Debug, Clone)]
pub enum Event {
    /// Rows.
    Data(StreamBatch),
    /// Event time has reached this point: no later row will carry an earlier
    /// watermark. [`END_OF_INPUT`] closes everything.
    Watermark(Nanos),
    /// The input has no more rows (a bounded source read to its end, a LIMIT
    /// that has its rows). Distinct from the last watermark: a source with no
    /// watermark ends too, and a merge waits for every input's end.
    End,
}

/// One incremental operator. Operators are synchronous: the pipeline task
/// awaits only its source and its output channel.
pub trait Operator: Send {
    /// What EXPLAIN and errors call it.
    fn name(&self) -> String;

    /// The state it keeps and what bounds it, for EXPLAIN; `None`: none.
    fn state(&self) -> Option<String> {
        None
    }

    /// Rows held in state (a metric; window aggregates report their groups).
    fn state_rows(&self) -> usize {
        0
    }

    /// Write its state into `into` at a checkpoint; it runs on after. An
    /// operator that declares state ([`Operator::state`]) and does not say how
    /// it is kept is refused, naming it, so a restarted query never runs on
    /// with an operator's state silently empty.
    fn snapshot(&mut self, _into: &mut StateSnapshot) -> Result<()> {
        stateless_only(self.state().is_some() || self.state_rows() > 0, &self.name())
    }

    /// Take back the state [`Operator::snapshot`] wrote, before any event.
    fn restore(&mut self, _from: &StateSnapshot) -> Result<()> {
        stateless_only(self.state().is_some() || self.state_rows() > 0, &self.name())
    }

    /// Load what it needs before the first event (a lookup table), so that
    /// planning reads nothing.
    fn open(&mut self, _task: Arc<TaskContext>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Take rows, push what they produce.
    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()>;

    /// Take a watermark: emit what it closes, then pass it on.
    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        out.push(Event::Watermark(watermark));
        Ok(())
    }

    /// Take the end of the input: flush what waits for it, then pass it on.
    fn on_end(&mut self, out: &mut Vec<Event>) -> Result<()> {
        out.push(Event::End);
        Ok(())
    }

    /// Whether it needs no more input (a LIMIT that has its rows): the graph
    /// then ends its input's path.
    fn is_finished(&self) -> bool {
        false
    }

    /// Bytes held in state, estimated from the arrays and accumulators it
    /// keeps (a metric, and what the operator reserves in the memory pool;
    /// 0 for operators without state). Stateful operators read it after
    /// every batch and watermark: keep it cheap (a running count, or a
    /// sample), never a walk over every key.
    fn state_bytes(&self) -> usize {
        0
    }
}

/// An operator with several inputs (a union, a join of two streams). The
/// graph merges its inputs' time before calling it: a row comes with the
/// minimum of its own watermark and the other inputs' current ones, and
/// [`MultiInputOperator::on_watermark`] gets the minimum over the inputs, only
/// when it advances. An input that ended counts as +infinity.
pub trait MultiInputOperator: Send {
    /// What EXPLAIN and errors call it.
    fn name(&self) -> String;

    /// How many inputs it takes (its ports are `0..inputs()`).
    fn inputs(&self) -> usize;

    /// Take rows from input `port`, push what they produce.
    fn process(&mut self, port: usize, input: StreamBatch, out: &mut Vec<Event>) -> Result<()>;

    /// Get ready before the first event (as [`Operator::open`]): register
    /// its state with the query's memory pool.
    fn open(&mut self, _task: Arc<TaskContext>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// The merged watermark advanced: emit what it closes, then pass it on.
    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        out.push(Event::Watermark(watermark));
        Ok(())
    }

    /// Input `port` ended (its watermark is now +infinity for the merge).
    fn on_input_end(&mut self, _port: usize, _out: &mut Vec<Event>) -> Result<()> {
        Ok(())
    }

    /// Every input ended: flush, then pass the end on.
    fn on_end(&mut self, out: &mut Vec<Event>) -> Result<()> {
        out.push(Event::End);
        Ok(())
    }

    /// The state it keeps and what bounds it, for EXPLAIN; `None`: none.
    fn state(&self) -> Option<String> {
        None
    }

    /// Rows held in state (a metric; joins report their buffers).
    fn state_rows(&self) -> usize {
        0
    }

    /// Write its state into `into` at a checkpoint (as
    /// [`Operator::snapshot`]); the merge's watermarks are the graph's.
    fn snapshot(&mut self, _into: &mut StateSnapshot) -> Result<()> {
        stateless_only(self.state().is_some() || self.state_rows() > 0, &self.name())
    }

    /// Take back the state [`MultiInputOperator::snapshot`] wrote.
    fn restore(&mut self, _from: &StateSnapshot) -> Result<()> {
        stateless_only(self.state().is_some() || self.state_rows() > 0, &self.name())
    }

    /// Bytes held in state, as [`Operator::state_bytes`].
    fn state_bytes(&self) -> usize {
        0
    }
}

/// The default of the checkpoint methods: nothing to keep for an operator
/// without state; a refusal naming one with state (one that declares it,
/// or that holds rows though it declares none).
fn stateless_only(has_state: bool, name: &str) -> Result<()> {
    if has_state {
        return not_impl_err!(
            "checkpoints: {name} cannot save its state yet; run the query without --checkpoint-dir"
        );
    }
    Ok(())
}

/// A timestamp column as nanoseconds since the epoch (UTC), nulls kept; a
/// value nanoseconds cannot hold is an error naming it and `column` (a cast
/// would make it NULL, and its row would land in no window or a wrong one).
pub fn to_nanos(array: &ArrayRef, column: &str) -> Result<ArrayRef> {
    crate::plan::check_nanos_range(array.as_ref(), column, 0)?;
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Ok(Arc::clone(array)),
        // Keep the zone: casting it away would shift values to local time.
        DataType::Timestamp(_, tz) => Ok(arrow::compute::cast(
            array,
            &DataType::Timestamp(TimeUnit::Nanosecond, tz.clone()),
        )?),
        other => plan_err!("event time must be a TIMESTAMP, not {other}"),
    }
}

/// The values of a nanosecond timestamp array (after [`to_nanos`]).
pub fn nanos_values(array: &ArrayRef) -> Result<&arrow::array::PrimitiveArray<TimestampNanosecondType>> {
    match array.as_primitive_opt::<TimestampNanosecondType>() {
        Some(a) => Ok(a),
        None => internal_err!("expected nanosecond timestamps, got {}", array.data_type()),
    }
}

/// Nanosecond `values` as an array of timestamp type `data_type`.
pub fn timestamps(values: Vec<Nanos>, data_type: &DataType) -> Result<ArrayRef> {
    let tz = match data_type {
        DataType::Timestamp(_, tz) => tz.clone(),
        other => return internal_err!("window bounds must be timestamps, not {other}"),
    };
    let nanos: ArrayRef =
        Arc::new(arrow::array::TimestampNanosecondArray::from(values).with_timezone_opt(tz));
    Ok(arrow::compute::cast(&nanos, data_type)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator that holds rows but says nothing of its state or how to save it.
    struct Holding(usize);

    impl Operator for Holding {
        fn name(&self) -> String {
            "Holding".into()
        }

        fn state_rows(&self) -> usize {
            self.0
        }

        fn process(&mut self, _input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_operator_holding_rows_without_saving_them_is_refused_at_a_checkpoint() {
        let mut state = StateSnapshot::default();
        assert!(
            Holding(0).snapshot(&mut state).is_ok(),
            "nothing held, nothing lost"
        );
        let err = Holding(3).snapshot(&mut state).expect_err("rows would be lost");
        assert!(err.to_string().contains("Holding cannot save its state"), "{err}");
        assert!(Holding(3).restore(&state).is_err());
    }
}

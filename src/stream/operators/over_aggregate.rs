//! `OVER` aggregations on a stream, ordered by event time (Flink's
//! over-aggregates): `sum(x) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 10
//! PRECEDING AND CURRENT ROW)`, `RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND
//! CURRENT ROW`, `lag`, `lead`, `row_number`, `rank`.
//!
//! A row waits until the watermark passes its time (`ts < watermark`); then
//! the rows released together are sorted by partition and ORDER BY, appended
//! to their partition's retained rows, and evaluated by DataFusion's own
//! stateful window evaluation (`WindowExpr::evaluate_stateful`, what its
//! `BoundedWindowAggExec` runs: sliding accumulators that retract, evaluators
//! that keep their own counts). Each partition then drops the rows no frame
//! reaches any more, as that operator prunes, so state is what the frames
//! need. Output is append-only: each row once, with its functions' values.
//!
//! A row that comes after the watermark has passed its time is late: counted
//! (and written aside under the late policy), never evaluated. So is a row
//! with a NULL time, which no watermark would ever pass.
//!
//! When rows are released, their peers (equal ORDER BY values) are all in:
//! a row below the watermark can no longer come on time. So a frame that ends
//! at the current row (or before it) is complete at release, and the
//! partition is evaluated as if it ended there; `lead` and frames that end
//! after the current row wait for their partition's later rows (or the end of
//! input). While such a row waits, the watermark this operator passes on is
//! held back to its time, so an operator downstream does not find it late
//! when it comes.
//!
//! With `state.ttl`, a partition whose last row is that old (in event time)
//! is forgotten: a later row starts it afresh, as Flink's state TTL does.
//! Whether a partition is forgotten depends only on its rows' times (a new
//! row at least the TTL after the last one), never on when a sweep ran.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use datafusion::common::utils::{evaluate_partition_ranges, get_row_at_idx};
use datafusion::common::{ScalarValue, exec_err, internal_err, not_impl_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::window_state::{PartitionBatchState, WindowAggState, WindowFrameContext};
use datafusion::logical_expr::{WindowFrame, WindowFrameBound, WindowFrameUnits};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::window::{
    PartitionBatches, PartitionKey, PartitionWindowAggStates, PlainAggregateWindowExpr,
    SlidingAggregateWindowExpr, StandardWindowExpr, WindowEvalContext, WindowExpr, WindowState,
};
use datafusion::physical_plan::windows::WindowUDFExpr;

use super::pending_rows::PendingRows;
use super::window_functions::sort_by_partition;
use super::window_top_n::own_rows;
use crate::stream::checkpoint::{StateSnapshot, int_columns, int_rows, with_columns};
use crate::stream::late::LateRows;
use crate::stream::memory::StateMemory;
use crate::stream::operator::{
    END_OF_INPUT, Event, NO_WATERMARK, Nanos, Operator, RowWatermarks, StreamBatch, nanos_values,
};

/// What an [`OverAggregateOperator`] computes.
#[derive(Clone)]
pub struct OverAggregateSpec {
    /// The functions, sharing one PARTITION BY and one ORDER BY that starts
    /// with the event time, ascending (the planner checks).
    pub functions: Vec<Arc<dyn WindowExpr>>,
    /// The event time leading the ORDER BY.
    pub time: Arc<dyn PhysicalExpr>,
    /// The rows that come in.
    pub input_schema: SchemaRef,
    /// The rows that go out: the input's columns, then one per function.
    pub schema: SchemaRef,
    /// `state.ttl`: forget a partition whose last row is this old.
    pub ttl: Option<Nanos>,
}

/// One partition's rows and how far they went out.
struct Partition {
    /// The rows a frame may still reach, then the rows not yet out.
    rows: PartitionBatchState,
    /// How many of `rows` (from the front) went out.
    emitted: usize,
    /// The time of its latest row.
    last: Nanos,
    /// The time of its first row not yet out (waiting for later rows).
    waiting_since: Option<Nanos>,
}

/// Evaluates window functions over rows as the watermark passes them.
pub struct OverAggregateOperator {
    spec: OverAggregateSpec,
    /// Per function: whether it reads rows after the current row's peers
    /// (`lead`, a frame ending `n FOLLOWING`), so must wait for them.
    waits: Vec<bool>,
    /// Rows whose time the watermark has not passed.
    pending: PendingRows,
    partitions: HashMap<PartitionKey, Partition>,
    /// Per function, its state in each partition (DataFusion's own).
    states: Vec<PartitionWindowAggStates>,
    late: LateRows,
    watermark: Nanos,
    /// The times rows wait from (each partition's first row not yet out),
    /// counted: the watermark passed on is held back to the first.
    waiting: BTreeMap<Nanos, usize>,
    /// The watermark passed on last.
    passed_on: Nanos,
    /// When the next sweep of partitions the TTL forgot runs.
    next_sweep: Nanos,
    /// Bytes of the partitions' rows, kept as they change (read after
    /// every batch: a walk over a million partitions would not do).
    partition_bytes: usize,
    /// The partitions' and waiting rows' share of the memory pool.
    memory: StateMemory,
}

/// Bytes of a partition's rows.
fn partition_bytes(partition: &Partition) -> usize {
    partition.rows.record_batch.get_array_memory_size()
}

impl OverAggregateOperator {
    /// An operator for `spec`; late rows go to `late`.
    pub fn try_new(spec: OverAggregateSpec, late: LateRows) -> Result<Self> {
        let waits = spec
            .functions
            .iter()
            .map(|f| reads_later_rows(f.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let states = spec
            .functions
            .iter()
            .map(|_| PartitionWindowAggStates::default())
            .collect();
        Ok(Self {
            pending: PendingRows::new(Arc::clone(&spec.time), Arc::clone(&spec.input_schema)),
            spec,
            waits,
            partitions: HashMap::new(),
            states,
            late,
            watermark: NO_WATERMARK,
            waiting: BTreeMap::new(),
            passed_on: NO_WATERMARK,
            next_sweep: NO_WATERMARK,
            partition_bytes: 0,
            memory: StateMemory::new("OverAggregate", "over_partitions").with_fix(
                "bound the partitions with SET 'state.ttl', a frame that reaches back less, fewer keys",
            ),
        })
    }

    /// Resize the memory pool's share to the partitions' and waiting rows.
    fn reserve(&self) -> Result<()> {
        self.memory.resize(self.state_bytes(), || {
            format!(
                "{} partitions and {} waiting rows",
                self.partitions.len(),
                self.pending.len()
            )
        })
    }

    /// Sort released rows by partition and ORDER BY and append each
    /// partition's to its rows; the partitions touched.
    fn append(&mut self, rows: &RecordBatch) -> Result<Vec<PartitionKey>> {
        let Some(first) = self.spec.functions.first() else {
            return Ok(Vec::new());
        };
        let (rows, key_columns) = sort_by_partition(first.as_ref(), rows)?;
        let times = self.pending.times(&rows)?;
        let times = nanos_values(&times)?;
        let key_values: Vec<ArrayRef> = key_columns.iter().map(|c| Arc::clone(&c.values)).collect();
        let mut touched = Vec::new();
        for range in evaluate_partition_ranges(rows.num_rows(), &key_columns)? {
            let key = get_row_at_idx(&key_values, range.start)?;
            let slice = rows.slice(range.start, range.end - range.start);
            let (first_time, last_time) = (times.value(range.start), times.value(range.end - 1));
            let expired = |p: &Partition| {
                self.spec.ttl.is_some_and(|ttl| {
                    p.emitted == p.rows.record_batch.num_rows() && first_time - p.last >= ttl
                })
            };
            if self.partitions.get(&key).is_some_and(expired) {
                self.forget(&key);
            }
            let partition = match self.partitions.entry(key.clone()) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let new = Partition {
                        rows: PartitionBatchState::new(Arc::clone(&self.spec.input_schema)),
                        emitted: 0,
                        last: first_time,
                        waiting_since: None,
                    };
                    self.partition_bytes += partition_bytes(&new);
                    entry.insert(new)
                }
            };
            self.partition_bytes -= partition_bytes(partition);
            partition.rows.extend(&slice)?;
            self.partition_bytes += partition_bytes(partition);
            partition.last = last_time;
            touched.push(key);
        }
        Ok(touched)
    }

    /// Drop a partition and its functions' states.
    fn forget(&mut self, key: &PartitionKey) {
        if let Some(partition) = self.partitions.remove(key) {
            self.partition_bytes -= partition_bytes(&partition);
            self.set_waiting(partition.waiting_since, None);
        }
        for states in &mut self.states {
            states.swap_remove(key);
        }
    }

    /// Evaluate the functions over `touched` partitions' new rows; the rows
    /// whose every function has its value, with those values.
    fn evaluate(&mut self, touched: Vec<PartitionKey>, end: bool) -> Result<Vec<RecordBatch>> {
        let mut batches = PartitionBatches::default();
        let mut progress = Vec::with_capacity(touched.len());
        for key in touched {
            if let Some(partition) = self.partitions.remove(&key) {
                self.partition_bytes -= partition_bytes(&partition);
                progress.push((
                    key.clone(),
                    partition.emitted,
                    partition.last,
                    partition.waiting_since,
                ));
                batches.insert(key, partition.rows);
            }
        }
        for ((function, states), &waits) in self.spec.functions.iter().zip(&mut self.states).zip(&self.waits)
        {
            // A function that reads no later row sees its partition complete
            // up to the released rows (their peers are all in).
            for rows in batches.values_mut() {
                rows.is_end = end || !waits;
            }
            function.evaluate_stateful(&batches, states, &WindowEvalContext::default())?;
        }
        let mut out = Vec::new();
        for ((key, mut rows), (_, mut emitted, last, was_waiting)) in batches.into_iter().zip(progress) {
            rows.is_end = false;
            let ready = self
                .states
                .iter()
                .map(|s| s.get(&key).map_or(0, |w| w.state.last_calculated_index))
                .min()
                .unwrap_or(0);
            let n = ready.saturating_sub(emitted);
            if n > 0 {
                let mut columns = rows.record_batch.slice(emitted, n).columns().to_vec();
                for states in &mut self.states {
                    if let Some(window) = states.get_mut(&key) {
                        let values = &mut window.state.out_col;
                        columns.push(values.slice(0, n));
                        *values = values.slice(n, values.len() - n);
                    }
                }
                out.push(RecordBatch::try_new(Arc::clone(&self.spec.schema), columns)?);
                emitted += n;
            }
            // Rows before every function's frame start (and out) are done with.
            let done = self
                .states
                .iter()
                .map(|s| {
                    s.get(&key).map_or(0, |w| {
                        w.state
                            .window_frame_range
                            .start
                            .min(w.state.last_calculated_index)
                    })
                })
                .min()
                .unwrap_or(0)
                .min(emitted);
            for states in &mut self.states {
                if let Some(window) = states.get_mut(&key) {
                    window.state.is_end = false;
                    if done > 0 {
                        window.state.prune_state(done);
                    }
                }
            }
            if done > 0 {
                let batch = &rows.record_batch;
                rows.record_batch = batch.slice(done, batch.num_rows() - done);
            }
            let emitted = emitted - done;
            let waiting_since = if emitted < rows.record_batch.num_rows() {
                let first = rows.record_batch.slice(emitted, 1);
                let time = self.pending.times(&first)?;
                nanos_values(&time)?.values().first().copied()
            } else {
                None
            };
            self.set_waiting(was_waiting, waiting_since);
            let partition = Partition {
                rows,
                emitted,
                last,
                waiting_since,
            };
            self.partition_bytes += partition_bytes(&partition);
            self.partitions.insert(key, partition);
        }
        Ok(out)
    }

    /// A partition's rows wait from `now` instead of `was`.
    fn set_waiting(&mut self, was: Option<Nanos>, now: Option<Nanos>) {
        if was == now {
            return;
        }
        if let Some(was) = was
            && let Some(count) = self.waiting.get_mut(&was)
        {
            *count -= 1;
            if *count == 0 {
                self.waiting.remove(&was);
            }
        }
        if let Some(now) = now {
            *self.waiting.entry(now).or_insert(0) += 1;
        }
    }

    /// Forget the partitions the TTL expired (a later row for one would
    /// start it afresh anyway); at most once per quarter TTL of event time.
    fn sweep(&mut self, watermark: Nanos) {
        let Some(ttl) = self.spec.ttl else { return };
        if watermark < self.next_sweep || watermark == END_OF_INPUT {
            return;
        }
        self.next_sweep = watermark.saturating_add(ttl / 4);
        let expired: Vec<PartitionKey> = self
            .partitions
            .iter()
            .filter(|(_, p)| {
                p.emitted == p.rows.record_batch.num_rows() && p.last.saturating_add(ttl) <= watermark
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.forget(&key);
        }
    }
}

impl Operator for OverAggregateOperator {
    fn name(&self) -> String {
        let functions: Vec<String> = self.spec.functions.iter().map(|f| f.name().to_string()).collect();
        format!(
            "OverAggregate: ordered by {}, {}; {}",
            self.spec.time,
            functions.join(", "),
            self.late.policy()
        )
    }

    fn state_rows(&self) -> usize {
        // The rows partitions keep for their frames, and those waiting.
        self.partitions
            .values()
            .map(|p| p.rows.record_batch.num_rows())
            .sum::<usize>()
            + self.pending.len()
    }

    fn state_bytes(&self) -> usize {
        // The partitions' rows and the rows waiting (not the functions' states).
        self.partition_bytes + self.pending.bytes()
    }

    fn open(&mut self, task: Arc<TaskContext>) -> futures::future::BoxFuture<'_, Result<()>> {
        let bytes = self.state_bytes();
        self.memory.opened(&task, bytes)
    }

    fn state(&self) -> Option<String> {
        let keys = match self.spec.ttl {
            Some(ttl) => format!(
                "a partition is forgotten once its last row is state.ttl ({} ms) old",
                ttl / crate::stream::operator::MILLISECOND
            ),
            None => "partitions are kept for ever (bound them with SET 'state.ttl')".to_string(),
        };
        Some(format!(
            "over_rows: rows until the watermark passes their time; per partition the rows its frames still reach ({}) and each function's running state; {keys}",
            self.spec
                .functions
                .iter()
                .map(|f| retention_text(f.as_ref()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        self.late.flush()?;
        self.pending.snapshot(into, "over_waiting")?;
        into.put_values(
            "over_times",
            vec![self.watermark, self.passed_on, self.next_sweep],
        );
        self.snapshot_partitions(into)
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        self.pending.restore(from, "over_waiting")?;
        match from.values("over_times")? {
            [watermark, passed_on, next_sweep] => {
                (self.watermark, self.passed_on, self.next_sweep) = (*watermark, *passed_on, *next_sweep);
            }
            other => return exec_err!("an OVER aggregate's checkpoint has {} times, not 3", other.len()),
        }
        self.restore_partitions(from)
    }

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        self.pending.push(input, &mut self.late)?;
        self.reserve()
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        let end = watermark == END_OF_INPUT;
        let mut touched = match self.pending.release(watermark)? {
            Some(rows) => self.append(&rows)?,
            None => Vec::new(),
        };
        if end {
            // Every partition ends: what waited for later rows goes now.
            touched = self.partitions.keys().cloned().collect();
            // In key order, so what comes out does not depend on hashing.
            touched.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        }
        let batches = self.evaluate(touched, end)?;
        if !batches.is_empty() {
            let batch = concat_batches(&self.spec.schema, &batches)?;
            // Rows carry the watermark passed on before them: no later than
            // their times (a waiting row held it back to its own).
            out.push(Event::Data(StreamBatch::new(
                batch,
                RowWatermarks::Constant(self.passed_on),
            )));
        }
        if end {
            self.partitions.clear();
            self.partition_bytes = 0;
            self.states.iter_mut().for_each(|s| s.clear());
            self.waiting.clear();
        }
        self.sweep(watermark);
        self.late.flush()?;
        self.watermark = watermark;
        let held = self
            .waiting
            .keys()
            .next()
            .map_or(watermark, |&t| t.min(watermark));
        if held > self.passed_on {
            self.passed_on = held;
            out.push(Event::Watermark(held));
        }
        self.reserve()
    }
}

/// Whether `function` reads rows after the current row's peers: `lead`, or
/// a frame that ends some rows (or time) after the current row.
fn reads_later_rows(function: &dyn WindowExpr) -> Result<bool> {
    if let Some(standard) = function.as_any().downcast_ref::<StandardWindowExpr>() {
        let evaluator = standard.get_standard_func_expr().create_evaluator()?;
        if !evaluator.uses_window_frame() {
            return Ok(!evaluator.is_causal());
        }
    }
    Ok(frame_reads_later_rows(function.get_window_frame()))
}

fn frame_reads_later_rows(frame: &WindowFrame) -> bool {
    match &frame.end_bound {
        WindowFrameBound::Following(value) => {
            value.is_null()
                || datafusion::common::ScalarValue::new_zero(&value.data_type()).is_ok_and(|z| *value != z)
        }
        WindowFrameBound::CurrentRow | WindowFrameBound::Preceding(_) => false,
    }
}

/// A frame bound's value as SQL writes it (`10 s` for an interval).
fn bound_text(value: &datafusion::common::ScalarValue) -> String {
    use datafusion::common::ScalarValue;
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            let nanos = i128::from(v.days) * 86_400_000_000_000 + i128::from(v.nanoseconds);
            format!("{} s", nanos as f64 / 1e9)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            format!(
                "{} s",
                (i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds)) as f64 / 1e3
            )
        }
        other => other.to_string(),
    }
}

/// What a function's frame makes a partition keep, for EXPLAIN.
fn retention_text(function: &dyn WindowExpr) -> String {
    if let Some(standard) = function.as_any().downcast_ref::<StandardWindowExpr>()
        && let Ok(evaluator) = standard.get_standard_func_expr().create_evaluator()
        && !evaluator.uses_window_frame()
    {
        return format!("{}: the rows its offset reaches", short_name(function));
    }
    let frame = function.get_window_frame();
    let reach = match &frame.start_bound {
        WindowFrameBound::Preceding(v) if v.is_null() => "a running accumulator, no rows".to_string(),
        WindowFrameBound::Preceding(v) => match frame.units {
            WindowFrameUnits::Rows => format!("the last {v} rows"),
            _ => format!("the rows within {} of the newest", bound_text(v)),
        },
        _ => "the current row's peers".to_string(),
    };
    format!("{}: {reach}", short_name(function))
}

/// A function's name without its OVER clause (EXPLAIN prints that once).
fn short_name(function: &dyn WindowExpr) -> &str {
    let name = function.name();
    let cut = [" PARTITION BY", " ORDER BY", " ROWS", " RANGE"]
        .iter()
        .filter_map(|clause| name.find(clause))
        .min()
        .unwrap_or(name.len());
    &name[..cut]
}

/// How a function's state in a partition is saved. DataFusion's evaluation
/// state ([`WindowAggState`]) is public and saved as it is; its accumulator
/// or evaluator is not (nor nameable), so a new one is brought to the same
/// state through DataFusion's own evaluation.
#[derive(Clone, Copy, PartialEq)]
enum Kept {
    /// A running aggregate (a frame from UNBOUNDED PRECEDING): its
    /// accumulator's state, merged into a new one.
    Running,
    /// A sliding aggregate: its accumulator holds the rows of the last
    /// frame, which the partition keeps, so a new one is fed them.
    Sliding,
    /// `ROW_NUMBER()`: its evaluator counts the rows it numbered.
    RowNumber,
    /// An evaluator with no state of its own (`lag`, `lead`, ...).
    Stateless,
}

/// How `function`'s state is saved, or the refusal naming it.
fn kept(function: &dyn WindowExpr) -> Result<Kept> {
    let refuse = |why: &str| {
        not_impl_err!(
            "checkpoints: {} in an OVER aggregate cannot save its state yet ({why}); run the query without --checkpoint-dir",
            short_name(function)
        )
    };
    let frame = function.get_window_frame();
    if frame.units == WindowFrameUnits::Groups {
        return refuse("a GROUPS frame");
    }
    let any = function.as_any();
    if any.is::<PlainAggregateWindowExpr>() {
        return Ok(Kept::Running);
    }
    if any.is::<SlidingAggregateWindowExpr>() {
        // The filter is not public: a new accumulator could not be fed only
        // the rows it lets through.
        if format!("{function:?}").contains("filter: Some(") {
            return refuse("a FILTER on a sliding frame");
        }
        return Ok(Kept::Sliding);
    }
    let Some(udwf) = any.downcast_ref::<StandardWindowExpr>().and_then(|s| {
        s.get_standard_func_expr()
            .as_any()
            .downcast_ref::<WindowUDFExpr>()
    }) else {
        return refuse("not a known kind of window function");
    };
    let ignores_nulls = format!("{udwf:?}").contains("ignore_nulls: true");
    match udwf.fun().name() {
        "row_number" => Ok(Kept::RowNumber),
        "lag" | "lead" if !ignores_nulls => Ok(Kept::Stateless),
        // They remember a value only over a frame from UNBOUNDED PRECEDING.
        "first_value" | "nth_value" if !frame.start_bound.is_unbounded() => Ok(Kept::Stateless),
        "last_value" => Ok(Kept::Stateless),
        _ => refuse("its evaluator's state is not public"),
    }
}

/// The columns of the partition table, before its keys.
const PARTITION_COLUMNS: [&str; 7] = [
    "rows",
    "emitted",
    "last",
    "waits",
    "waiting_since",
    "is_end",
    "n_out_row",
];

/// The columns of a function's state table.
const STATE_COLUMNS: [&str; 9] = [
    "partition",
    "frame_start",
    "frame_end",
    "calculated",
    "pruned",
    "missing",
    "is_end",
    "frame_context",
    "out",
];

/// Rows `ROW_NUMBER()` is fed at a time when it counts again.
const COUNT_CHUNK: usize = 8192;

impl OverAggregateOperator {
    /// The partitions (`over_partitions`: a row each, then its key; their
    /// rows one after the other in `over_rows`), and per function its state
    /// in each (`over_state_N`) and the values it computed that did not go
    /// out yet (`over_out_N`).
    fn snapshot_partitions(&mut self, into: &mut StateSnapshot) -> Result<()> {
        let kinds = self
            .spec
            .functions
            .iter()
            .map(|f| kept(f.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let keys: Vec<PartitionKey> = self.partitions.keys().cloned().collect();
        let mut table = Vec::with_capacity(keys.len());
        let mut rows = Vec::with_capacity(keys.len());
        for partition in keys.iter().filter_map(|k| self.partitions.get(k)) {
            table.push(vec![
                partition.rows.record_batch.num_rows() as i64,
                partition.emitted as i64,
                partition.last,
                i64::from(partition.waiting_since.is_some()),
                partition.waiting_since.unwrap_or(NO_WATERMARK),
                i64::from(partition.rows.is_end),
                partition.rows.n_out_row as i64,
            ]);
            rows.push(&partition.rows.record_batch);
        }
        let key_columns = self.key_columns(&keys)?;
        into.put_batch(
            "over_partitions",
            with_columns(
                int_columns(&PARTITION_COLUMNS, table.into_iter())?,
                vec![key_columns],
            )?,
        );
        into.put_batch("over_rows", concat_batches(&self.spec.input_schema, rows)?);
        for (f, states) in self.states.iter_mut().enumerate() {
            let function = &self.spec.functions[f];
            let (mut kept_states, mut outs, mut accumulators) = (Vec::new(), Vec::new(), Vec::new());
            for (p, key) in keys.iter().enumerate() {
                let Some(window) = states.get_mut(key) else {
                    continue;
                };
                if kinds[f] == Kept::Running {
                    // Reading an accumulator's state may drain it (and
                    // DataFusion lets it be read once): go on with a new
                    // one that merged it.
                    let Some(values) = window.aggregate_state()? else {
                        return internal_err!("{} has no accumulator", function.name());
                    };
                    let columns = values
                        .iter()
                        .map(|v| v.to_array_of_size(1))
                        .collect::<Result<Vec<_>>>()?;
                    window.window_fn = merged(function.as_ref(), key, &columns)?.window_fn;
                    window.published = false;
                    accumulators.push(columns);
                }
                let state = &window.state;
                kept_states.push(vec![
                    p as i64,
                    state.window_frame_range.start as i64,
                    state.window_frame_range.end as i64,
                    state.last_calculated_index as i64,
                    state.offset_pruned_rows as i64,
                    state.n_row_result_missing as i64,
                    i64::from(state.is_end),
                    i64::from(state.window_frame_ctx.is_some()),
                    state.out_col.len() as i64,
                ]);
                outs.push(vec![Arc::clone(&state.out_col)]);
            }
            into.put_batch(
                &format!("over_state_{f}"),
                int_columns(&STATE_COLUMNS, kept_states.into_iter())?,
            );
            let count: usize = outs.iter().map(|o| o[0].len()).sum();
            let places = int_columns(&["row"], (0..count as i64).map(|i| vec![i]))?;
            into.put_batch(&format!("over_out_{f}"), with_columns(places, outs)?);
            if kinds[f] == Kept::Running {
                let places = int_columns(&["row"], (0..accumulators.len() as i64).map(|i| vec![i]))?;
                into.put_batch(
                    &format!("over_accumulator_{f}"),
                    with_columns(places, accumulators)?,
                );
            }
        }
        Ok(())
    }

    /// The partition keys as columns, one a PARTITION BY expression.
    fn key_columns(&self, keys: &[PartitionKey]) -> Result<Vec<ArrayRef>> {
        let Some(first) = self.spec.functions.first() else {
            return Ok(Vec::new());
        };
        first
            .partition_by()
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if keys.is_empty() {
                    let data_type = e.data_type(&self.spec.input_schema)?;
                    return Ok(arrow::array::new_empty_array(&data_type));
                }
                ScalarValue::iter_to_array(
                    keys.iter()
                        .map(|k| k.get(i).cloned().unwrap_or(ScalarValue::Null)),
                )
            })
            .collect()
    }

    /// Take back what [`OverAggregateOperator::snapshot_partitions`] wrote.
    fn restore_partitions(&mut self, from: &StateSnapshot) -> Result<()> {
        let table = from.batch("over_partitions")?;
        let width = PARTITION_COLUMNS.len();
        let partitions = int_rows(table, width)?;
        let key_columns = &table.columns()[width..];
        let rows = from.batch("over_rows")?;
        let rows = RecordBatch::try_new(Arc::clone(&self.spec.input_schema), rows.columns().to_vec())?;
        let mut keys = Vec::with_capacity(partitions.len());
        let mut at = 0;
        self.partitions.clear();
        self.waiting.clear();
        for (p, kept) in partitions.iter().enumerate() {
            let key = get_row_at_idx(key_columns, p)?;
            let count = as_index(kept[0])?;
            if at + count > rows.num_rows() {
                return exec_err!("an OVER aggregate's checkpoint has fewer rows than its partitions hold");
            }
            let waiting_since = (kept[3] != 0).then_some(kept[4]);
            self.set_waiting(None, waiting_since);
            let mut batch = PartitionBatchState::new_with_batch(own_rows(&rows, at, count)?);
            batch.is_end = kept[5] != 0;
            batch.n_out_row = as_index(kept[6])?;
            at += count;
            self.partitions.insert(
                key.clone(),
                Partition {
                    rows: batch,
                    emitted: as_index(kept[1])?,
                    last: kept[2],
                    waiting_since,
                },
            );
            keys.push(key);
        }
        for f in 0..self.spec.functions.len() {
            self.states[f] = self.restore_function(f, &keys, from)?;
        }
        self.partition_bytes = self.partitions.values().map(partition_bytes).sum();
        Ok(())
    }

    /// Function `f`'s states in the partitions `keys` (in the order kept).
    fn restore_function(
        &self,
        f: usize,
        keys: &[PartitionKey],
        from: &StateSnapshot,
    ) -> Result<PartitionWindowAggStates> {
        let function = &self.spec.functions[f];
        let kind = kept(function.as_ref())?;
        let out_type = function.field()?.data_type().clone();
        let outs = from.batch(&format!("over_out_{f}"))?;
        let out_values = outs.columns().get(1).cloned();
        let accumulators = match kind {
            Kept::Running => Some(from.batch(&format!("over_accumulator_{f}"))?),
            _ => None,
        };
        let mut out_at = 0;
        let mut accumulator_at = 0;
        let mut states = PartitionWindowAggStates::default();
        for saved in int_rows(from.batch(&format!("over_state_{f}"))?, STATE_COLUMNS.len())? {
            let Some(key) = usize::try_from(saved[0]).ok().and_then(|p| keys.get(p)) else {
                return exec_err!("an OVER aggregate's checkpoint has state for a partition it lacks");
            };
            let Some(partition) = self.partitions.get(key) else {
                return exec_err!("an OVER aggregate's checkpoint lacks a partition's rows");
            };
            let frame = as_index(saved[1])?..as_index(saved[2])?;
            let out_len = as_index(saved[8])?;
            let out_col = match &out_values {
                Some(values) if out_len > 0 && out_at + out_len <= values.len() => {
                    values.slice(out_at, out_len)
                }
                _ if out_len > 0 => return exec_err!("an OVER aggregate's checkpoint lacks computed values"),
                _ => arrow::array::new_empty_array(&out_type),
            };
            out_at += out_len;
            let context = (saved[7] != 0).then(|| {
                let order = function.order_by().iter().map(|o| o.options).collect();
                WindowFrameContext::new(Arc::clone(function.get_window_frame()), order)
            });
            let state = WindowAggState {
                window_frame_range: frame.clone(),
                window_frame_ctx: context,
                last_calculated_index: as_index(saved[3])?,
                offset_pruned_rows: as_index(saved[4])?,
                out_col,
                n_row_result_missing: as_index(saved[5])?,
                is_end: saved[6] != 0,
            };
            let rows = &partition.rows.record_batch;
            let mut window = match kind {
                Kept::Running => {
                    let columns: Option<Vec<ArrayRef>> = accumulators.and_then(|batch| {
                        (accumulator_at < batch.num_rows()).then(|| {
                            batch.columns()[1..]
                                .iter()
                                .map(|c| c.slice(accumulator_at, 1))
                                .collect()
                        })
                    });
                    let Some(columns) = columns else {
                        return exec_err!("an OVER aggregate's checkpoint lacks an accumulator's state");
                    };
                    accumulator_at += 1;
                    merged(function.as_ref(), key, &columns)?
                }
                Kept::Sliding => {
                    if frame.start > frame.end || frame.end > rows.num_rows() {
                        return exec_err!("an OVER aggregate's checkpoint has a frame outside its rows");
                    }
                    fed_accumulator(
                        function.as_ref(),
                        key,
                        rows.slice(frame.start, frame.end - frame.start),
                    )?
                }
                Kept::RowNumber => counted(
                    function.as_ref(),
                    key,
                    state.offset_pruned_rows + state.last_calculated_index,
                )?,
                Kept::Stateless => WindowState {
                    state: WindowAggState::new(&out_type)?,
                    window_fn: function.create_window_fn()?,
                    published: false,
                },
            };
            window.state = state;
            states.insert(key.clone(), window);
        }
        Ok(states)
    }
}

/// A new state of running aggregate `function` whose accumulator merged
/// the state `columns` (one row): fed by DataFusion's evaluation of an
/// aggregate whose accumulator is a new one of `function`'s that merges what
/// it is first given ([`MergeFirst`]).
fn merged(function: &dyn WindowExpr, key: &PartitionKey, columns: &[ArrayRef]) -> Result<WindowState> {
    let Some(running) = function.as_any().downcast_ref::<PlainAggregateWindowExpr>() else {
        return internal_err!("{} is not a running aggregate", function.name());
    };
    let fields: Vec<arrow::datatypes::Field> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| arrow::datatypes::Field::new(format!("s{i}"), c.data_type().clone(), true))
        .collect();
    let schema = Arc::new(arrow::datatypes::Schema::new(fields));
    let arguments = (0..columns.len())
        .map(|i| {
            Arc::new(datafusion::physical_expr::expressions::Column::new(
                &format!("s{i}"),
                i,
            )) as _
        })
        .collect();
    let merge = MergeFirst::new(Arc::new(running.get_aggregate_expr().clone()));
    let aggregate = datafusion::physical_expr::aggregate::AggregateExprBuilder::new(
        Arc::new(datafusion::logical_expr::AggregateUDF::new_from_impl(merge)),
        arguments,
    )
    .schema(Arc::clone(&schema))
    .alias("merged")
    .build()?;
    let frame = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
        WindowFrameBound::CurrentRow,
    );
    let feeder = PlainAggregateWindowExpr::new(Arc::new(aggregate), &[], &[], Arc::new(frame), None);
    evaluated_alone(&feeder, key, RecordBatch::try_new(schema, columns.to_vec())?)
}

/// An aggregate whose accumulators are `original`'s, except that the
/// first rows they take are states to merge: how a saved running
/// accumulator is given back (DataFusion's window evaluation only updates).
#[derive(Debug)]
struct MergeFirst {
    original: Arc<datafusion::physical_expr::aggregate::AggregateFunctionExpr>,
    signature: datafusion::logical_expr::Signature,
}

impl MergeFirst {
    fn new(original: Arc<datafusion::physical_expr::aggregate::AggregateFunctionExpr>) -> Self {
        let signature = datafusion::logical_expr::Signature::variadic_any(
            datafusion::logical_expr::Volatility::Immutable,
        );
        Self { original, signature }
    }
}

impl PartialEq for MergeFirst {
    fn eq(&self, other: &Self) -> bool {
        self.original.name() == other.original.name()
    }
}

impl Eq for MergeFirst {}

impl std::hash::Hash for MergeFirst {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.original.name().hash(state);
    }
}

impl datafusion::logical_expr::AggregateUDFImpl for MergeFirst {
    fn name(&self) -> &str {
        "merge_saved_state"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[arrow::datatypes::DataType]) -> Result<arrow::datatypes::DataType> {
        Ok(self.original.field().data_type().clone())
    }

    fn accumulator(
        &self,
        _args: datafusion::logical_expr::function::AccumulatorArgs,
    ) -> Result<Box<dyn datafusion::logical_expr::Accumulator>> {
        Ok(Box::new(MergingFirst {
            inner: self.original.create_accumulator()?,
            merged: false,
        }))
    }
}

/// An accumulator that merges the first rows it takes, then updates.
#[derive(Debug)]
struct MergingFirst {
    inner: Box<dyn datafusion::logical_expr::Accumulator>,
    merged: bool,
}

impl datafusion::logical_expr::Accumulator for MergingFirst {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if self.merged {
            return self.inner.update_batch(values);
        }
        self.merged = true;
        self.inner.merge_batch(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.inner.evaluate()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

/// A saved count or index.
fn as_index(value: i64) -> Result<usize> {
    usize::try_from(value)
        .or_else(|_| exec_err!("an OVER aggregate's checkpoint has a negative count ({value})"))
}

/// A new state of sliding aggregate `function` whose accumulator took
/// `rows` (its last frame): fed by DataFusion's evaluation of the same
/// aggregate over a frame that holds them all.
fn fed_accumulator(function: &dyn WindowExpr, key: &PartitionKey, rows: RecordBatch) -> Result<WindowState> {
    let Some(sliding) = function.as_any().downcast_ref::<SlidingAggregateWindowExpr>() else {
        return internal_err!("{} is not a sliding aggregate", function.name());
    };
    let all = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
        WindowFrameBound::Following(ScalarValue::UInt64(None)),
    );
    let feeder = SlidingAggregateWindowExpr::new(
        Arc::new(sliding.get_aggregate_expr().clone()),
        &[],
        &[],
        Arc::new(all),
        None,
    );
    evaluated_alone(&feeder, key, rows)
}

/// The state `function` has in partition `key` after DataFusion evaluated
/// it over `rows`, the whole partition.
fn evaluated_alone(function: &dyn WindowExpr, key: &PartitionKey, rows: RecordBatch) -> Result<WindowState> {
    let mut partition = PartitionBatchState::new_with_batch(rows);
    partition.is_end = true;
    let mut batches = PartitionBatches::default();
    batches.insert(key.clone(), partition);
    let mut states = PartitionWindowAggStates::default();
    function.evaluate_stateful(&batches, &mut states, &WindowEvalContext::default())?;
    match states.swap_remove(key) {
        Some(state) => Ok(state),
        None => internal_err!(
            "{} evaluated over a partition has no state there",
            function.name()
        ),
    }
}

/// A new state of `ROW_NUMBER()` `function` that numbered `rows` rows:
/// DataFusion's evaluation over that many rows (of no columns, which it does
/// not read), a chunk at a time.
fn counted(function: &dyn WindowExpr, key: &PartitionKey, mut rows: usize) -> Result<WindowState> {
    let out_type = function.field()?.data_type().clone();
    let mut states = PartitionWindowAggStates::default();
    let none = Arc::new(arrow::datatypes::Schema::empty());
    while rows > 0 {
        let chunk = rows.min(COUNT_CHUNK);
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(chunk));
        let batch = RecordBatch::try_new_with_options(Arc::clone(&none), vec![], &options)?;
        let mut batches = PartitionBatches::default();
        batches.insert(key.clone(), PartitionBatchState::new_with_batch(batch));
        function.evaluate_stateful(&batches, &mut states, &WindowEvalContext::default())?;
        // The next chunk starts afresh; only the evaluator's count goes on.
        if let Some(window) = states.get_mut(key) {
            window.state = WindowAggState::new(&out_type)?;
        }
        rows -= chunk;
    }
    match states.swap_remove(key) {
        Some(state) => Ok(state),
        None => Ok(WindowState {
            state: WindowAggState::new(&out_type)?,
            window_fn: function.create_window_fn()?,
            published: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{
        Harness, check, check_memory_limit, late, metrics, window_function,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::common::ScalarValue;
    use datafusion::functions_aggregate::sum::sum_udaf;
    use datafusion::functions_window::expr_fn::{lag, lead, row_number};
    use datafusion::logical_expr::expr::WindowFunction;
    use datafusion::logical_expr::{Expr, ExprFunctionExt, WindowFunctionDefinition, col};
    use datafusion::physical_expr::expressions::Column;

    /// Rows `(k, ts, v)`, ts in milliseconds.
    fn input() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("v", DataType::Int64, true),
        ]))
    }

    /// `function OVER (PARTITION BY k ORDER BY ts <frame>)` for each function.
    fn harness(functions: Vec<Expr>, frame: Option<WindowFrame>, ttl: Option<Nanos>) -> Harness {
        let metrics = metrics();
        let operator = operator(functions, frame, ttl, late(&metrics));
        Harness::single(Box::new(operator), input(), &metrics)
    }

    fn operator(
        functions: Vec<Expr>,
        frame: Option<WindowFrame>,
        ttl: Option<Nanos>,
        late: LateRows,
    ) -> OverAggregateOperator {
        let input = input();
        let mut fields = input.fields().to_vec();
        let functions = functions
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let f = f
                    .partition_by(vec![col("k")])
                    .order_by(vec![col("ts").sort(true, false)]);
                let f = match &frame {
                    Some(frame) => f.window_frame(frame.clone()),
                    None => f,
                };
                let (function, field) =
                    window_function(f.build().expect("a window function"), &input, &format!("f{i}"));
                fields.push(field);
                function
            })
            .collect();
        let spec = OverAggregateSpec {
            functions,
            time: Arc::new(Column::new("ts", 1)),
            input_schema: Arc::clone(&input),
            schema: Arc::new(Schema::new(fields)),
            ttl,
        };
        OverAggregateOperator::try_new(spec, late).expect("an operator")
    }

    /// `sum(column)` as a window function (not an aggregate).
    fn sum_over(column: &str) -> Expr {
        Expr::from(WindowFunction::new(
            WindowFunctionDefinition::AggregateUDF(sum_udaf()),
            vec![col(column)],
        ))
    }

    fn rows_preceding(n: u64) -> WindowFrame {
        WindowFrame::new_bounds(
            WindowFrameUnits::Rows,
            WindowFrameBound::Preceding(ScalarValue::UInt64(Some(n))),
            WindowFrameBound::CurrentRow,
        )
    }

    /// A script over rows `(k, ts, v)` with rows out of order, late, held
    /// back, and partitions forgotten by a 10 s TTL.
    const RESTORE_SCRIPT: &str = "
        rows (1, 3, 10) (1, 1, 1) (2, 2, 5)
        wm 3
        rows (1, 4, 100) (1, 5, 3)
        rows (2, 6, 7)
        wm 5
        rows (1, 2, 9)
        late
        wm 10
        rows (1, 12, 4) (2, 30, 8) (1, 13, 6)
        wm 14
        rows (1, 14, 2)
        wm 31
        rows (1, 31, 1) (2, 31, 2)
        wm +inf
        end
        ";

    #[test]
    fn a_restored_over_aggregate_carries_on_where_it_stopped() {
        use crate::stream::operators::testing::{S, check_restores};
        let following = WindowFrame::new_bounds(
            WindowFrameUnits::Rows,
            WindowFrameBound::Preceding(ScalarValue::UInt64(Some(1))),
            WindowFrameBound::Following(ScalarValue::UInt64(Some(1))),
        );
        let range = WindowFrame::new_bounds(
            WindowFrameUnits::Range,
            WindowFrameBound::Preceding(ScalarValue::IntervalMonthDayNano(Some(
                arrow::datatypes::IntervalMonthDayNano::new(0, 0, 2_000_000_000),
            ))),
            WindowFrameBound::CurrentRow,
        );
        // None: the default frame, a running sum.
        let sums = [Some(rows_preceding(2)), Some(following), Some(range), None];
        for frame in sums {
            check_restores(
                move || harness(vec![sum_over("v")], frame.clone(), Some(10 * S)),
                RESTORE_SCRIPT,
            );
        }
        check_restores(
            || {
                harness(
                    vec![
                        row_number(),
                        lag(col("v"), Some(1), None),
                        lead(col("v"), Some(1), None),
                    ],
                    None,
                    Some(10 * S),
                )
            },
            RESTORE_SCRIPT,
        );
    }

    #[test]
    fn a_function_whose_state_is_not_public_is_refused_by_name_at_a_checkpoint() {
        let rank = Expr::from(WindowFunction::new(
            WindowFunctionDefinition::WindowUDF(datafusion::functions_window::rank::rank_udwf()),
            vec![],
        ));
        let mut operator = operator(vec![row_number(), rank], None, None, late(&metrics()));
        let err = operator
            .snapshot(&mut StateSnapshot::default())
            .expect_err("rank's state cannot be saved");
        let text = err.to_string();
        assert!(
            text.contains("f1 in an OVER aggregate") && text.contains("--checkpoint-dir"),
            "{text}"
        );
    }

    #[test]
    fn a_row_goes_out_when_the_watermark_passes_it_with_its_frame_of_earlier_rows() {
        check(
            &mut harness(vec![sum_over("v")], Some(rows_preceding(1)), None),
            "
            rows (1, 3, 10) (1, 1, 1) (2, 2, 5)
            wm 3
            # 3 s is not passed yet; 4 s comes with it out of order.
            rows (1, 4, 100)
            wm 10
            rows (1, 5, 7)
            late
            wm +inf
            end
            ",
            "
            (1, 1, 1, 1) @-inf
            (2, 2, 5, 5) @-inf
            wm 3
            (1, 3, 10, 11) @3
            (1, 4, 100, 110) @3
            wm 10
            late 1
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn a_range_frame_reaches_back_by_time_and_takes_the_current_rows_peers() {
        let frame = WindowFrame::new_bounds(
            WindowFrameUnits::Range,
            WindowFrameBound::Preceding(ScalarValue::IntervalMonthDayNano(Some(
                arrow::datatypes::IntervalMonthDayNano::new(0, 0, 2_000_000_000),
            ))),
            WindowFrameBound::CurrentRow,
        );
        check(
            &mut harness(vec![sum_over("v")], Some(frame), None),
            "
            rows (1, 1, 1) (1, 2, 2) (1, 2, 4)
            wm 3
            # 3 s reaches back to 1 s; 4 s to 2 s.
            rows (1, 3, 8) (1, 4, 16)
            wm 5
            end
            ",
            "
            (1, 1, 1, 1) @-inf
            (1, 2, 2, 7) @-inf
            (1, 2, 4, 7) @-inf
            wm 3
            (1, 3, 8, 15) @3
            (1, 4, 16, 30) @3
            wm 5
            end
            ",
        );
    }

    #[test]
    fn row_number_and_lag_continue_across_releases_and_lead_waits_for_the_next_row_holding_the_watermark() {
        check(
            &mut harness(
                vec![
                    row_number(),
                    lag(col("v"), Some(1), None),
                    lead(col("v"), Some(1), None),
                ],
                None,
                None,
            ),
            "
            rows (1, 1, 10) (1, 2, 20)
            wm 3
            # The row at 2 s waits for its lead, and so does the watermark
            # passed on (2 s; then 5 s).
            rows (1, 5, 50) (2, 5, 7)
            wm 6
            wm +inf
            end
            ",
            "
            (1, 1, 10, 1, null, 20) @-inf
            wm 2
            (1, 2, 20, 2, 10, 50) @2
            wm 5
            (1, 5, 50, 3, 20, null) @5
            (2, 5, 7, 1, null, null) @5
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn a_partition_older_than_the_ttl_starts_afresh() {
        check(
            &mut harness(
                vec![row_number()],
                None,
                Some(10 * crate::stream::operators::testing::S),
            ),
            "
            rows (1, 1, 1) (1, 5, 2)
            wm 6
            # 14 s is 9 s after 5 s: kept; 30 s is 16 s after: afresh.
            rows (1, 14, 3)
            wm 20
            rows (1, 30, 4)
            wm +inf
            ",
            "
            (1, 1, 1, 1) @-inf
            (1, 5, 2, 2) @-inf
            wm 6
            (1, 14, 3, 3) @6
            wm 20
            (1, 30, 4, 1) @20
            wm +inf
            ",
        );
    }

    #[test]
    fn a_partition_keeps_only_the_rows_its_frame_reaches() {
        let mut operator = operator(
            vec![sum_over("v")],
            Some(rows_preceding(3)),
            None,
            late(&metrics()),
        );
        let mut out = Vec::new();
        for second in 1..=50 {
            let rows =
                crate::stream::operators::testing::batch(&input(), &format!("(1, {second}, {second})"));
            operator
                .process(
                    StreamBatch::new(rows, RowWatermarks::Constant(NO_WATERMARK)),
                    &mut out,
                )
                .expect("rows");
            operator
                .on_watermark((second + 1) * crate::stream::operators::testing::S, &mut out)
                .expect("a watermark");
            let counted: usize = operator.partitions.values().map(partition_bytes).sum();
            assert_eq!(
                operator.partition_bytes, counted,
                "the running count of bytes is right"
            );
        }
        let held: usize = operator
            .partitions
            .values()
            .map(|p| p.rows.record_batch.num_rows())
            .sum();
        assert!(held <= 4, "a frame of 3 preceding rows keeps {held} rows");
        let emitted: usize = out
            .iter()
            .map(|e| match e {
                Event::Data(b) => b.batch.num_rows(),
                _ => 0,
            })
            .sum();
        assert_eq!(emitted, 50);
    }

    #[test]
    fn partitions_beyond_the_memory_limit_are_an_error_naming_them() {
        let script = "rows (1, 3, 10) (1, 1, 1) (2, 2, 5)\nwm 3";
        check_memory_limit(
            || harness(vec![sum_over("v")], Some(rows_preceding(1)), None),
            script,
            "OverAggregate",
            "over_partitions: 0 partitions and 3 waiting rows",
        );
    }
}

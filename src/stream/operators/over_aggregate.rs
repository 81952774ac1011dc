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
use datafusion::error::Result;
use datafusion::logical_expr::window_state::PartitionBatchState;
use datafusion::logical_expr::{WindowFrame, WindowFrameBound, WindowFrameUnits};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::window::{
    PartitionBatches, PartitionKey, PartitionWindowAggStates, StandardWindowExpr, WindowEvalContext,
    WindowExpr,
};

use super::pending_rows::PendingRows;
use super::window_functions::sort_by_partition;
use crate::stream::late::LateRows;
use crate::stream::operator::{
    END_OF_INPUT, Event, NO_WATERMARK, Nanos, Operator, RowWatermarks, StreamBatch, nanos_values,
};

/// What an [`OverAggregateOperator`] computes.
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
            let partition = self.partitions.entry(key.clone()).or_insert_with(|| Partition {
                rows: PartitionBatchState::new(Arc::clone(&self.spec.input_schema)),
                emitted: 0,
                last: first_time,
                waiting_since: None,
            });
            partition.rows.extend(&slice)?;
            partition.last = last_time;
            touched.push(key);
        }
        Ok(touched)
    }

    /// Drop a partition and its functions' states.
    fn forget(&mut self, key: &PartitionKey) {
        if let Some(partition) = self.partitions.remove(key) {
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
            self.partitions.insert(
                key,
                Partition {
                    rows,
                    emitted,
                    last,
                    waiting_since,
                },
            );
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
        self.partitions
            .values()
            .map(|p| p.rows.record_batch.get_array_memory_size())
            .sum::<usize>()
            + self.pending.bytes()
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

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        self.pending.push(input, &mut self.late)
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
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{Harness, check, late, metrics, window_function};
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
}

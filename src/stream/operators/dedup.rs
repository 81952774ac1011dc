//! Dedup on event time, keeping each key's first row: `SELECT * FROM (SELECT
//! *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM t) WHERE rn =
//! 1` (Flink's deduplication). Append-only: a row waits until the watermark
//! passes its time (an earlier row of its key may still come on time until
//! then); then the first of each key's released rows goes out, unless the
//! key already had one. State: the rows waiting, and one time per key (its
//! latest row's), so a key costs its key bytes and eight more.
//!
//! With `state.ttl`, a key whose latest row is that old (in event time) is
//! forgotten: its next row goes out as a first row again (Flink's state TTL
//! does the same). Whether a key is forgotten depends only on its rows'
//! times (a row at least the TTL after the key's latest), never on when a
//! sweep ran. A row that comes after the watermark passed its time is late:
//! counted, never kept.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::window::WindowExpr;

use super::pending_rows::PendingRows;
use super::window_functions::{RowBytes, sort_by_partition};
use crate::stream::checkpoint::{StateSnapshot, int_columns, int_rows, with_columns};
use crate::stream::late::LateRows;
use crate::stream::memory::StateMemory;
use crate::stream::operator::{
    END_OF_INPUT, Event, MILLISECOND, NO_WATERMARK, Nanos, Operator, RowWatermarks, StreamBatch, nanos_values,
};

/// Keeps each key's first row by event time.
pub struct DedupOperator {
    /// The `ROW_NUMBER()` it stands for: its PARTITION BY is the key, its
    /// ORDER BY (event time first, ascending) picks the first row.
    function: Arc<dyn WindowExpr>,
    /// The input's columns, then the row number (always 1).
    schema: SchemaRef,
    keys: RowConverter,
    /// Per key, the time of its latest row.
    seen: HashMap<Box<[u8]>, Nanos>,
    /// Rows whose time the watermark has not passed.
    pending: PendingRows,
    ttl: Option<Nanos>,
    late: LateRows,
    watermark: Nanos,
    next_sweep: Nanos,
    /// The keys' and waiting rows' share of the memory pool.
    memory: StateMemory,
}

impl DedupOperator {
    /// Dedup by `function`'s PARTITION BY, first by its ORDER BY, whose
    /// first expression is `time`; rows out are of `schema`.
    pub fn try_new(
        function: Arc<dyn WindowExpr>,
        time: Arc<dyn PhysicalExpr>,
        input_schema: SchemaRef,
        schema: SchemaRef,
        ttl: Option<Nanos>,
        late: LateRows,
    ) -> Result<Self> {
        let fields = function
            .partition_by()
            .iter()
            .map(|e| Ok(SortField::new(e.data_type(&input_schema)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            function,
            pending: PendingRows::new(time, input_schema),
            schema,
            keys: RowConverter::new(fields)?,
            seen: HashMap::new(),
            ttl,
            late,
            watermark: NO_WATERMARK,
            next_sweep: NO_WATERMARK,
            memory: StateMemory::new("Dedup", "dedup_keys")
                .with_fix("bound the keys with SET 'state.ttl', or deduplicate on fewer keys"),
        })
    }

    /// The first row of each key among `rows` that had none yet.
    fn firsts(&mut self, rows: &RecordBatch) -> Result<Option<RecordBatch>> {
        let (rows, keys) = sort_by_partition(self.function.as_ref(), rows)?;
        let times = self.pending.times(&rows)?;
        let times = nanos_values(&times)?;
        let key_columns: Vec<ArrayRef> = keys.into_iter().map(|k| k.values).collect();
        let key_rows = RowBytes::new(&self.keys, &key_columns)?;
        let ranges = datafusion::common::utils::evaluate_partition_ranges(
            rows.num_rows(),
            &key_columns
                .iter()
                .map(|values| arrow::compute::SortColumn {
                    values: Arc::clone(values),
                    options: None,
                })
                .collect::<Vec<_>>(),
        )?;
        let mut firsts = Vec::new();
        for range in ranges {
            let key = key_rows.get(range.start);
            let (first, last) = (times.value(range.start), times.value(range.end - 1));
            let new = match self.seen.get_mut(key) {
                Some(latest) => {
                    let expired = self.ttl.is_some_and(|ttl| first - *latest >= ttl);
                    *latest = (*latest).max(last);
                    expired
                }
                None => {
                    self.seen.insert(key.into(), last);
                    true
                }
            };
            if new {
                firsts.push(range.start as u32);
            }
        }
        if firsts.is_empty() {
            return Ok(None);
        }
        let firsts = take_record_batch(&rows, &UInt32Array::from(firsts))?;
        // ROW_NUMBER's column: every row kept is the first of its key.
        let one = ScalarValue::UInt64(Some(1))
            .cast_to(self.schema.field(self.schema.fields().len() - 1).data_type())?
            .to_array_of_size(firsts.num_rows())?;
        let mut columns = firsts.columns().to_vec();
        columns.push(one);
        Ok(Some(RecordBatch::try_new(Arc::clone(&self.schema), columns)?))
    }

    /// Forget the keys the TTL expired (a later row would go out anyway); at
    /// most once per quarter TTL of event time.
    fn sweep(&mut self, watermark: Nanos) {
        let Some(ttl) = self.ttl else { return };
        if watermark < self.next_sweep || watermark == END_OF_INPUT {
            return;
        }
        self.next_sweep = watermark.saturating_add(ttl / 4);
        self.seen
            .retain(|_, latest| latest.saturating_add(ttl) > watermark);
    }
}

impl Operator for DedupOperator {
    fn name(&self) -> String {
        format!(
            "Dedup keeping the first row per key by {}: {}; {}",
            self.pending.time(),
            self.function.name(),
            self.late.policy()
        )
    }

    fn state_rows(&self) -> usize {
        // One time per key, and the rows waiting for the watermark.
        self.seen.len() + self.pending.len()
    }

    fn state_bytes(&self) -> usize {
        // An estimate: the keys held times the mean size of a sample of
        // them (entry and key bytes), and the waiting rows.
        const SAMPLE: usize = 64;
        let entry = std::mem::size_of::<(Box<[u8]>, Nanos)>();
        let sampled: Vec<usize> = self.seen.keys().take(SAMPLE).map(|k| entry + k.len()).collect();
        let keys = match sampled.len() {
            0 => 0,
            n => sampled.iter().sum::<usize>() / n * self.seen.len(),
        };
        keys + self.pending.bytes()
    }

    fn open(&mut self, task: Arc<TaskContext>) -> futures::future::BoxFuture<'_, Result<()>> {
        let bytes = self.state_bytes();
        self.memory.opened(&task, bytes)
    }

    fn state(&self) -> Option<String> {
        let bound = match self.ttl {
            Some(ttl) => format!(
                "a key is forgotten once its latest row is state.ttl ({} ms) old",
                ttl / MILLISECOND
            ),
            None => "keys are kept for ever (bound them with SET 'state.ttl')".to_string(),
        };
        Some(format!(
            "dedup_keys: one time per key seen, and the rows until the watermark passes their time; {bound}"
        ))
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        // Late rows written aside so far are on disk with the checkpoint.
        self.late.flush()?;
        self.pending.snapshot(into, "dedup_waiting")?;
        into.put_batch("dedup_keys", self.keys_batch()?);
        into.put_values("dedup_times", vec![self.watermark, self.next_sweep]);
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        self.pending.restore(from, "dedup_waiting")?;
        self.restore_keys(from.batch("dedup_keys")?)?;
        match from.values("dedup_times")? {
            [watermark, next_sweep] => (self.watermark, self.next_sweep) = (*watermark, *next_sweep),
            other => return exec_err!("a dedup's checkpoint has {} times, not 2", other.len()),
        }
        Ok(())
    }

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        self.pending.push(input, &mut self.late)?;
        self.reserve()
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        if let Some(rows) = self.pending.release(watermark)?
            && let Some(firsts) = self.firsts(&rows)?
        {
            // Released rows are at or after the watermark before this one
            // (earlier ones were late), so they carry it.
            out.push(Event::Data(StreamBatch::new(
                firsts,
                RowWatermarks::Constant(self.watermark),
            )));
        }
        self.sweep(watermark);
        self.late.flush()?;
        self.watermark = watermark;
        out.push(Event::Watermark(watermark));
        self.reserve()
    }
}

impl DedupOperator {
    /// Resize the memory pool's share to the keys and waiting rows.
    fn reserve(&self) -> Result<()> {
        self.memory.resize(self.state_bytes(), || {
            format!("{} keys and {} waiting rows", self.seen.len(), self.pending.len())
        })
    }

    /// The keys seen, a row each: the time of its latest row, then the key's
    /// columns (none without a PARTITION BY: the one key is empty bytes).
    fn keys_batch(&self) -> Result<RecordBatch> {
        let (keys, times): (Vec<&[u8]>, Vec<Nanos>) =
            self.seen.iter().map(|(key, time)| (key.as_ref(), *time)).unzip();
        let times = int_columns(&["latest"], times.into_iter().map(|t| vec![t]))?;
        if self.function.partition_by().is_empty() {
            return Ok(times);
        }
        let parser = self.keys.parser();
        let columns = self.keys.convert_rows(keys.iter().map(|k| parser.parse(k)))?;
        with_columns(times, vec![columns])
    }

    /// Take back the keys [`DedupOperator::keys_batch`] wrote.
    fn restore_keys(&mut self, batch: &RecordBatch) -> Result<()> {
        let times = int_rows(batch, 1)?;
        self.seen.clear();
        if self.function.partition_by().is_empty() {
            if let Some(time) = times.first() {
                self.seen.insert(Box::default(), time[0]);
            }
            return Ok(());
        }
        let keys = self.keys.convert_columns(&batch.columns()[1..])?;
        for (key, time) in keys.iter().zip(times) {
            self.seen.insert(key.data().into(), time[0]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{
        Harness, S, check, check_memory_limit, late, metrics, window_function_out,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::functions_window::expr_fn::row_number;
    use datafusion::logical_expr::{ExprFunctionExt, col};
    use datafusion::physical_expr::expressions::Column;

    /// Dedup rows `(k, ts, v)` by `k`, first by `ts`.
    fn dedup(ttl: Option<Nanos>) -> Harness {
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("v", DataType::Int64, true),
        ]));
        dedup_of(input, vec![col("k")], 1, ttl)
    }

    /// Dedup rows of `input` by `partition_by`, first by the time at `ts`.
    fn dedup_of(
        input: SchemaRef,
        partition_by: Vec<datafusion::logical_expr::Expr>,
        ts: usize,
        ttl: Option<Nanos>,
    ) -> Harness {
        let expr = row_number()
            .partition_by(partition_by)
            .order_by(vec![col("ts").sort(true, false)])
            .build()
            .expect("a window function");
        let (function, schema) = window_function_out(expr, &input, "rn");
        let metrics = metrics();
        let operator = DedupOperator::try_new(
            function,
            Arc::new(Column::new("ts", ts)),
            Arc::clone(&input),
            schema,
            ttl,
            late(&metrics),
        )
        .expect("a dedup");
        Harness::single(Box::new(operator), input, &metrics)
    }

    #[test]
    fn a_restored_dedup_carries_on_where_it_stopped() {
        crate::stream::operators::testing::check_restores(
            || dedup(Some(10 * S)),
            "
            rows (1, 5, 50) (2, 6, 60)
            rows@2 (1, 3, 30)
            wm 5
            rows (2, 7, 70) (1, 9, 90) (3, 12, 120)
            wm 8
            rows (3, 4, 40)
            late
            # 1's latest is 9 s: 30 s is afresh, 2's 7 s then 16 s is not.
            rows (1, 30, 300) (2, 16, 160)
            wm 20
            wm 40
            rows (1, 41, 410)
            wm +inf
            state
            ",
        );
        crate::stream::operators::testing::check_restores(
            || {
                let input = Arc::new(Schema::new(vec![
                    Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
                    Field::new("v", DataType::Int64, true),
                ]));
                dedup_of(input, vec![], 0, None)
            },
            "
            rows (4, 40) (2, 20)
            wm 3
            rows (5, 50)
            wm +inf
            ",
        );
    }

    #[test]
    fn each_key_keeps_its_first_row_by_time_once_the_watermark_passes_it() {
        check(
            &mut dedup(None),
            "
            rows (1, 5, 50) (2, 6, 60)
            # Earlier than the row at 5 s, and still on time.
            rows@2 (1, 3, 30)
            # Three rows waiting for the watermark, no key seen yet.
            state
            wm 5
            rows (2, 7, 70) (1, 9, 90)
            wm 8
            rows (3, 4, 40)
            late
            wm +inf
            state
            ",
            "
            state 3
            (1, 3, 30, 1) @-inf
            wm 5
            (2, 6, 60, 1) @5
            wm 8
            late 1
            wm +inf
            state 2
            ",
        );
    }

    #[test]
    fn a_key_idle_for_the_ttl_starts_afresh() {
        check(
            &mut dedup(Some(10 * S)),
            "
            rows (1, 1, 10) (1, 8, 80)
            wm 9
            # 8 s touched the key: 17 s is 9 s later, a repeat; 40 s is afresh.
            rows (1, 17, 170)
            wm 20
            rows (1, 40, 400)
            wm +inf
            ",
            "
            (1, 1, 10, 1) @-inf
            wm 9
            wm 20
            (1, 40, 400, 1) @20
            wm +inf
            ",
        );
    }

    #[test]
    fn with_no_partition_by_one_first_row_goes_out() {
        let input = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("v", DataType::Int64, true),
        ]));
        check(
            &mut dedup_of(input, vec![], 0, None),
            "
            rows (4, 40) (2, 20)
            wm 3
            rows (5, 50)
            wm +inf
            ",
            "
            (2, 20, 1) @-inf
            wm 3
            wm +inf
            ",
        );
    }

    #[test]
    fn keys_beyond_the_memory_limit_are_an_error_naming_them() {
        let script = "rows (1, 5, 10) (2, 6, 20)\nwm 10";
        check_memory_limit(
            || dedup(None),
            script,
            "Dedup",
            "dedup_keys: 0 keys and 2 waiting rows",
        );
    }
}

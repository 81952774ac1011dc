//! Window functions straight over a window TVF's rows, partitioned by the
//! window (Flink's window Top-N and window dedup): `ROW_NUMBER() OVER
//! (PARTITION BY window_start, window_end ORDER BY price DESC)` over
//! `TABLE(TUMBLE(...))`, with no aggregate between. A window's rows are held
//! until the watermark reaches its end, then evaluated together by
//! DataFusion's window expressions and emitted: append-only, each window
//! once. A row whose window had closed when it came is late (counted, and
//! written aside under the late policy).
//!
//! Under `WHERE rn <= N` (a `ROW_NUMBER()`), a window keeps only what can
//! still rank: once its rows pile up, they are ranked and those past N
//! dropped (a rank only grows as rows come), so a window holds about N rows
//! per partition, not all of its rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::window::WindowExpr;
use futures::future::BoxFuture;

use super::window_functions::evaluate;
use crate::stream::checkpoint::{StateSnapshot, int_columns, int_rows, with_columns};
use crate::stream::late::LateRows;
use crate::stream::memory::StateMemory;
use crate::stream::operator::{
    Event, NO_WATERMARK, Nanos, Operator, RowWatermarks, StreamBatch, nanos_values, to_nanos,
};

/// When a row's window closes: at its `window_end`, or (partitioned by
/// `window_start` alone) once its `window_start` plus the longest window is
/// passed.
#[derive(Debug, Clone, Copy)]
pub enum WindowClose {
    /// At the value of this column (`window_end`).
    End(usize),
    /// At the value of this column (`window_start`) plus this length.
    StartPlus(usize, Nanos),
}

/// Holds each window's rows until it closes, then appends the functions'
/// values.
pub struct WindowTopNOperator {
    /// Functions sharing one PARTITION BY (which holds the window) and ORDER BY.
    functions: Vec<Arc<dyn WindowExpr>>,
    /// When a row's window closes.
    close: WindowClose,
    input_schema: SchemaRef,
    schema: SchemaRef,
    /// Rows of each open window, by its end.
    windows: BTreeMap<Nanos, Held>,
    /// `WHERE rn <= N` over the (one) `ROW_NUMBER()`: rows past N are dropped.
    limit: Option<usize>,
    late: LateRows,
    watermark: Nanos,
    /// Bytes of every open window's rows, kept as they change.
    held_bytes: usize,
    /// The open windows' share of the memory pool.
    memory: StateMemory,
}

/// One open window's rows.
#[derive(Default)]
struct Held {
    batches: Vec<RecordBatch>,
    rows: usize,
    /// Bytes of `batches`.
    bytes: usize,
    /// Rank the rows (and drop those past the limit) once this many are held.
    compact_at: usize,
}

impl WindowTopNOperator {
    /// Functions over rows of `input_schema` whose windows close at `close`;
    /// rows out are of `schema`. With `limit`, the one function is a
    /// `ROW_NUMBER()` filtered by `<= limit`.
    pub fn new(
        functions: Vec<Arc<dyn WindowExpr>>,
        close: WindowClose,
        input_schema: SchemaRef,
        schema: SchemaRef,
        limit: Option<usize>,
        late: LateRows,
    ) -> Self {
        Self {
            functions,
            close,
            input_schema,
            schema,
            windows: BTreeMap::new(),
            limit: limit.filter(|&n| n > 0),
            late,
            watermark: NO_WATERMARK,
            held_bytes: 0,
            memory: StateMemory::new("WindowTopN", "window_rows")
                .with_fix("a shorter window, a smaller N, fewer rows per window"),
        }
    }

    /// Resize the memory pool's share to the open windows' rows.
    fn reserve(&self) -> Result<()> {
        self.memory.resize(self.held_bytes, || {
            format!(
                "{} rows in {} open windows",
                self.state_rows(),
                self.windows.len()
            )
        })
    }

    fn ends(&self, batch: &RecordBatch) -> Result<Vec<Nanos>> {
        let (column, name, plus) = match self.close {
            WindowClose::End(column) => (column, "window_end", 0),
            WindowClose::StartPlus(column, length) => (column, "window_start", length),
        };
        let ends = to_nanos(batch.column(column), name)?;
        // A window TVF puts a row with a NULL time in no window; its bound
        // never comes, so treat it as closed already (late, counted).
        let ends = nanos_values(&ends)?;
        Ok((0..ends.len())
            .map(|i| {
                if ends.is_null(i) {
                    NO_WATERMARK
                } else {
                    ends.value(i).saturating_add(plus)
                }
            })
            .collect())
    }

    /// Hold `batch`'s rows in their windows (by `ends`).
    fn hold(&mut self, batch: &RecordBatch, ends: &[Nanos]) -> Result<()> {
        let mut distinct: Vec<Nanos> = ends.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for end in distinct {
            let rows = if ends.iter().all(|&e| e == end) {
                batch.clone()
            } else {
                let mask: BooleanArray = ends.iter().map(|&e| Some(e == end)).collect();
                filter_record_batch(batch, &mask)?
            };
            let held = self.windows.entry(end).or_default();
            let before = held.bytes;
            held.rows += rows.num_rows();
            held.bytes += rows.get_array_memory_size();
            held.batches.push(rows);
            if let Some(limit) = self.limit
                && held.rows >= held.compact_at.max(4 * limit).max(64)
            {
                let rows = concat_batches(&self.input_schema, &std::mem::take(&mut held.batches))?;
                let kept = best(&self.functions, &self.schema, rows, limit)?;
                held.rows = kept.num_rows();
                held.compact_at = 2 * held.rows;
                held.bytes = kept.get_array_memory_size();
                held.batches = vec![kept];
            }
            self.held_bytes = self.held_bytes - before + held.bytes;
        }
        self.reserve()
    }
}

/// Of `rows`, those whose row number is at most `limit`, in the input's
/// columns (the row number is computed again when the window closes).
fn best(
    functions: &[Arc<dyn WindowExpr>],
    schema: &SchemaRef,
    rows: RecordBatch,
    limit: usize,
) -> Result<RecordBatch> {
    let ranked = evaluate(functions, schema, rows)?;
    let last = ranked.num_columns() - 1;
    let ranks = arrow::compute::cast(ranked.column(last), &arrow::datatypes::DataType::UInt64)?;
    let ranks = ranks
        .as_any()
        .downcast_ref::<arrow::array::UInt64Array>()
        .ok_or_else(|| datafusion::common::internal_datafusion_err!("row numbers are integers"))?;
    let keep: BooleanArray = ranks
        .iter()
        .map(|r| Some(r.is_some_and(|r| r as usize <= limit)))
        .collect();
    let kept = filter_record_batch(&ranked, &keep)?;
    Ok(kept.project(&(0..last).collect::<Vec<_>>())?)
}

impl Operator for WindowTopNOperator {
    fn name(&self) -> String {
        let names: Vec<&str> = self.functions.iter().map(|f| f.name()).collect();
        format!(
            "WindowTopN per window when it closes: {}; {}",
            names.join(", "),
            self.late.policy()
        )
    }

    fn state_rows(&self) -> usize {
        // The rows of open windows.
        self.windows.values().map(|held| held.rows).sum()
    }

    fn state_bytes(&self) -> usize {
        self.held_bytes
    }

    fn open(&mut self, task: Arc<TaskContext>) -> BoxFuture<'_, Result<()>> {
        let bytes = self.state_bytes();
        self.memory.opened(&task, bytes)
    }

    fn state(&self) -> Option<String> {
        Some(match self.limit {
            Some(limit) => format!(
                "window_rows: per open window the rows that can still rank in the best {limit} (per partition), freed when the watermark reaches its end"
            ),
            None => {
                "window_rows: the rows of each open window, freed when the watermark reaches its end".into()
            }
        })
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        self.late.flush()?;
        // Each open window's rows as they are held (compacted or not), after
        // its end; and per window its end, row count and next compaction.
        let mut ends = Vec::new();
        let mut rows = Vec::new();
        for (end, held) in &self.windows {
            ends.push(vec![*end, held.rows as i64, held.compact_at as i64]);
            rows.extend(held.batches.iter().map(|b| (*end, b)));
        }
        into.put_batch(
            "window_held",
            int_columns(&["window_end", "rows", "compact_at"], ends.into_iter())?,
        );
        let places = int_columns(
            &["window_end"],
            rows.iter()
                .flat_map(|(end, b)| std::iter::repeat_n(vec![*end], b.num_rows())),
        )?;
        let batches: Vec<&RecordBatch> = rows.iter().map(|(_, b)| *b).collect();
        let held = concat_batches(&self.input_schema, batches)?;
        into.put_batch(
            "window_rows",
            with_columns(places, vec![held.columns().to_vec()])?,
        );
        into.put_value("watermark", self.watermark);
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        self.watermark = from.value("watermark")?;
        let batch = from.batch("window_rows")?;
        let places = int_rows(batch, 1)?;
        let rows = RecordBatch::try_new(Arc::clone(&self.input_schema), batch.columns()[1..].to_vec())?;
        self.windows.clear();
        // Rows are kept window by window, in end order.
        let mut at = 0;
        for window in int_rows(from.batch("window_held")?, 3)? {
            let [end, count, compact_at] = [window[0], window[1], window[2]];
            let len = places[at..].iter().take_while(|p| p[0] == end).count();
            let held = own_rows(&rows, at, len)?;
            self.windows.insert(
                end,
                Held {
                    bytes: held.get_array_memory_size(),
                    batches: vec![held],
                    rows: count as usize,
                    compact_at: compact_at as usize,
                },
            );
            at += len;
        }
        self.held_bytes = self.windows.values().map(|held| held.bytes).sum();
        Ok(())
    }

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        let batch = input.batch;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ends = self.ends(&batch)?;
        let late: BooleanArray = ends
            .iter()
            .enumerate()
            .map(|(i, &end)| Some(end <= input.watermarks.get(i)))
            .collect();
        if late.true_count() == 0 {
            return self.hold(&batch, &ends);
        }
        self.late.record(&filter_record_batch(&batch, &late)?)?;
        let on_time: Vec<Nanos> = ends
            .iter()
            .zip(late.values().iter())
            .filter(|(_, late)| !late)
            .map(|(&end, _)| end)
            .collect();
        if !on_time.is_empty() {
            let batch = filter_record_batch(&batch, &arrow::compute::not(&late)?)?;
            self.hold(&batch, &on_time)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        let open = self.windows.split_off(&watermark.saturating_add(1));
        let closed: Vec<Held> = std::mem::replace(&mut self.windows, open).into_values().collect();
        self.held_bytes -= closed.iter().map(|held| held.bytes).sum::<usize>();
        let closed: Vec<RecordBatch> = closed.into_iter().flat_map(|held| held.batches).collect();
        if !closed.is_empty() {
            let rows = concat_batches(&self.input_schema, &closed)?;
            let batch = evaluate(&self.functions, &self.schema, rows)?;
            // As a windowed aggregate's results, emitted rows carry the
            // watermark before the one that closed their window.
            out.push(Event::Data(StreamBatch::new(
                batch,
                RowWatermarks::Constant(self.watermark),
            )));
        }
        self.late.flush()?;
        self.watermark = watermark;
        out.push(Event::Watermark(watermark));
        self.reserve()
    }
}

/// Rows `offset..offset + len` of `rows` in arrays of their own: a slice
/// would keep (and its state's bytes count) the whole batch a checkpoint
/// was read into, for as long as any one piece of it is held.
pub(super) fn own_rows(rows: &RecordBatch, offset: usize, len: usize) -> Result<RecordBatch> {
    let indices = arrow::array::UInt32Array::from_iter_values((offset..offset + len).map(|i| i as u32));
    Ok(arrow::compute::take_record_batch(rows, &indices)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{
        Harness, check, check_memory_limit, late, metrics, window_function_out,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::functions_window::expr_fn::row_number;
    use datafusion::logical_expr::{ExprFunctionExt, col};

    /// `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY
    /// price DESC)` over rows `(price, window_start, window_end)`.
    fn top_n(limit: Option<usize>) -> Harness {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let input = Arc::new(Schema::new(vec![
            Field::new("price", DataType::Int64, true),
            Field::new("window_start", ts.clone(), false),
            Field::new("window_end", ts, false),
        ]));
        let expr = row_number()
            .partition_by(vec![col("window_start"), col("window_end")])
            .order_by(vec![col("price").sort(false, false)])
            .build()
            .expect("a window function");
        let (function, schema) = window_function_out(expr, &input, "rn");
        let metrics = metrics();
        let operator = WindowTopNOperator::new(
            vec![function],
            WindowClose::End(2),
            Arc::clone(&input),
            schema,
            limit,
            late(&metrics),
        );
        Harness::single(Box::new(operator), input, &metrics)
    }

    /// Two windows, one closed by a watermark with a late row after.
    const WINDOWS: &str = "
        rows (5, 0, 10) (9, 0, 10) (7, 10, 20)
        wm 9
        rows (8, 0, 10) (1, 10, 20)
        wm 10
        rows (100, 0, 10)
        late
        wm +inf
        ";

    #[test]
    fn a_restored_window_top_n_carries_on_where_it_stopped() {
        crate::stream::operators::testing::check_restores(|| top_n(None), WINDOWS);
        // Under a limit, with windows compacted before and after the checkpoint.
        let many = |from: i64, window: i64| -> String {
            let rows: Vec<String> = (from..from + 70)
                .map(|price| format!("({}, {window}, {})", price % 37, window + 10))
                .collect();
            format!("rows {}", rows.join(" "))
        };
        let script = [
            many(0, 0),
            many(100, 10),
            many(200, 0),
            "wm 10".into(),
            many(300, 10),
            "wm +inf".into(),
        ];
        crate::stream::operators::testing::check_restores(|| top_n(Some(2)), &script.join("\n"));
    }

    #[test]
    fn a_windows_rows_are_ranked_when_it_closes_and_a_row_for_it_then_is_late() {
        check(
            &mut top_n(None),
            WINDOWS,
            "
            wm 9
            (9, 0, 10, 1) @9
            (8, 0, 10, 2) @9
            (5, 0, 10, 3) @9
            wm 10
            late 1
            (7, 10, 20, 1) @10
            (1, 10, 20, 2) @10
            wm +inf
            ",
        );
    }

    #[test]
    fn under_a_limit_a_window_keeps_only_rows_that_can_still_rank() {
        let rows: Vec<String> = (1..=200).map(|price| format!("({price}, 0, 10)")).collect();
        let mut harness = top_n(Some(2));
        let out = harness.run(&format!("rows {}\nwm 10", rows.join(" ")));
        // Every row still held comes out ranked; the best two first.
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..2], &["(200, 0, 10, 1) @-inf", "(199, 0, 10, 2) @-inf"]);
        assert!(
            lines.len() < 100,
            "rows past rank 2 were dropped early: {}",
            lines.len()
        );
        assert_eq!(lines.last(), Some(&"wm 10"));
    }

    #[test]
    fn open_windows_beyond_the_memory_limit_are_an_error_naming_them() {
        let script = "rows (5, 0, 10) (9, 0, 10) (7, 10, 20)\nwm 9";
        check_memory_limit(
            || top_n(None),
            script,
            "WindowTopN",
            "window_rows: 3 rows in 2 open windows",
        );
    }
}

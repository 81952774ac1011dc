//! The window join: two streams of the same window TVF joined per window
//! (`ON l.window_start = r.window_start AND l.window_end = r.window_end AND
//! ...`). Each side's rows wait in their window until the watermark reaches
//! its end (`watermark >= window_end`); then the window's left and right rows
//! are joined as a batch join would join them, emitted, and freed. No row
//! can join across windows (the keys hold both bounds), so a window's result
//! is final when it closes, for every join type: inner, outer, semi, anti.
//!
//! A row whose window had closed when it arrived (`window_end <=` its own
//! watermark, merged over both inputs) is late: counted and dropped. Emitted
//! rows carry the watermark from before the one that closed their window,
//! so a window aggregate after the join does not find them late. At the end
//! every window closes.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::concat_batches;
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;

use super::join::{
    JoinCore, JoinSpec, KeyIndex, Output, Side, check_append_only, check_timestamp, hits, keep, late_policy,
    rows_where, take_rows,
};
use crate::stream::changelog::Change;
use crate::stream::checkpoint::{StateSnapshot, int_columns, int_rows, with_columns};
use crate::stream::late::LateRows;
use crate::stream::memory::StateMemory;
use crate::stream::operator::{
    Event, MultiInputOperator, NO_WATERMARK, Nanos, RowWatermarks, StreamBatch, nanos_values, to_nanos,
};

/// A window bound column of one input, and what to add to it for the
/// window's end: 0 for `window_end`, 1 ms for `window_time`, the size for
/// the `window_start` of a fixed-size window (TUMBLE, HOP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowBound {
    /// The column, in the input.
    pub column: usize,
    /// Its distance to the window's end.
    pub to_end: Nanos,
}

impl WindowBound {
    /// The `window_end` column `column`.
    pub fn end(column: usize) -> Self {
        Self { column, to_end: 0 }
    }
}

/// The operator.
pub struct WindowJoinOperator {
    core: JoinCore,
    /// A window bound in the left input, and in the right.
    ends: [WindowBound; 2],
    /// Open windows by end: each side's rows.
    windows: BTreeMap<Nanos, [Vec<RecordBatch>; 2]>,
    /// Rows waiting in open windows.
    rows: usize,
    /// Where each input's late rows go.
    late: [LateRows; 2],
    /// The merged watermark last seen.
    watermark: Nanos,
    /// Bytes of the open windows' rows, kept as they come and go.
    bytes: usize,
    /// The open windows' share of the memory pool.
    memory: StateMemory,
}

impl WindowJoinOperator {
    /// Join per `spec`, window by window: `left_end` and `right_end` give
    /// each input's window ends; `late` counts each input's late rows
    /// (left, right).
    pub fn try_new(
        spec: JoinSpec,
        left_end: WindowBound,
        right_end: WindowBound,
        late: [LateRows; 2],
    ) -> Result<Self> {
        let why = "a window join closes windows by their TIMESTAMP window bounds: give it the TVF's window_end column";
        check_timestamp(&spec.left_schema, left_end.column, why)?;
        check_timestamp(&spec.right_schema, right_end.column, why)?;
        Ok(Self {
            core: JoinCore::try_new(spec, "a window join")?,
            ends: [left_end, right_end],
            windows: BTreeMap::new(),
            rows: 0,
            late,
            watermark: NO_WATERMARK,
            bytes: 0,
            memory: StateMemory::new("WindowJoin", "join_left and join_right")
                .with_fix("a shorter window, or join on more selective keys"),
        })
    }

    /// Join one window's rows.
    fn join(
        &self,
        [left, right]: [Vec<RecordBatch>; 2],
        output: &mut Output,
        watermark: Nanos,
    ) -> Result<()> {
        let left = concat_batches(&self.core.spec.left_schema, &left)?;
        let right = concat_batches(&self.core.spec.right_schema, &right)?;
        let index = KeyIndex::build(&self.core.keys(Side::Right, &right)?);
        let (l, r) = index.probe(&self.core.keys(Side::Left, &left)?);
        let (l_idx, r_idx) = (UInt32Array::from(l.clone()), UInt32Array::from(r.clone()));
        let (mask, columns) = self.core.filter_pairs(
            Side::Left,
            &take_rows(&left, &l_idx)?,
            &take_rows(&right, &r_idx)?,
        )?;
        let (l, r) = (keep(&l, mask.as_ref()), keep(&r, mask.as_ref()));
        let at = RowWatermarks::Constant(watermark);
        let emits = self.core.emits;
        if emits.pairs {
            output.push(self.core.pairs(columns, l.len())?, at.clone(), Change::Insert);
        }
        for (side, rows, matched) in [(Side::Left, &left, &l), (Side::Right, &right, &r)] {
            let hit = hits(rows.num_rows(), matched);
            if emits.matched(side) {
                output.push(
                    self.core.alone(side, &rows_where(rows, &hit)?)?,
                    at.clone(),
                    Change::Insert,
                );
            }
            if emits.unmatched(side) {
                let missed: Vec<bool> = hit.iter().map(|h| !h).collect();
                output.push(
                    self.core.alone(side, &rows_where(rows, &missed)?)?,
                    at.clone(),
                    Change::Insert,
                );
            }
        }
        Ok(())
    }

    /// Close every window that ends at or before `watermark` (all with `None`).
    fn close(&mut self, watermark: Option<Nanos>, out: &mut Vec<Event>) -> Result<()> {
        let closing: Vec<Nanos> = self
            .windows
            .keys()
            .take_while(|&&end| watermark.is_none_or(|w| end <= w))
            .copied()
            .collect();
        let mut output = Output::default();
        for end in closing {
            if let Some(window) = self.windows.remove(&end) {
                let rows: usize = window.iter().flatten().map(RecordBatch::num_rows).sum();
                self.rows = self.rows.saturating_sub(rows);
                let bytes: usize = window
                    .iter()
                    .flatten()
                    .map(RecordBatch::get_array_memory_size)
                    .sum();
                self.bytes = self.bytes.saturating_sub(bytes);
                self.join(window, &mut output, self.watermark)?;
            }
        }
        output.emit(&self.core.spec.schema, false, out)
    }
}

impl MultiInputOperator for WindowJoinOperator {
    fn name(&self) -> String {
        format!(
            "WindowJoin: {}; state join_left and join_right per window, freed when the watermark reaches its end; {}",
            self.core.spec.join_type,
            late_policy(&self.late)
        )
    }

    fn inputs(&self) -> usize {
        2
    }

    fn process(&mut self, port: usize, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        let side = Side::of_port(port, "a window join")?;
        check_append_only(&input, "a window join")?;
        let batch = &input.batch;
        let bound = self.ends[side.index()];
        let Some(ends) = batch.columns().get(bound.column) else {
            return plan_err!(
                "a window join's input {} has no window bound column",
                side.index() + 1
            );
        };
        let ends = to_nanos(ends, "window bound")?;
        let ends = nanos_values(&ends)?;
        if ends.null_count() > 0 {
            return exec_err!(
                "a window join's input {} has a row with a NULL window bound: window join the rows of a window TVF",
                side.index() + 1
            );
        }
        let ends: Vec<Nanos> = ends
            .values()
            .iter()
            .map(|v| v.saturating_add(bound.to_end))
            .collect();
        let late: Vec<bool> = (0..batch.num_rows())
            .map(|i| ends[i] <= input.watermarks.get(i))
            .collect();
        if late.iter().any(|l| *l) {
            self.late[side.index()].record(&rows_where(batch, &late)?)?;
        }
        // Rows by window: a batch spans few windows, so runs of one end are
        // found without hashing.
        let mut by_end: Vec<(Nanos, Vec<u32>)> = Vec::new();
        for (i, end) in ends.iter().enumerate() {
            if late.get(i).copied().unwrap_or(true) {
                continue;
            }
            match by_end.iter_mut().rev().find(|(e, _)| e == end) {
                Some((_, rows)) => rows.push(i as u32),
                None => by_end.push((*end, vec![i as u32])),
            }
        }
        for (end, rows) in by_end {
            let rows = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                take_rows(batch, &UInt32Array::from(rows))?
            };
            self.rows += rows.num_rows();
            self.bytes += rows.get_array_memory_size();
            self.windows.entry(end).or_default()[side.index()].push(rows);
        }
        self.reserve()
    }

    fn open(
        &mut self,
        task: Arc<datafusion::execution::TaskContext>,
    ) -> futures::future::BoxFuture<'_, Result<()>> {
        self.memory.opened(&task, self.bytes)
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark > self.watermark {
            self.close(Some(watermark), out)?;
            self.watermark = watermark;
            for late in &mut self.late {
                late.flush()?;
            }
        }
        out.push(Event::Watermark(watermark));
        self.reserve()
    }

    fn on_end(&mut self, out: &mut Vec<Event>) -> Result<()> {
        self.close(None, out)?;
        out.push(Event::End);
        Ok(())
    }

    fn state_rows(&self) -> usize {
        self.rows
    }

    fn state_bytes(&self) -> usize {
        self.bytes
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        for side in [Side::Left, Side::Right] {
            into.put_batch(WINDOW_PARTS[side.index()], self.saved_side(side)?);
        }
        into.put_value("watermark", self.watermark);
        // Late rows written so far reach the side output with the checkpoint.
        for late in &mut self.late {
            late.flush()?;
        }
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        self.windows.clear();
        self.rows = 0;
        self.bytes = 0;
        for side in [Side::Left, Side::Right] {
            self.restore_side(side, from.batch(WINDOW_PARTS[side.index()])?)?;
        }
        self.watermark = from.value("watermark")?;
        Ok(())
    }
}

/// The names of the two sides' waiting rows in a checkpoint.
const WINDOW_PARTS: [&str; 2] = ["join_left", "join_right"];

impl WindowJoinOperator {
    /// Resize the memory pool's share to the open windows' rows.
    fn reserve(&self) -> Result<()> {
        self.memory.resize(self.bytes, || {
            format!("{} rows in {} open windows", self.rows, self.windows.len())
        })
    }

    /// The rows of `side` waiting in open windows, windows in order of their
    /// end: a column `window_end` (the end it closes at), then the rows.
    fn saved_side(&self, side: Side) -> Result<RecordBatch> {
        let schema = self.core.side_schema(side);
        let batches: Vec<&RecordBatch> = self.windows.values().flat_map(|w| &w[side.index()]).collect();
        let rows = concat_batches(schema, batches.iter().copied())?;
        let ends = self.windows.iter().flat_map(|(end, w)| {
            let rows: usize = w[side.index()].iter().map(RecordBatch::num_rows).sum();
            std::iter::repeat_n(vec![*end], rows)
        });
        with_columns(int_columns(&["window_end"], ends)?, vec![rows.columns().to_vec()])
    }

    /// Put back the rows of `side` that [`WindowJoinOperator::saved_side`]
    /// saved, each run of one end in its window.
    fn restore_side(&mut self, side: Side, saved: &RecordBatch) -> Result<()> {
        let ends: Vec<Nanos> = int_rows(saved, 1)?.into_iter().map(|r| r[0]).collect();
        let columns = saved.columns().get(1..).unwrap_or_default().to_vec();
        let options = RecordBatchOptions::new().with_row_count(Some(saved.num_rows()));
        let rows =
            RecordBatch::try_new_with_options(Arc::clone(self.core.side_schema(side)), columns, &options)?;
        let mut at = 0;
        while at < ends.len() {
            let len = ends[at..].iter().take_while(|e| **e == ends[at]).count();
            // Rows of their own: a slice would keep (and count) all of them.
            let window = super::window_top_n::own_rows(&rows, at, len)?;
            self.bytes += window.get_array_memory_size();
            self.windows.entry(ends[at]).or_default()[side.index()].push(window);
            self.rows += len;
            at += len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{Harness, check, check_memory_limit, late, metrics, spec};
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
    use datafusion::common::JoinType;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, Column};
    use std::sync::Arc;

    /// `(k, window_start, window_end, v)`, window bounds in milliseconds on
    /// the left, seconds on the right.
    fn input(prefix: &str, unit: TimeUnit) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(format!("{prefix}k"), DataType::Int64, true),
            Field::new(format!("{prefix}ws"), DataType::Timestamp(unit, None), true),
            Field::new(format!("{prefix}we"), DataType::Timestamp(unit, None), true),
            Field::new(format!("{prefix}v"), DataType::Utf8, true),
        ]))
    }

    /// On `lk = rk` and both window bounds, with an optional `lv <> rv`.
    fn harness(join_type: JoinType, different_values: bool) -> Harness {
        let metrics = metrics();
        let (left, right) = (input("l", TimeUnit::Millisecond), input("r", TimeUnit::Second));
        let filter = different_values.then(|| {
            Arc::new(BinaryExpr::new(
                Arc::new(Column::new("lv", 3)),
                Operator::NotEq,
                Arc::new(Column::new("rv", 7)),
            )) as Arc<dyn datafusion::physical_expr::PhysicalExpr>
        });
        let spec = spec(
            join_type,
            Arc::clone(&left),
            Arc::clone(&right),
            &[(0, 0), (1, 1), (2, 2)],
            filter,
        );
        let operator = WindowJoinOperator::try_new(
            spec,
            WindowBound::end(2),
            WindowBound::end(2),
            [late(&metrics), late(&metrics)],
        )
        .expect("plans");
        Harness::multi(Box::new(operator), vec![left, right], &metrics)
    }

    const SCRIPT: &str = "
        L wm 0
        R wm 0
        L rows (1, 0, 10, 'a') (2, 0, 10, 'b') (null, 0, 10, 'n') (1, 10, 20, 'c')
        R rows (1, 0, 10, 'x') (1, 0, 10, 'y') (3, 0, 10, 'z') (1, 10, 20, 'w')
        state
        L wm 10
        state
        R wm 10
        state
        R rows (1, 0, 10, 'late')
        late
        L end
        R end
        ";

    #[test]
    fn a_restored_window_join_carries_on_where_it_stopped() {
        // Windows open on one side only, on both, closed by the watermark and
        // by the end, and a late row.
        let script = "
            L wm 0
            R wm 0
            L rows (1, 0, 10, 'a') (2, 0, 10, 'b') (null, 0, 10, 'n') (1, 10, 20, 'c')
            R rows (1, 0, 10, 'x') (3, 0, 10, 'z') (1, 20, 30, 'w')
            L rows (1, 0, 10, 'q') (1, 20, 30, 'r')
            state
            L wm 10
            R wm 10
            state
            R rows (1, 0, 10, 'late') (1, 10, 20, 'y')
            late
            L end
            R end
            ";
        for join_type in [JoinType::Full, JoinType::LeftSemi, JoinType::RightAnti] {
            crate::stream::operators::testing::check_restores(move || harness(join_type, true), script);
        }
    }

    #[test]
    fn inner_pairs_come_when_the_watermark_reaches_the_window_end() {
        check(
            &mut harness(JoinType::Inner, false),
            SCRIPT,
            "
            wm 0
            state 8
            state 8
            (1, 0, 10, a, 1, 0, 10, x) @0
            (1, 0, 10, a, 1, 0, 10, y) @0
            wm 10
            state 2
            late 1
            (1, 10, 20, c, 1, 10, 20, w) @10
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn outer_joins_pad_the_rows_their_window_did_not_match() {
        check(
            &mut harness(JoinType::Full, false),
            SCRIPT,
            "
            wm 0
            state 8
            state 8
            (1, 0, 10, a, 1, 0, 10, x) @0
            (1, 0, 10, a, 1, 0, 10, y) @0
            (2, 0, 10, b, null, null, null, null) @0
            (null, 0, 10, n, null, null, null, null) @0
            (null, null, null, null, 3, 0, 10, z) @0
            wm 10
            state 2
            late 1
            (1, 10, 20, c, 1, 10, 20, w) @10
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn semi_and_anti_joins_keep_one_side_per_window() {
        check(
            &mut harness(JoinType::LeftSemi, true),
            SCRIPT,
            "
            wm 0
            state 8
            state 8
            (1, 0, 10, a) @0
            wm 10
            state 2
            late 1
            (1, 10, 20, c) @10
            wm +inf
            end
            ",
        );
        check(
            &mut harness(JoinType::RightAnti, false),
            SCRIPT,
            "
            wm 0
            state 8
            state 8
            (3, 0, 10, z) @0
            wm 10
            state 2
            late 1
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn the_filter_decides_among_rows_of_equal_keys() {
        check(
            &mut harness(JoinType::Left, true),
            "
            L rows (1, 0, 10, 'x') (1, 0, 10, 'q')
            R rows (1, 0, 10, 'x')
            L end
            R end
            ",
            "
            (1, 0, 10, q, 1, 0, 10, x) @-inf
            (1, 0, 10, x, null, null, null, null) @-inf
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn open_windows_beyond_the_memory_limit_are_an_error_naming_them() {
        let script = "L rows (1, 0, 10, 'a') (2, 0, 10, 'b')\nR rows (1, 0, 10, 'x')";
        check_memory_limit(
            || harness(JoinType::Inner, false),
            script,
            "WindowJoin",
            "join_left and join_right: 3 rows in 1 open windows",
        );
    }
}

//! The interval join of two streams: `a JOIN b ON keys AND a.ts BETWEEN
//! b.ts - INTERVAL .. AND b.ts + ..`. Rows match by their keys and the whole
//! join condition, exactly as in batch; the time bound `left.ts - right.ts ∈
//! [lower, upper]` only says how long each side's rows must be kept, and so
//! when a row can no longer match.
//!
//! A left row at `tl` can only match right rows at `tr ∈ [tl - upper, tl -
//! lower]`, and no right row earlier than the watermark will come, so it is
//! dropped once the watermark passes `tl - lower`; a right row at `tr` once it
//! passes `tr + upper`. A row whose time is below its own watermark (the one
//! it arrived under, merged over both inputs) is late: counted, not joined,
//! not kept, so what matches never depends on which input ran ahead.
//!
//! Inner joins emit each pair when its second row arrives, with that row's
//! watermark. Outer joins are append-only: a row that never matched is
//! emitted padded with NULLs when it expires (or at once, when its key or
//! time is NULL and it can match nothing), with the watermark from before the
//! one that expired it, so that a window after the join does not find it
//! late; at the end every row left expires. Semi joins emit a row at its
//! first match, anti joins a row that expires without one.

use arrow::array::{Array, RecordBatch, UInt32Array};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;

use super::join::{
    JoinCore, JoinSpec, Output, Side, check_append_only, check_timestamp, hits, late_policy, rows_where,
    show_nanos, take_rows,
};
use super::join_state::{
    JoinState, Probe, reserve_sides, restore_sides, sides_bytes, sides_memory, snapshot_sides,
};
use crate::stream::changelog::Change;
use crate::stream::checkpoint::StateSnapshot;
use crate::stream::late::LateRows;
use crate::stream::memory::StateMemory;
use crate::stream::operator::{
    END_OF_INPUT, Event, MultiInputOperator, NO_WATERMARK, Nanos, RowWatermarks, StreamBatch, nanos_values,
    to_nanos,
};

/// The time bound of an interval join: `left.ts - right.ts ∈ [lower,
/// upper]`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalBounds {
    /// The left time column, in the left input.
    pub left_time: usize,
    /// The right time column, in the right input.
    pub right_time: usize,
    /// The least `left.ts - right.ts`, in nanoseconds.
    pub lower: Nanos,
    /// The greatest `left.ts - right.ts`, in nanoseconds.
    pub upper: Nanos,
}

/// The operator.
pub struct IntervalJoinOperator {
    core: JoinCore,
    bounds: IntervalBounds,
    /// Rows kept per side (left, right).
    state: [JoinState; 2],
    /// Where each input's late rows go.
    late: [LateRows; 2],
    /// The merged watermark last seen.
    watermark: Nanos,
    /// The one before it: rows its advance expired carry it.
    before: Nanos,
    /// How far what it emits holds time back: a pair or a padded row can
    /// be this much older than the watermark it is emitted under (a row
    /// matches rows up to `max(upper, -lower)` away), so its row watermark and
    /// the watermark passed on are this much earlier, and a window after the
    /// join does not find its rows late.
    hold: Nanos,
    /// Both sides' share of the memory pool.
    memory: StateMemory,
}

impl IntervalJoinOperator {
    /// Join per `spec`, keeping rows as long as `bounds` lets them match;
    /// `late` counts each input's late rows (left, right).
    pub fn try_new(spec: JoinSpec, bounds: IntervalBounds, late: [LateRows; 2]) -> Result<Self> {
        if bounds.lower > bounds.upper {
            return plan_err!(
                "an interval join's time bound has its lower end {} ns above its upper end {} ns: swap them",
                bounds.lower,
                bounds.upper
            );
        }
        let why = "an interval join bounds TIMESTAMP columns: give it the time columns of its condition";
        check_timestamp(&spec.left_schema, bounds.left_time, why)?;
        check_timestamp(&spec.right_schema, bounds.right_time, why)?;
        let state = [
            JoinState::new(std::sync::Arc::clone(&spec.left_schema)),
            JoinState::new(std::sync::Arc::clone(&spec.right_schema)),
        ];
        Ok(Self {
            core: JoinCore::try_new(spec, "an interval join")?,
            bounds,
            state,
            late,
            watermark: NO_WATERMARK,
            before: NO_WATERMARK,
            hold: bounds.upper.max(bounds.lower.saturating_neg()).max(0),
            memory: sides_memory(
                "IntervalJoin",
                "a tighter bound between the two sides' times, or join on more selective keys",
            ),
        })
    }

    /// Hold back the time of what was just emitted (`events`) by `hold`.
    fn hold_back(&self, events: &mut [Event]) {
        if self.hold == 0 {
            return;
        }
        let earlier = |w: Nanos| {
            if w == END_OF_INPUT {
                w
            } else {
                w.saturating_sub(self.hold)
            }
        };
        for event in events {
            match event {
                Event::Data(batch) => batch.watermarks = batch.watermarks.map(earlier),
                Event::Watermark(w) => *w = earlier(*w),
                Event::End => {}
            }
        }
    }

    /// The watermark after which a row of `side` at `time` can match nothing.
    fn expiry(&self, side: Side, time: Nanos) -> Nanos {
        match side {
            Side::Left => time.saturating_sub(self.bounds.lower),
            Side::Right => time.saturating_add(self.bounds.upper),
        }
    }

    /// Output rows for expired rows of `side` that never matched.
    fn expired(&self, side: Side, unmatched: &RecordBatch, watermark: Nanos, out: &mut Output) -> Result<()> {
        if self.core.emits.unmatched(side) && unmatched.num_rows() > 0 {
            out.push(
                self.core.alone(side, unmatched)?,
                RowWatermarks::Constant(watermark),
                Change::Insert,
            );
        }
        Ok(())
    }
}

impl MultiInputOperator for IntervalJoinOperator {
    fn name(&self) -> String {
        let (lower, upper) = (show_nanos(self.bounds.lower), show_nanos(self.bounds.upper));
        // `time + offset`, with the offset's sign as an operator.
        let plus = |time: &str, offset: Nanos| match offset {
            0 => time.to_string(),
            o if o < 0 => format!("{time} - {}", show_nanos(-o)),
            o => format!("{time} + {}", show_nanos(o)),
        };
        let (left_until, right_until) = (
            plus("left time", -self.bounds.lower),
            plus("right time", self.bounds.upper),
        );
        format!(
            "IntervalJoin: {}, left time - right time in [{lower}, {upper}]; state join_left kept until the watermark passes {left_until}, join_right until it passes {right_until}; {}",
            self.core.spec.join_type,
            late_policy(&self.late)
        )
    }

    fn inputs(&self) -> usize {
        2
    }

    fn process(&mut self, port: usize, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let start = out.len();
        self.join_rows(port, input, out)?;
        self.hold_back(&mut out[start..]);
        reserve_sides(&self.state, &self.memory)
    }

    fn open(
        &mut self,
        task: std::sync::Arc<datafusion::execution::TaskContext>,
    ) -> futures::future::BoxFuture<'_, Result<()>> {
        self.memory.opened(&task, sides_bytes(&self.state))
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        let start = out.len();
        self.advance(watermark, out)?;
        self.hold_back(&mut out[start..]);
        reserve_sides(&self.state, &self.memory)
    }

    fn on_end(&mut self, out: &mut Vec<Event>) -> Result<()> {
        let start = out.len();
        self.finish(out)?;
        self.hold_back(&mut out[start..]);
        Ok(())
    }

    fn state_rows(&self) -> usize {
        self.state.iter().map(JoinState::len).sum()
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        // Each side's rows that can still match, with their expiry and
        // whether they matched (outer, semi and anti rows depend on it); the
        // watermark before the last one is what expired rows are emitted at.
        snapshot_sides(&mut self.state, into)?;
        into.put_values("watermark", vec![self.watermark, self.before]);
        // Late rows written so far reach the side output with the checkpoint.
        for late in &mut self.late {
            late.flush()?;
        }
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        restore_sides(&mut self.state, &self.core, from)?;
        let [watermark, before] = from.values("watermark")? else {
            return exec_err!("the checkpoint's watermarks of an interval join are malformed");
        };
        (self.watermark, self.before) = (*watermark, *before);
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        sides_bytes(&self.state)
    }
}

impl IntervalJoinOperator {
    /// Rows of input `port`: pair them, keep what can still match.
    fn join_rows(&mut self, port: usize, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let side = Side::of_port(port, "an interval join")?;
        check_append_only(&input, "an interval join")?;
        let time_column = match side {
            Side::Left => self.bounds.left_time,
            Side::Right => self.bounds.right_time,
        };
        let Some(times) = input.batch.columns().get(time_column) else {
            return plan_err!(
                "an interval join's input {} has no time column {time_column}",
                side.index() + 1
            );
        };
        let name = input.batch.schema().field(time_column).name().clone();
        let times = to_nanos(times, &name)?;
        let times = nanos_values(&times)?;
        let rows = input.batch.num_rows();
        let late: Vec<bool> = (0..rows)
            .map(|i| times.is_valid(i) && times.value(i) < input.watermarks.get(i))
            .collect();
        let input = if late.iter().any(|l| *l) {
            self.late[side.index()].record(&rows_where(&input.batch, &late)?)?;
            let on_time: Vec<bool> = late.iter().map(|l| !l).collect();
            input.filter(&arrow::array::BooleanArray::from(on_time))?
        } else {
            input
        };
        let (batch, rows) = (&input.batch, input.batch.num_rows());
        let times = to_nanos(batch.column(time_column), &name)?;
        let times = nanos_values(&times)?;
        // A row with a NULL time matches nothing: the bound is NULL.
        let keys: Vec<_> = self
            .core
            .keys(side, batch)?
            .into_iter()
            .enumerate()
            .map(|(i, k)| k.filter(|_| times.is_valid(i)))
            .collect();

        // Pairs with the other side's kept rows.
        let other = side.other();
        let Probe {
            rows: probe,
            found,
            columns,
        } = self.state[other.index()].probe(&self.core, side, batch, &keys)?;
        let mut output = Output::default();
        if self.core.emits.pairs {
            output.push(
                self.core.pairs(columns, probe.len())?,
                input.watermarks.take(&UInt32Array::from(probe.clone()))?,
                Change::Insert,
            );
        }
        let first = self.state[other.index()].first_matches(&found);
        if self.core.emits.matched(other) {
            let refs: Vec<_> = first.iter().map(|(r, _)| *r).collect();
            let by: UInt32Array = first.iter().map(|(_, at)| probe.get(*at).copied()).collect();
            let rows = self.state[other.index()].rows(&refs)?;
            output.push(
                self.core.alone(other, &rows)?,
                input.watermarks.take(&by)?,
                Change::Insert,
            );
        }
        let matched = hits(rows, &probe);
        if self.core.emits.matched(side) {
            let mask = arrow::array::BooleanArray::from(matched.clone());
            let rows = input.filter(&mask)?;
            output.push(
                self.core.alone(side, &rows.batch)?,
                rows.watermarks,
                Change::Insert,
            );
        }

        // Keep the rows that can still match; those that cannot and never
        // did are done now.
        let mut kept = Vec::new();
        let mut done = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let can_match = key.is_some() && self.expiry(side, times.value(i)) >= self.watermark;
            if can_match {
                kept.push(i as u32);
            } else if !matched[i] {
                done.push(i as u32);
            }
        }
        if self.core.emits.unmatched(side) && !done.is_empty() {
            let done = UInt32Array::from(done);
            output.push(
                self.core.alone(side, &take_rows(batch, &done)?)?,
                input.watermarks.take(&done)?,
                Change::Insert,
            );
        }
        let expire_at = kept
            .iter()
            .map(|&i| self.expiry(side, times.value(i as usize)))
            .collect();
        let mut keys = keys;
        let kept_keys = kept
            .iter()
            .filter_map(|&i| keys.get_mut(i as usize).and_then(Option::take))
            .collect();
        let kept_matched = kept.iter().map(|&i| matched[i as usize]).collect();
        // Usually every row can still match: keep the batch as it is.
        let kept_rows = if kept.len() == rows {
            batch.clone()
        } else {
            take_rows(batch, &UInt32Array::from(kept))?
        };
        self.state[side.index()].insert(kept_rows, kept_keys, expire_at, kept_matched)?;
        output.emit(&self.core.spec.schema, false, out)
    }

    /// The merged watermark moved: expire what it passed.
    fn advance(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark > self.watermark {
            let before = self.watermark;
            let mut output = Output::default();
            for side in [Side::Left, Side::Right] {
                let expired = self.state[side.index()].expire(watermark, false)?;
                self.expired(side, &expired.unmatched, before, &mut output)?;
            }
            self.before = before;
            self.watermark = watermark;
            output.emit(&self.core.spec.schema, false, out)?;
            for late in &mut self.late {
                late.flush()?;
            }
        }
        out.push(Event::Watermark(watermark));
        Ok(())
    }

    /// Every input ended: what is left expires.
    fn finish(&mut self, out: &mut Vec<Event>) -> Result<()> {
        let mut output = Output::default();
        // What is left expires with the last watermark's advance.
        let at = if self.watermark == END_OF_INPUT {
            self.before
        } else {
            self.watermark
        };
        for side in [Side::Left, Side::Right] {
            let expired = self.state[side.index()].expire(END_OF_INPUT, true)?;
            self.expired(side, &expired.unmatched, at, &mut output)?;
        }
        output.emit(&self.core.spec.schema, false, out)?;
        out.push(Event::End);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{
        Harness, S, check, check_memory_limit, join_inputs, join_spec, late, metrics, time_between,
    };
    use datafusion::common::JoinType;

    /// `lt - rt ∈ [-5 s, 1 s]` on `lk = rk`.
    fn harness(join_type: JoinType) -> Harness {
        let metrics = metrics();
        let bounds = IntervalBounds {
            left_time: 1,
            right_time: 1,
            lower: -5 * S,
            upper: S,
        };
        let spec = join_spec(join_type, true, Some(time_between(-5, 1)));
        let operator =
            IntervalJoinOperator::try_new(spec, bounds, [late(&metrics), late(&metrics)]).expect("plans");
        let (left, right) = join_inputs();
        Harness::multi(Box::new(operator), vec![left, right], &metrics)
    }

    #[test]
    fn a_restored_interval_join_carries_on_where_it_stopped() {
        // Pairs across the checkpoint, late rows, rows padded when they
        // expire without a match and at the end.
        let script = "
            L wm 0
            R wm 0
            L rows (1, 10, 'a') (2, 10, 'b') (null, 10, 'n')
            R rows (1, 12, 'x') (4, 12, 'w')
            state
            L wm 11
            R wm 11
            L rows (1, 3, 'late')
            late
            R rows (1, 9, 'y') (2, 16, 'u')
            L rows (2, 14, 'c') (5, 30, 'e')
            L wm 16
            R wm 16
            state
            L rows (2, 17, 'd')
            L end
            R end
            ";
        for join_type in [JoinType::Full, JoinType::LeftSemi, JoinType::RightAnti] {
            crate::stream::operators::testing::check_restores(move || harness(join_type), script);
        }
    }

    #[test]
    fn inner_pairs_come_with_the_second_row_and_state_falls_behind_the_watermark() {
        check(
            &mut harness(JoinType::Inner),
            "
            L wm 0
            R wm 0
            L rows (1, 10, 'a') (2, 10, 'b') (null, 10, 'n')
            R rows (1, 12, 'x') (1, 20, 'y') (2, 4, 'z')
            state
            L wm 14
            R wm 14
            state
            L rows (1, 13, 'late')
            late
            L rows (1, 19, 'c')
            L wm 30
            R wm 30
            state
            L end
            R end
            ",
            "
            wm -5
            (1, 10, a, 1, 12, x) @-5
            state 5
            wm 9
            state 3
            late 1
            (1, 19, c, 1, 20, y) @9
            wm 25
            state 0
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn left_outer_rows_without_a_match_come_padded_when_they_expire() {
        check(
            &mut harness(JoinType::Left),
            "
            L wm 0
            R wm 0
            L rows (1, 10, 'a') (2, 10, 'b') (null, 10, 'n') (3, null, 't')
            R rows (1, 12, 'x') (4, 12, 'w')
            L wm 16
            R wm 16
            state
            L rows (5, 30, 'e')
            L end
            R end
            ",
            "
            wm -5
            (null, 10, n, null, null, null) @-5
            (3, null, t, null, null, null) @-5
            (1, 10, a, 1, 12, x) @-5
            (2, 10, b, null, null, null) @-5
            wm 11
            state 0
            (5, 30, e, null, null, null) @11
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn right_and_full_outer_joins_pad_the_side_that_never_matched() {
        let script = "
            L wm 0
            R wm 0
            L rows (1, 10, 'a') (2, 10, 'b')
            R rows (1, 12, 'x') (4, 12, 'w') (null, 12, 'n')
            L end
            R end
            ";
        check(
            &mut harness(JoinType::Right),
            script,
            "
            wm -5
            (1, 10, a, 1, 12, x) @-5
            (null, null, null, null, 12, n) @-5
            (null, null, null, 4, 12, w) @-5
            wm +inf
            end
            ",
        );
        check(
            &mut harness(JoinType::Full),
            script,
            "
            wm -5
            (1, 10, a, 1, 12, x) @-5
            (null, null, null, null, 12, n) @-5
            (2, 10, b, null, null, null) @-5
            (null, null, null, 4, 12, w) @-5
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn semi_rows_come_at_their_first_match_and_anti_rows_when_they_expire() {
        let script = "
            L wm 0
            R wm 0
            R rows (1, 12, 'x')
            L rows (1, 10, 'a') (2, 10, 'b')
            R rows (1, 11, 'y') (2, 9, 'z')
            L end
            R end
            ";
        check(
            &mut harness(JoinType::LeftSemi),
            script,
            "
            wm -5
            (1, 10, a) @-5
            (2, 10, b) @-5
            wm +inf
            end
            ",
        );
        check(
            &mut harness(JoinType::LeftAnti),
            script,
            "
            wm -5
            wm +inf
            end
            ",
        );
        check(
            &mut harness(JoinType::RightSemi),
            script,
            "
            wm -5
            (1, 12, x) @-5
            (1, 11, y) @-5
            (2, 9, z) @-5
            wm +inf
            end
            ",
        );
        check(
            &mut harness(JoinType::RightAnti),
            "
            L wm 0
            R wm 0
            R rows (1, 12, 'x') (3, 12, 'q')
            L rows (1, 10, 'a')
            R wm 20
            L wm 20
            ",
            "
            wm -5
            (3, 12, q) @-5
            wm 15
            ",
        );
    }

    #[test]
    fn rows_are_late_by_their_merged_watermark() {
        // The left row at 8 arrives under its own watermark 5 but the right
        // input is only at 3: it is on time. The one at 2 is late.
        check(
            &mut harness(JoinType::Inner),
            "
            R wm 3
            L rows@5 (1, 8, 'a') (1, 2, 'late')
            late
            L wm 5
            R rows@3 (1, 9, 'x')
            state
            ",
            "
            late 1
            wm -2
            (1, 8, a, 1, 9, x) @-2
            state 2
            ",
        );
    }

    #[test]
    fn explain_names_the_bound_and_the_state() {
        let metrics = metrics();
        let bounds = IntervalBounds {
            left_time: 1,
            right_time: 1,
            lower: -5 * S,
            upper: S / 2,
        };
        let spec = join_spec(JoinType::Left, true, None);
        let operator =
            IntervalJoinOperator::try_new(spec, bounds, [late(&metrics), late(&metrics)]).expect("plans");
        let name = operator.name();
        assert!(
            name.starts_with("IntervalJoin: Left, left time - right time in [-5s, 500ms]"),
            "{name}"
        );
        assert!(
            name.contains("join_left") && name.contains("late rows counted and dropped"),
            "{name}"
        );
    }

    #[test]
    fn bounds_the_wrong_way_round_are_refused() {
        let metrics = metrics();
        let bounds = IntervalBounds {
            left_time: 1,
            right_time: 1,
            lower: S,
            upper: -S,
        };
        let spec = join_spec(JoinType::Inner, true, None);
        assert!(IntervalJoinOperator::try_new(spec, bounds, [late(&metrics), late(&metrics)]).is_err());
        let spec = join_spec(JoinType::Inner, true, None);
        let on_a_string = IntervalBounds {
            left_time: 2,
            ..bounds
        };
        assert!(IntervalJoinOperator::try_new(spec, on_a_string, [late(&metrics), late(&metrics)]).is_err());
    }

    #[test]
    fn rows_beyond_the_memory_limit_are_an_error_naming_the_join() {
        let script = "L rows (1, 10, 'a') (2, 10, 'b')\nR rows (1, 12, 'x')";
        check_memory_limit(
            || harness(JoinType::Inner),
            script,
            "IntervalJoin",
            "join_left and join_right: 2 left and 1 right rows",
        );
    }
}

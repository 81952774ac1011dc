//! The regular join of two streams, with no time bound: each side keeps its
//! rows by join key, and a row arriving on one side is matched against the
//! other side's kept rows (equal keys AND the join condition), then kept.
//!
//! Inner and semi joins are append-only: a pair is emitted when its second
//! row arrives, a semi row at its first match. Outer and anti joins are
//! *updating* (every output batch has its `changes` column): a row with no
//! match yet is emitted at once (`+I`, padded with NULLs for an outer join);
//! when its first match arrives, that row is taken back (`-D`) before the
//! pair is emitted (`+I`). An updating input's retractions (`-U`, `-D`)
//! take back a kept row equal to theirs and what it made: its pairs (`-D`),
//! and a partner left with no match is padded again; any join of an updating
//! input is updating.
//!
//! State is bounded by a TTL in event time, if given: a row is kept until the
//! merged watermark passes the watermark it arrived under plus the TTL. The
//! arrival watermark rather than the row's own time is used because a
//! regular join need not have a time column at all, and it ties retention to
//! what the source had seen, as Flink's processing-time TTL ties it to the
//! clock, but reproducibly. An expired row is forgotten without output (an
//! outer row it padded stays as emitted): later rows no longer match it.
//! Without a TTL every row is kept for the life of the query.

use std::sync::Arc;

use arrow::array::{BooleanArray, UInt32Array};
use datafusion::common::{internal_err, plan_err};
use datafusion::error::Result;

use super::join::{JoinCore, JoinSpec, Output, Side, hits, show_nanos};
use super::join_state::{
    JoinState, Probe, RowRef, reserve_sides, restore_sides, sides_bytes, sides_memory, snapshot_sides,
};
use crate::stream::changelog::Change;
use crate::stream::checkpoint::StateSnapshot;
use crate::stream::memory::StateMemory;
use crate::stream::operator::{Event, MultiInputOperator, NO_WATERMARK, Nanos, StreamBatch};

/// The operator.
pub struct StreamJoinOperator {
    core: JoinCore,
    /// How long (event time) a row is kept after the watermark it arrived
    /// under; `None`: for ever.
    ttl: Option<Nanos>,
    /// Rows kept per side (left, right).
    state: [JoinState; 2],
    /// The merged watermark last seen.
    watermark: Nanos,
    /// An input is updating: rows may be taken back, so the output updates.
    updating_inputs: bool,
    /// Where retractions of rows never kept are counted.
    metrics: Option<Arc<crate::stream::StreamMetrics>>,
    /// Both sides' share of the memory pool.
    memory: StateMemory,
}

impl StreamJoinOperator {
    /// Join per `spec`, keeping each row `ttl` past the watermark it
    /// arrived under (`None`: keep every row).
    pub fn try_new(spec: JoinSpec, ttl: Option<Nanos>) -> Result<Self> {
        if let Some(ttl) = ttl
            && ttl < 0
        {
            return plan_err!(
                "a stream join's state TTL is negative ({ttl} ns): give 'state.ttl' a positive interval"
            );
        }
        let state = [
            JoinState::new(Arc::clone(&spec.left_schema)),
            JoinState::new(Arc::clone(&spec.right_schema)),
        ];
        Ok(Self {
            core: JoinCore::try_new(spec, "a stream join")?,
            ttl,
            state,
            watermark: NO_WATERMARK,
            updating_inputs: false,
            metrics: None,
            memory: sides_memory(
                "StreamJoin",
                "bound the rows kept with SET 'state.ttl', or join on more selective keys",
            ),
        })
    }

    /// Take updating inputs (their `-U`/`-D` rows take back what their rows
    /// made), counting retractions of rows never kept in `metrics`.
    pub fn with_updating_inputs(mut self, metrics: Arc<crate::stream::StreamMetrics>) -> Self {
        self.updating_inputs = true;
        self.metrics = Some(metrics);
        self
    }

    /// Whether its output is a changelog: outer and anti joins take rows
    /// back, and so does any join of an updating input.
    pub fn is_updating(&self) -> bool {
        self.updating_inputs || self.core.emits.unmatched.iter().any(|u| *u)
    }
}

impl StreamJoinOperator {
    /// Rows added on `side`: matched with the other side's kept rows, then
    /// kept.
    fn add(&mut self, side: Side, input: &StreamBatch, output: &mut Output) -> Result<()> {
        let other = side.other();
        let batch = &input.batch;
        let keys = self.core.keys(side, batch)?;
        let Probe { rows, found, columns } =
            self.state[other.index()].probe(&self.core, side, batch, &keys)?;
        let emits = self.core.emits;

        // Kept rows matched for the first time: an outer or anti row shown
        // alone is taken back; a semi row is shown.
        let first = self.state[other.index()].first_matches(&found);
        if emits.unmatched(other) || emits.matched(other) {
            let refs: Vec<_> = first.iter().map(|(r, _)| *r).collect();
            let by: UInt32Array = first.iter().map(|(_, at)| rows.get(*at).copied()).collect();
            let alone = self.core.alone(other, &self.state[other.index()].rows(&refs)?)?;
            let change = if emits.unmatched(other) {
                Change::Delete
            } else {
                Change::Insert
            };
            output.push(alone, input.watermarks.take(&by)?, change);
        }
        if emits.pairs {
            let by = UInt32Array::from(rows.clone());
            output.push(
                self.core.pairs(columns, rows.len())?,
                input.watermarks.take(&by)?,
                Change::Insert,
            );
        }
        let matched = hits(batch.num_rows(), &rows);
        for (show, wanted) in [(emits.matched(side), true), (emits.unmatched(side), false)] {
            if show {
                let mask = BooleanArray::from(matched.iter().map(|m| *m == wanted).collect::<Vec<_>>());
                let picked = input.filter(&mask)?;
                output.push(
                    self.core.alone(side, &picked.batch)?,
                    picked.watermarks,
                    Change::Insert,
                );
            }
        }

        // Keep the rows that can match later (a NULL key never does), with
        // how many rows they matched.
        let mut matches = vec![0u32; batch.num_rows()];
        for &row in &rows {
            matches[row as usize] += 1;
        }
        let has_key: Vec<bool> = keys.iter().map(Option::is_some).collect();
        let kept = input.filter(&BooleanArray::from(has_key.clone()))?;
        let expire_at = (0..kept.batch.num_rows())
            .map(|i| match self.ttl {
                Some(ttl) => kept.watermarks.get(i).saturating_add(ttl),
                None => Nanos::MAX,
            })
            .collect();
        let kept_matches = matches
            .iter()
            .zip(&has_key)
            .filter(|(_, k)| **k)
            .map(|(m, _)| *m)
            .collect();
        self.state[side.index()].insert_counted(
            kept.batch,
            keys.into_iter().flatten().collect(),
            expire_at,
            kept_matches,
        )
    }

    /// Rows taken back on `side` (`-U`, `-D`): each takes back an equal kept
    /// row, the pairs it made (`-D`), and what its going changes alone: a
    /// partner left with no match is padded again (outer) or taken back
    /// (semi); the row's own padded or semi row is taken back. A retraction
    /// of a row that is not kept is counted, not applied.
    fn retract(&mut self, side: Side, input: &StreamBatch, output: &mut Output) -> Result<()> {
        let other = side.other();
        let keys = self.core.keys(side, &input.batch)?;
        let emits = self.core.emits;
        // A row with a NULL key was never kept (it matches nothing): an outer
        // or anti join showed it alone, and takes that back.
        let null_key = BooleanArray::from(keys.iter().map(Option::is_none).collect::<Vec<_>>());
        if emits.unmatched(side) && null_key.true_count() > 0 {
            let alone = input.filter(&null_key)?;
            output.push(
                self.core.alone(side, &alone.batch)?,
                alone.watermarks,
                Change::Delete,
            );
        }
        let equal = self.state[side.index()].find_equal(&input.batch, &keys)?;
        let missing = equal
            .iter()
            .zip(&keys)
            .filter(|(e, k)| e.is_none() && k.is_some())
            .count();
        if missing > 0
            && let Some(metrics) = &self.metrics
        {
            metrics.count_unmatched_retractions(missing);
        }
        let found_mask = BooleanArray::from(equal.iter().map(Option::is_some).collect::<Vec<_>>());
        let input = input.filter(&found_mask)?;
        let keys: Vec<_> = keys
            .into_iter()
            .zip(&equal)
            .filter(|(_, e)| e.is_some())
            .map(|(k, _)| k)
            .collect();
        let refs: Vec<RowRef> = equal.into_iter().flatten().collect();
        if refs.is_empty() {
            return Ok(());
        }
        let own_matches: Vec<u32> = refs
            .iter()
            .map(|r| self.state[side.index()].matches_of(*r))
            .collect();
        let Probe { rows, found, columns } =
            self.state[other.index()].probe(&self.core, side, &input.batch, &keys)?;
        let emits = self.core.emits;
        if emits.pairs {
            let by = UInt32Array::from(rows.clone());
            output.push(
                self.core.pairs(columns, rows.len())?,
                input.watermarks.take(&by)?,
                Change::Delete,
            );
        }
        let lost = self.state[other.index()].lost_matches(&found);
        if emits.unmatched(other) || emits.matched(other) {
            let lost_refs: Vec<_> = lost.iter().map(|(r, _)| *r).collect();
            let by: UInt32Array = lost.iter().map(|(_, at)| rows.get(*at).copied()).collect();
            let alone = self
                .core
                .alone(other, &self.state[other.index()].rows(&lost_refs)?)?;
            let change = if emits.unmatched(other) {
                Change::Insert
            } else {
                Change::Delete
            };
            output.push(alone, input.watermarks.take(&by)?, change);
        }
        for (show, had_matches) in [(emits.unmatched(side), false), (emits.matched(side), true)] {
            if show {
                let mask = BooleanArray::from(
                    own_matches
                        .iter()
                        .map(|m| (*m > 0) == had_matches)
                        .collect::<Vec<_>>(),
                );
                let picked = input.filter(&mask)?;
                output.push(
                    self.core.alone(side, &picked.batch)?,
                    picked.watermarks,
                    Change::Delete,
                );
            }
        }
        self.state[side.index()].remove(&refs);
        Ok(())
    }
}

impl MultiInputOperator for StreamJoinOperator {
    fn name(&self) -> String {
        let retention = match self.ttl {
            Some(ttl) => format!(
                "state join_left and join_right kept until the watermark passes each row's own plus {}",
                show_nanos(ttl)
            ),
            None => "state join_left and join_right kept without bound (no state.ttl)".to_string(),
        };
        format!(
            "StreamJoin: {}{}; {retention}",
            self.core.spec.join_type,
            if self.is_updating() { ", updating" } else { "" }
        )
    }

    fn inputs(&self) -> usize {
        2
    }

    fn process(&mut self, port: usize, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let side = Side::of_port(port, "a stream join")?;
        let mut output = Output::default();
        match &input.changes {
            None => self.add(side, &input, &mut output)?,
            Some(changes) => {
                if !self.updating_inputs && !changes.all_inserts() {
                    return internal_err!("a stream join planned for appended rows got a retraction");
                }
                // Additions and retractions in the order they came.
                let mut start = 0;
                while start < changes.len() {
                    let adds = changes.get(start).is_addition();
                    let mut end = start + 1;
                    while end < changes.len() && changes.get(end).is_addition() == adds {
                        end += 1;
                    }
                    let part = input.slice(start, end - start);
                    match adds {
                        true => self.add(side, &part, &mut output)?,
                        false => self.retract(side, &part, &mut output)?,
                    }
                    start = end;
                }
            }
        }
        reserve_sides(&self.state, &self.memory)?;
        output.emit(&self.core.spec.schema, self.is_updating(), out)
    }

    fn open(
        &mut self,
        task: Arc<datafusion::execution::TaskContext>,
    ) -> futures::future::BoxFuture<'_, Result<()>> {
        self.memory.opened(&task, sides_bytes(&self.state))
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            if self.ttl.is_some() {
                for state in &mut self.state {
                    state.expire(watermark, false)?;
                }
            }
        }
        out.push(Event::Watermark(watermark));
        reserve_sides(&self.state, &self.memory)
    }

    fn on_end(&mut self, out: &mut Vec<Event>) -> Result<()> {
        // Every row was emitted as it came: nothing waits for the end.
        for state in &mut self.state {
            state.expire(Nanos::MAX, true)?;
        }
        out.push(Event::End);
        Ok(())
    }

    fn state_rows(&self) -> usize {
        self.state.iter().map(JoinState::len).sum()
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        // Each side's live rows with their expiry (TTL) and match counts
        // (what outer, semi and anti rows and retractions depend on).
        snapshot_sides(&mut self.state, into)?;
        into.put_value("watermark", self.watermark);
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        restore_sides(&mut self.state, &self.core, from)?;
        self.watermark = from.value("watermark")?;
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        sides_bytes(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{
        Harness, S, check, check_memory_limit, join_inputs, join_spec, metrics, time_between,
    };
    use datafusion::common::JoinType;

    fn harness(join_type: JoinType, ttl: Option<Nanos>) -> Harness {
        harness_with(join_type, ttl, None)
    }

    fn harness_with(
        join_type: JoinType,
        ttl: Option<Nanos>,
        filter: Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    ) -> Harness {
        let operator = StreamJoinOperator::try_new(join_spec(join_type, true, filter), ttl).expect("plans");
        let (left, right) = join_inputs();
        Harness::multi(Box::new(operator), vec![left, right], &metrics())
    }

    /// A join of updating inputs, rows kept 10 s past their watermark.
    fn updating(join_type: JoinType) -> Harness {
        let metrics = metrics();
        let operator = StreamJoinOperator::try_new(join_spec(join_type, true, None), Some(10 * S))
            .expect("plans")
            .with_updating_inputs(Arc::clone(&metrics));
        let (left, right) = join_inputs();
        Harness::multi(Box::new(operator), vec![left, right], &metrics)
    }

    #[test]
    fn a_restored_stream_join_carries_on_where_it_stopped() {
        // Padded rows taken back at a first match and padded again when the
        // match is retracted, retractions of rows never kept, rows forgotten
        // once their TTL ran out.
        let script = "
            L wm 0
            R wm 0
            L rows (1, 10, 'a') (2, 10, 'b') (null, 10, 'n')
            R rows (1, 50, 'x')
            R wm 5
            L wm 5
            R rows (1, 51, 'y') (3, 51, 'z') (2, 52, 'w')
            state
            L changes -D (1, 10, 'a')
            R changes -D (3, 51, 'z') -D (9, 51, 'never') +I (3, 52, 'z2')
            L rows (3, 11, 'c') (1, 11, 'd')
            R changes -D (2, 52, 'w')
            L wm 12
            R wm 12
            state
            L rows (1, 13, 'e') (2, 13, 'f')
            R rows (2, 53, 'v')
            L wm 20
            R wm 20
            state
            L end
            R end
            ";
        for join_type in [JoinType::Full, JoinType::LeftSemi, JoinType::RightAnti] {
            crate::stream::operators::testing::check_restores(move || updating(join_type), script);
        }
    }

    #[test]
    fn inner_pairs_come_as_they_are_found_and_null_keys_match_nothing() {
        check(
            &mut harness(JoinType::Inner, None),
            "
            L rows (1, 10, 'a') (null, 10, 'n')
            R rows (1, 50, 'x') (null, 50, 'm') (2, 50, 'y')
            L rows (2, 99, 'b') (1, 0, 'c')
            state
            L end
            R end
            state
            ",
            "
            (1, 10, a, 1, 50, x) @-inf
            (2, 99, b, 2, 50, y) @-inf
            (1, 0, c, 1, 50, x) @-inf
            state 5
            wm +inf
            end
            state 0
            ",
        );
    }

    #[test]
    fn state_bytes_follow_the_buffered_rows() {
        let mut h = harness(JoinType::Inner, None);
        assert_eq!(h.state_bytes(), 0);
        h.run("L rows (1, 10, 'a') (2, 10, 'b')");
        let two = h.state_bytes();
        assert!(two > 0, "buffered rows have bytes");
        h.run("R rows (3, 50, 'x')");
        assert!(h.state_bytes() > two, "more rows, more bytes");
        h.run("L end\nR end");
        assert_eq!(h.state_bytes(), 0, "nothing held at the end");
    }

    #[test]
    fn a_left_join_takes_back_its_padded_row_at_the_first_match() {
        check(
            &mut harness(JoinType::Left, None),
            "
            L wm 1
            R wm 1
            L rows (1, 10, 'a') (2, 10, 'b') (null, 10, 'n')
            R rows (1, 50, 'x')
            R rows (1, 60, 'y') (3, 60, 'z')
            ",
            "
            wm 1
            +I (1, 10, a, null, null, null) @1
            +I (2, 10, b, null, null, null) @1
            +I (null, 10, n, null, null, null) @1
            -D (1, 10, a, null, null, null) @1
            +I (1, 10, a, 1, 50, x) @1
            +I (1, 10, a, 1, 60, y) @1
            ",
        );
    }

    #[test]
    fn a_full_join_pads_and_takes_back_on_both_sides() {
        check(
            &mut harness(JoinType::Full, None),
            "
            R rows (1, 50, 'x')
            L rows (1, 10, 'a') (2, 10, 'b')
            R rows (2, 60, 'y')
            ",
            "
            +I (null, null, null, 1, 50, x) @-inf
            -D (null, null, null, 1, 50, x) @-inf
            +I (1, 10, a, 1, 50, x) @-inf
            +I (2, 10, b, null, null, null) @-inf
            -D (2, 10, b, null, null, null) @-inf
            +I (2, 10, b, 2, 60, y) @-inf
            ",
        );
    }

    #[test]
    fn semi_rows_come_once_and_anti_rows_are_taken_back() {
        let script = "
            L rows (1, 10, 'a') (2, 10, 'b')
            R rows (1, 50, 'x') (1, 51, 'y')
            L rows (1, 11, 'c')
            ";
        check(
            &mut harness(JoinType::LeftSemi, None),
            script,
            "
            (1, 10, a) @-inf
            (1, 11, c) @-inf
            ",
        );
        check(
            &mut harness(JoinType::LeftAnti, None),
            script,
            "
            +I (1, 10, a) @-inf
            +I (2, 10, b) @-inf
            -D (1, 10, a) @-inf
            ",
        );
        // The right rows above match as they come: none is shown.
        check(&mut harness(JoinType::RightAnti, None), script, "");
        check(
            &mut harness(JoinType::RightAnti, None),
            "
            R rows (1, 50, 'x') (3, 50, 'z')
            L rows (1, 10, 'a')
            ",
            "
            +I (1, 50, x) @-inf
            +I (3, 50, z) @-inf
            -D (1, 50, x) @-inf
            ",
        );
    }

    #[test]
    fn the_filter_holds_back_pairs_of_equal_keys() {
        // lt - rt within [-5 s, 1 s].
        check(
            &mut harness_with(JoinType::Left, None, Some(time_between(-5, 1))),
            "
            L rows (1, 10, 'a')
            R rows (1, 20, 'x') (1, 12, 'y')
            ",
            "
            +I (1, 10, a, null, null, null) @-inf
            -D (1, 10, a, null, null, null) @-inf
            +I (1, 10, a, 1, 12, y) @-inf
            ",
        );
    }

    #[test]
    fn the_ttl_forgets_rows_once_the_watermark_passes_their_own_plus_the_ttl() {
        check(
            &mut harness(JoinType::Left, Some(10 * S)),
            "
            L wm 0
            R wm 0
            L rows (1, 10, 'a')
            R wm 5
            L wm 5
            L rows (1, 11, 'b')
            state
            L wm 11
            R wm 11
            state
            R rows (1, 12, 'x')
            L wm 16
            R wm 16
            state
            L wm 22
            R wm 22
            state
            ",
            "
            wm 0
            +I (1, 10, a, null, null, null) @0
            wm 5
            +I (1, 11, b, null, null, null) @5
            state 2
            wm 11
            state 1
            -D (1, 11, b, null, null, null) @11
            +I (1, 11, b, 1, 12, x) @11
            wm 16
            state 1
            wm 22
            state 0
            ",
        );
    }

    #[test]
    fn updating_inputs_and_mark_joins_are_refused() {
        assert!(StreamJoinOperator::try_new(join_spec(JoinType::LeftMark, true, None), None).is_err());
        assert!(StreamJoinOperator::try_new(join_spec(JoinType::Inner, true, None), Some(-S)).is_err());
        let mut operator =
            StreamJoinOperator::try_new(join_spec(JoinType::Inner, true, None), None).expect("plans");
        let (left, _) = join_inputs();
        let mut rows = StreamBatch::new(
            crate::stream::operators::testing::batch(&left, "(1, 10, 'a')"),
            crate::stream::operator::RowWatermarks::Constant(0),
        );
        rows.changes = Some(crate::stream::Changes::repeat(Change::Delete, 1));
        let refused = operator.process(0, rows, &mut Vec::new());
        assert!(refused.is_err_and(|e| e.to_string().contains("got a retraction")));
    }

    #[test]
    fn rows_beyond_the_memory_limit_are_an_error_naming_the_join() {
        let script = "L rows (1, 10, 'a') (2, 10, 'b')\nR rows (3, 50, 'x')";
        check_memory_limit(
            || harness(JoinType::Inner, None),
            script,
            "StreamJoin",
            "join_left and join_right: 2 left and 1 right rows",
        );
    }
}

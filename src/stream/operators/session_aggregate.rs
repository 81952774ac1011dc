//! The session aggregate: `GROUP BY window_start, window_end, keys...` over
//! `SESSION(... PARTITION BY k, ts, gap)`, incrementally.
//!
//! Each row arrives as its own small session `[ts, ts + gap)` (the planner
//! lowers the window that way); a session is the union of the ones that
//! overlap or touch per partition key (Flink's sessions), exactly the batch
//! definition (a new session starts when a row comes more than `gap` after
//! the previous one). Rows wait as they came until the watermark is past
//! their session's end (a row at exactly the end would still join it); then
//! the session's rows are aggregated and emitted, and only rows of open
//! sessions stay.
//!
//! Late rows: a row whose own session would already have closed
//! (`ts + gap < watermark`), or that falls in or at the end of a session
//! already emitted for its key, is counted and left out.
//!
//! Over an updating input (a changelog table, an updating aggregate, an
//! outer join of two streams), changes are taken in order: a row taken back
//! (`-U`, `-D`) leaves the open session that holds it, which may split it
//! when the session closes (sessions are found over the rows in force
//! then). An emitted session is final: a retraction of a row no open
//! session holds is late if its session closed (by the rule above),
//! otherwise a retraction of a row never inserted, counted and not applied.

use std::collections::HashMap;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{
    SortColumn, concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch,
};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::{exec_err, internal_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use futures::future::BoxFuture;
use std::sync::Arc;

use crate::stream::checkpoint::{StateSnapshot, int_columns, int_rows, with_columns};
use crate::stream::groups::{Aggregates, GroupColumn, assemble, take_rows};
use crate::stream::late::LateRows;
use crate::stream::memory::StateMemory;
use crate::stream::operator::{
    Event, Nanos, Operator, RowWatermarks, StreamBatch, nanos_values, timestamps, to_nanos,
};

/// Everything the planner decided for one session aggregate.
#[derive(Clone)]
pub struct SessionAggregateSpec {
    /// The inactivity that ends a session.
    pub gap: Nanos,
    /// `window_start` (the row's time) in the input.
    pub start: usize,
    /// The output's group columns, in order.
    pub group_columns: Vec<GroupColumn>,
    /// Which keys (indices into the grouping keys) are the PARTITION BY keys.
    pub session_keys: Vec<usize>,
    /// Keys and aggregates.
    pub aggregates: Aggregates,
    /// The output schema.
    pub schema: SchemaRef,
    /// The input is a changelog: rows are taken back.
    pub retracting: bool,
}

/// The operator.
pub struct SessionAggregateOperator {
    spec: SessionAggregateSpec,
    /// Groups by the keys plus the session's bounds.
    by_session: Aggregates,
    /// Rows of sessions not closed yet, as they came.
    waiting: Vec<RecordBatch>,
    /// Per partition key, the end of its last emitted session.
    emitted_until: HashMap<OwnedRow, Nanos>,
    converter: Option<RowConverter>,
    watermark: Nanos,
    late: LateRows,
    /// The waiting rows' share of the session's memory pool.
    memory: StateMemory,
    /// Bytes of the waiting rows.
    waiting_bytes: usize,
}

impl SessionAggregateOperator {
    /// Keep rows of sessions still open, in the memory pool's account.
    fn keep(&mut self, batch: RecordBatch) -> Result<()> {
        self.waiting_bytes += batch.get_array_memory_size();
        self.waiting.push(batch);
        self.account()
    }

    /// Resize the memory pool's share to the waiting rows.
    fn account(&mut self) -> Result<()> {
        let waiting = &self.waiting;
        let rows = || waiting.iter().map(RecordBatch::num_rows).sum::<usize>();
        self.memory
            .resize(self.waiting_bytes, || format!("{} rows of open sessions", rows()))
    }

    /// The name of the session start column, for errors about its values.
    fn start_name<'b>(&self, batch: &'b RecordBatch) -> &'b str {
        batch
            .schema_ref()
            .fields()
            .get(self.spec.start)
            .map_or("window_start", |f| f.name().as_str())
    }

    /// Whether each row is late: its own session would already have closed
    /// when it came, or it falls in or at the end of a session already
    /// emitted for its key.
    fn late_mask(&self, batch: &RecordBatch, watermarks: &RowWatermarks) -> Result<Vec<bool>> {
        let times = to_nanos(batch.column(self.spec.start), self.start_name(batch))?;
        let times = nanos_values(&times)?;
        let partitions = self.partition_rows(&self.spec.aggregates.evaluate_keys(batch)?)?;
        Ok((0..batch.num_rows())
            .map(|i| {
                let time = times.value(i);
                let behind = time + self.spec.gap < watermarks.get(i);
                let in_emitted = partitions
                    .as_ref()
                    .and_then(|p| self.emitted_until.get(&p.row(i).owned()))
                    .is_some_and(|&until| time <= until);
                behind || in_emitted
            })
            .collect())
    }

    /// Emit the sessions closed at `watermark`, as rows that came under the
    /// operator's watermark so far.
    fn emit_closed(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        let closed = self.close_sessions(watermark)?;
        self.waiting_bytes = self.waiting.iter().map(RecordBatch::get_array_memory_size).sum();
        self.account()?;
        if let Some(batch) = closed {
            out.push(Event::Data(StreamBatch::new(
                batch,
                RowWatermarks::Constant(self.watermark),
            )));
        }
        Ok(())
    }

    /// Keep the rows that are on time; count (or write aside) the late ones.
    fn add(&mut self, batch: RecordBatch, watermarks: &RowWatermarks) -> Result<()> {
        let late = self.late_mask(&batch, watermarks)?;
        if !late.iter().any(|&l| l) {
            return self.keep(batch);
        }
        self.late
            .record(&filter_record_batch(&batch, &BooleanArray::from(late.clone()))?)?;
        let on_time = filter_record_batch(&batch, &BooleanArray::from_iter(late.iter().map(|l| Some(!l))))?;
        if on_time.num_rows() > 0 {
            self.keep(on_time)?;
        }
        Ok(())
    }

    /// Take rows back from the open sessions that hold them; one that no
    /// open session holds is late if its session closed, and otherwise was
    /// never inserted (counted, not applied).
    fn take_back(&mut self, retractions: StreamBatch) -> Result<()> {
        let found = self.remove_waiting(&retractions.batch)?;
        if found.iter().all(|&f| f) {
            return Ok(());
        }
        let missing = retractions.filter(&BooleanArray::from_iter(found.iter().map(|f| Some(!f))))?;
        let late = self.late_mask(&missing.batch, &missing.watermarks)?;
        self.late.record(&filter_record_batch(
            &missing.batch,
            &BooleanArray::from(late.clone()),
        )?)?;
        let never_inserted = late.iter().filter(|&&l| !l).count();
        if never_inserted > 0 {
            self.late.metrics().count_unmatched_retractions(never_inserted);
        }
        Ok(())
    }

    /// Remove one waiting row equal to each row of `retractions` (in every
    /// column); whether each was found.
    fn remove_waiting(&mut self, retractions: &RecordBatch) -> Result<Vec<bool>> {
        let mut found = vec![false; retractions.num_rows()];
        let Some(first) = self.waiting.first() else {
            return Ok(found);
        };
        let waiting = concat_batches(&first.schema(), &self.waiting)?;
        let converter = RowConverter::new(
            waiting
                .schema_ref()
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        let held = converter.convert_columns(waiting.columns())?;
        let taken = converter.convert_columns(retractions.columns())?;
        let mut rows: HashMap<arrow::row::Row<'_>, Vec<usize>> = HashMap::new();
        for i in (0..held.num_rows()).rev() {
            rows.entry(held.row(i)).or_default().push(i);
        }
        let mut kept = vec![true; waiting.num_rows()];
        for (i, found) in found.iter_mut().enumerate() {
            if let Some(at) = rows.get_mut(&taken.row(i)).and_then(Vec::pop) {
                kept[at] = false;
                *found = true;
            }
        }
        if found.iter().any(|&f| f) {
            let kept = filter_record_batch(&waiting, &BooleanArray::from(kept))?;
            self.waiting = vec![kept];
            self.waiting_bytes = self.waiting.iter().map(RecordBatch::get_array_memory_size).sum();
            self.account()?;
        }
        Ok(found)
    }

    /// An operator with no state yet.
    pub fn try_new(spec: SessionAggregateSpec, late: LateRows) -> Result<Self> {
        let key_types = spec.aggregates.key_types();
        let bounds = vec![
            Arc::new(Field::new("session_start", DataType::Int64, false)),
            Arc::new(Field::new("session_end", DataType::Int64, false)),
        ];
        let converter = if spec.session_keys.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                spec.session_keys
                    .iter()
                    .map(|&k| SortField::new(key_types[k].clone()))
                    .collect(),
            )?)
        };
        Ok(Self {
            by_session: spec.aggregates.with_extra_keys(bounds),
            spec,
            waiting: Vec::new(),
            emitted_until: HashMap::new(),
            converter,
            watermark: crate::stream::operator::NO_WATERMARK,
            late,
            memory: StateMemory::new("SessionAggregate", "session_rows"),
            waiting_bytes: 0,
        })
    }

    /// The partition key of each row, comparable.
    fn partition_rows(&self, keys: &[ArrayRef]) -> Result<Option<arrow::row::Rows>> {
        match &self.converter {
            None => Ok(None),
            Some(converter) => {
                let columns: Vec<ArrayRef> = self
                    .spec
                    .session_keys
                    .iter()
                    .map(|&k| Arc::clone(&keys[k]))
                    .collect();
                Ok(Some(converter.convert_columns(&columns)?))
            }
        }
    }

    /// Aggregate and emit every session that ends at or before `watermark`.
    fn close_sessions(&mut self, watermark: Nanos) -> Result<Option<RecordBatch>> {
        if self.waiting.is_empty() {
            return Ok(None);
        }
        let waiting = std::mem::take(&mut self.waiting);
        let batch = concat_batches(&waiting[0].schema(), &waiting)?;
        let (keys, arguments) = self.spec.aggregates.evaluate(&batch)?;
        let times = to_nanos(batch.column(self.spec.start), self.start_name(&batch))?;

        // Rows by partition key, then time: sessions are runs of overlap.
        let mut order: Vec<SortColumn> = self
            .spec
            .session_keys
            .iter()
            .map(|&k| SortColumn {
                values: Arc::clone(&keys[k]),
                options: None,
            })
            .collect();
        order.push(SortColumn {
            values: Arc::clone(&times),
            options: None,
        });
        let times = nanos_values(&times)?;
        let sorted = lexsort_to_indices(&order, None)?;
        let partitions = self.partition_rows(&keys)?;
        let same_partition = |a: usize, b: usize| partitions.as_ref().is_none_or(|p| p.row(a) == p.row(b));

        let (mut closed, mut starts, mut ends, mut open) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut session: Vec<u32> = Vec::new();
        let mut bounds = (0, 0);
        // Closed sessions' rows with their bounds, and the end of each closed
        // session by its first row (for its partition's `emitted_until`).
        let mut emitted: Vec<(usize, Nanos)> = Vec::new();
        let mut flush = |session: &mut Vec<u32>, (start, end): (Nanos, Nanos)| {
            // A row at exactly `end` would still touch, and so join, the
            // session: it closes once the watermark is past its end.
            if end < watermark {
                emitted.push((session[0] as usize, end));
                for &row in session.iter() {
                    closed.push(row);
                    starts.push(start);
                    ends.push(end);
                }
            } else {
                open.extend(session.iter().copied());
            }
            session.clear();
        };
        for &row in sorted.values() {
            let row = row as usize;
            let time = times.value(row);
            let continues = session
                .last()
                .is_some_and(|&last| same_partition(last as usize, row) && time <= bounds.1);
            if !continues && !session.is_empty() {
                flush(&mut session, bounds);
            }
            if continues {
                bounds.1 = bounds.1.max(time + self.spec.gap);
            } else {
                bounds = (time, time + self.spec.gap);
            }
            session.push(row as u32);
        }
        if !session.is_empty() {
            flush(&mut session, bounds);
        }
        if let Some(partitions) = &partitions {
            for (row, end) in emitted {
                let until = self
                    .emitted_until
                    .entry(partitions.row(row).owned())
                    .or_insert(end);
                *until = (*until).max(end);
            }
        }
        let gap = self.spec.gap;
        self.emitted_until
            .retain(|_, until| until.saturating_add(gap) >= watermark);

        if !open.is_empty() {
            self.waiting
                .push(take_record_batch(&batch, &UInt32Array::from(open))?);
        }
        if closed.is_empty() {
            return Ok(None);
        }
        let count = closed.len();
        let (mut keys, arguments) = take_rows(&keys, &arguments, &UInt32Array::from(closed))?;
        keys.push(Arc::new(Int64Array::from(starts)));
        keys.push(Arc::new(Int64Array::from(ends)));
        let mut groups = self.by_session.new_groups()?;
        groups.update(&keys, &arguments, count)?;
        let rows = groups.len();
        let (keys, values) = groups.finish()?;
        let nanos = |i: usize| -> Vec<Nanos> {
            arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(keys[i].as_ref())
                .values()
                .to_vec()
        };
        let (starts, ends) = (nanos(keys.len() - 2), nanos(keys.len() - 1));
        let batch = assemble(
            &self.spec.schema,
            &self.spec.group_columns,
            &keys,
            values,
            rows,
            |bound, data_type| {
                let values = starts.iter().zip(&ends).map(|(s, e)| bound.of(*s, *e)).collect();
                timestamps(values, data_type)
            },
        )?;
        // Sessions in the order they closed.
        let order = lexsort_to_indices(
            &[SortColumn {
                values: Arc::new(Int64Array::from(ends)),
                options: None,
            }],
            None,
        )?;
        Ok(Some(arrow::compute::take_record_batch(&batch, &order)?))
    }
}

impl Operator for SessionAggregateOperator {
    fn name(&self) -> String {
        format!(
            "SessionAggregate: gap {:?}, aggregates {}{}; {}",
            std::time::Duration::from_nanos(self.spec.gap.unsigned_abs()),
            self.spec.aggregates.names().join(", "),
            match self.spec.retracting {
                true => ", rows taken back from open sessions",
                false => "",
            },
            self.late.policy()
        )
    }

    fn state_rows(&self) -> usize {
        // The rows of sessions still open.
        self.waiting.iter().map(RecordBatch::num_rows).sum()
    }

    fn state_bytes(&self) -> usize {
        self.waiting_bytes
    }

    fn state(&self) -> Option<String> {
        Some("session_rows per key, freed once the watermark passes a session's end (its last row plus the gap)".into())
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let Some(changes) = input.changes.as_ref().filter(|c| !c.all_inserts()) else {
            return self.add(input.batch, &input.watermarks);
        };
        if !self.spec.retracting {
            return internal_err!("a session aggregate planned for appended rows got a retraction");
        }
        // In order: each run of additions kept, each run of retractions
        // taken back from the rows kept so far.
        let mut start = 0;
        while start < changes.len() {
            let adds = changes.get(start).is_addition();
            let len = (start..changes.len())
                .take_while(|&i| changes.get(i).is_addition() == adds)
                .count();
            let run = input.slice(start, len);
            if adds {
                self.add(run.batch, &run.watermarks)?;
            } else {
                // A session the watermark closed before a retraction came
                // is final, even within one input batch: emit it first.
                let reached = (0..run.batch.num_rows()).map(|i| run.watermarks.get(i)).min();
                if let Some(reached) = reached.filter(|&w| w > self.watermark) {
                    self.emit_closed(reached, out)?;
                }
                self.take_back(run)?;
            }
            start += len;
        }
        Ok(())
    }

    fn open(&mut self, task: Arc<TaskContext>) -> BoxFuture<'_, Result<()>> {
        self.memory.open(&task);
        Box::pin(async { Ok(()) })
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.emit_closed(watermark, out)?;
        self.watermark = watermark;
        self.late.flush()?;
        out.push(Event::Watermark(watermark));
        Ok(())
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        // The rows of open sessions as one batch (sessions are found over
        // all of them together when the watermark moves, in this order).
        let waiting: usize = self.waiting.iter().map(RecordBatch::num_rows).sum();
        if let Some(first) = self.waiting.first() {
            into.put_batch("session_rows", concat_batches(&first.schema(), &self.waiting)?);
        }
        into.put_values("session", vec![self.watermark, waiting as i64]);
        into.put_batch("session_emitted_until", self.saved_emitted_until()?);
        // Late rows written so far reach the side output with the checkpoint.
        self.late.flush()
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        let [watermark, waiting] = from.values("session")? else {
            return exec_err!(
                "the checkpoint's watermark and row count of a session aggregate are malformed"
            );
        };
        self.watermark = *watermark;
        self.waiting.clear();
        if *waiting > 0 {
            let rows = from.batch("session_rows")?;
            if rows.num_rows() as i64 != *waiting {
                return exec_err!(
                    "the checkpoint of a session aggregate has {} waiting rows, not the {waiting} it counted",
                    rows.num_rows()
                );
            }
            self.waiting.push(rows.clone());
        }
        self.restore_emitted_until(from.batch("session_emitted_until")?)?;
        self.waiting_bytes = self.waiting.iter().map(RecordBatch::get_array_memory_size).sum();
        self.account()
    }
}

impl SessionAggregateOperator {
    /// Per partition key, the end of its last emitted session: a column
    /// `until`, then the key's columns (none without PARTITION BY, when no
    /// end is kept).
    fn saved_emitted_until(&self) -> Result<RecordBatch> {
        let (keys, until): (Vec<_>, Vec<_>) = self
            .emitted_until
            .iter()
            .map(|(key, until)| (key.row(), vec![*until]))
            .unzip();
        let until = int_columns(&["until"], until.into_iter())?;
        match &self.converter {
            None => Ok(until),
            Some(converter) => with_columns(until, vec![converter.convert_rows(keys)?]),
        }
    }

    /// Take back what [`SessionAggregateOperator::saved_emitted_until`] saved.
    fn restore_emitted_until(&mut self, saved: &RecordBatch) -> Result<()> {
        let until = int_rows(saved, 1)?;
        self.emitted_until.clear();
        let keys = match &self.converter {
            Some(converter) => converter.convert_columns(saved.columns().get(1..).unwrap_or_default())?,
            None if until.is_empty() => return Ok(()),
            None => {
                return exec_err!(
                    "the checkpoint of a session aggregate has emitted sessions by key, and it has no PARTITION BY"
                );
            }
        };
        for (i, until) in until.iter().enumerate() {
            self.emitted_until.insert(keys.row(i).owned(), until[0]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::groups::WindowColumn;
    use crate::stream::operators::testing::{Harness, S, check, count_by, late, metrics, window_counts};
    use arrow::datatypes::{Schema, TimeUnit};

    /// `count(*)` per SESSION of 5 s gap, PARTITION BY k, over `(k, ts)`.
    fn session_count() -> Harness {
        session_count_of(false, &metrics())
    }

    /// The same over an updating input (with `retracting`), counting into
    /// `metrics`.
    fn session_count_of(retracting: bool, metrics: &Arc<crate::stream::StreamMetrics>) -> Harness {
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), false),
        ]));
        let spec = SessionAggregateSpec {
            gap: 5 * S,
            start: 1,
            group_columns: vec![
                GroupColumn::Window(WindowColumn::Start),
                GroupColumn::Window(WindowColumn::End),
                GroupColumn::Key(0),
            ],
            session_keys: vec![0],
            aggregates: count_by(&input, "k"),
            schema: window_counts(TimeUnit::Second),
            retracting,
        };
        let operator = SessionAggregateOperator::try_new(spec, late(metrics)).expect("plans");
        Harness::single(Box::new(operator), input, metrics)
    }

    #[test]
    fn a_restored_session_aggregate_carries_on_where_it_stopped() {
        // Open sessions' rows, the ends of emitted ones (a later row in one
        // is late), and sessions extended after the checkpoint.
        crate::stream::operators::testing::check_restores(
            session_count,
            "
            rows (1, 0) (1, 5) (2, 3) (null, 4)
            wm 9
            rows (2, 3) (2, 8)
            rows (1, 10) (3, 12)
            late
            state
            wm 16
            rows (1, 14) (3, 20)
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn rows_a_gap_apart_touch_and_share_a_session_and_rows_behind_a_closed_one_are_late() {
        // Flink's sessions (and batch's, sqllogictests/windows.slt): 0 s and
        // 5 s with a 5 s gap touch, so they are one session [0 s, 10 s).
        check(
            &mut session_count(),
            "
            rows (1, 0) (1, 5) (2, 3)
            # k = 2's [3 s, 8 s) is past; k = 1's [0 s, 10 s) is open.
            wm 9
            # Its own session [3 s, 8 s) had closed (8 s < 9 s): late.
            rows (2, 3)
            # At the end of k = 2's emitted session: it would have joined it, late.
            rows (2, 8)
            # Touches k = 1's open session: joins it, which now ends at 15 s.
            rows (1, 10)
            late
            wm +inf
            end
            ",
            "
            (3, 8, 2, 1) @-inf
            wm 9
            late 2
            (0, 15, 1, 3) @9
            wm +inf
            end
            ",
        );
    }

    /// Changes over k = 1's [0 s, 13 s) and k = 2's [1 s, 6 s), taken back
    /// and updated while open, then after a session closed.
    const RETRACTIONS: &str = "
        changes +I (1, 0) +I (1, 4) +I (1, 8) +I (2, 1)
        wm 2
        # 4 s leaves k = 1's session, which splits into [0 s, 5 s) and
        # [8 s, 13 s); k = 2's row moves from 1 s to 3 s: [3 s, 8 s).
        changes -D (1, 4) -U (2, 1) +U (2, 3)
        state
        wm 7
        # [0 s, 5 s) was emitted: taking 0 s back is late. No session ever
        # held (1, 9): a retraction of a row never inserted. An insert and
        # its retraction in one batch cancel.
        changes -D (1, 0) -D (1, 9) +I (2, 9) -D (2, 9)
        late
        state
        wm +inf
        end
    ";

    #[test]
    fn a_row_taken_back_leaves_its_open_session_which_may_split_and_closed_sessions_are_final() {
        let metrics = metrics();
        check(
            &mut session_count_of(true, &metrics),
            RETRACTIONS,
            "
            wm 2
            state 3
            (0, 5, 1, 1) @2
            wm 7
            late 1
            state 2
            (3, 8, 2, 1) @7
            (8, 13, 1, 1) @7
            wm +inf
            end
            ",
        );
        let unmatched = metrics
            .unmatched_retractions
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(unmatched, 1, "the retraction of a row never inserted is counted");
    }

    #[test]
    fn a_restored_session_aggregate_over_changes_carries_on_where_it_stopped() {
        crate::stream::operators::testing::check_restores(|| session_count_of(true, &metrics()), RETRACTIONS);
    }

    #[test]
    fn retractions_into_a_session_aggregate_planned_for_appended_rows_are_an_internal_error() {
        let out = session_count().run("changes +I (1, 0) -D (1, 0)");
        assert!(
            out.contains("planned for appended rows got a retraction"),
            "{out}"
        );
    }
}

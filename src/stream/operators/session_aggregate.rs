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

use std::collections::HashMap;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{
    SortColumn, concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch,
};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::exec_err;
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
            "SessionAggregate: gap {:?}, aggregates {}; {}",
            std::time::Duration::from_nanos(self.spec.gap.unsigned_abs()),
            self.spec.aggregates.names().join(", "),
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

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        let batch = input.batch;
        let times = to_nanos(batch.column(self.spec.start), self.start_name(&batch))?;
        let times = nanos_values(&times)?;
        let partitions = self.partition_rows(&self.spec.aggregates.evaluate_keys(&batch)?)?;
        let late: Vec<bool> = (0..batch.num_rows())
            .map(|i| {
                let time = times.value(i);
                let behind = time + self.spec.gap < input.watermarks.get(i);
                let in_emitted = partitions
                    .as_ref()
                    .and_then(|p| self.emitted_until.get(&p.row(i).owned()))
                    .is_some_and(|&until| time <= until);
                behind || in_emitted
            })
            .collect();
        if !late.iter().any(|&l| l) {
            self.keep(batch)?;
            return Ok(());
        }
        self.late
            .record(&filter_record_batch(&batch, &BooleanArray::from(late.clone()))?)?;
        let on_time = filter_record_batch(&batch, &BooleanArray::from_iter(late.iter().map(|l| Some(!l))))?;
        if on_time.num_rows() > 0 {
            self.keep(on_time)?;
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
        let before = self.watermark;
        let closed = self.close_sessions(watermark)?;
        self.waiting_bytes = self.waiting.iter().map(RecordBatch::get_array_memory_size).sum();
        self.account()?;
        if let Some(batch) = closed {
            out.push(Event::Data(StreamBatch::new(
                batch,
                RowWatermarks::Constant(before),
            )));
        }
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
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), false),
        ]));
        let metrics = metrics();
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
        };
        let operator = SessionAggregateOperator::try_new(spec, late(&metrics)).expect("plans");
        Harness::single(Box::new(operator), input, &metrics)
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
}

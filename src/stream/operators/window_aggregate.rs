//! The windowed aggregate: `GROUP BY window_start, window_end, keys...` over
//! a window, incrementally.
//!
//! State is kept per *pane* and key, in DataFusion's own `GroupValues` and
//! `GroupsAccumulator`s (an `Accumulator` adapted where an aggregate has no
//! groups version). A pane is a window for TUMBLE; for HOP it is one slide,
//! for CUMULATE one step, so each row is aggregated once whatever the number
//! of windows it falls in. When the watermark reaches a window's end the
//! window is emitted: its panes' partial states (`state()`) are merged
//! (`merge_batch`) and evaluated. A pane is freed once the last window that
//! covers it is emitted.
//!
//! Lateness follows the row's own watermark (the one in force when it
//! arrived): a row is late if the first window it falls in had closed; it is
//! still added to any of its windows that are open, and dropped when none is.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::interleave_record_batch;
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};
use datafusion::common::internal_err;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use futures::future::BoxFuture;
use std::sync::Arc;

use crate::stream::changelog::Change;
use crate::stream::checkpoint::{StateSnapshot, int_columns, int_rows, with_columns};
use crate::stream::groups::{Aggregates, Arguments, Groups, Partial, assemble, take_rows};
pub use crate::stream::groups::{GroupColumn, WindowColumn};
use crate::stream::late::LateRows;
use crate::stream::memory::StateMemory;
use crate::stream::operator::{
    Event, MILLISECOND, Nanos, Operator, RowWatermarks, StreamBatch, nanos_values, timestamps, to_nanos,
};

/// How rows' panes make windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panes {
    /// Each pane is a window (TUMBLE, or rows a window already copied into
    /// each of their windows).
    Windows,
    /// HOP: panes are slides; a window is `size / slide` consecutive panes.
    Hop {
        /// Pane length and distance between window ends.
        slide: Nanos,
        /// Window length.
        size: Nanos,
    },
    /// CUMULATE: panes are steps; windows start at a `size`-aligned start and
    /// end at each step up to `size`.
    Cumulate {
        /// Pane length.
        step: Nanos,
        /// Largest window.
        size: Nanos,
        /// Shift of window starts from the epoch.
        offset: Nanos,
    },
}

impl Panes {
    /// Start of the window (made of several panes) that ends at `end`; for
    /// `Windows` the pane itself holds it.
    fn window_start(&self, end: Nanos) -> Nanos {
        match *self {
            Panes::Windows => end,
            Panes::Hop { size, .. } => end - size,
            Panes::Cumulate { step, size, offset } => cycle_start(end - step, size, offset),
        }
    }

    /// Ends of every window covering `pane`, first to last.
    fn window_ends(&self, pane: PaneId) -> Vec<Nanos> {
        match *self {
            Panes::Windows => vec![pane.end],
            Panes::Hop { slide, size } => (0..size / slide).map(|k| pane.end + k * slide).collect(),
            Panes::Cumulate { step, size, offset } => {
                let last = cycle_start(pane.start, size, offset) + size;
                (0..)
                    .map(|k| pane.end + k * step)
                    .take_while(|&e| e <= last)
                    .collect()
            }
        }
    }

    /// End of the last window covering `pane`: the pane is freed then.
    fn last_end(&self, pane: PaneId) -> Nanos {
        self.window_ends(pane).last().copied().unwrap_or(pane.end)
    }
}

/// The `size`-aligned start of the CUMULATE cycle holding `t`.
fn cycle_start(t: Nanos, size: Nanos, offset: Nanos) -> Nanos {
    t - (t - offset).rem_euclid(size)
}

/// A pane by its bounds; ordered by end, so the map iterates in closing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct PaneId {
    end: Nanos,
    start: Nanos,
}

/// Where each row's pane comes from: input columns holding window (or pane)
/// bounds, and the window length when a bound must be derived.
#[derive(Debug, Clone)]
pub struct PaneColumns {
    /// `window_start` in the input, if the query kept it.
    pub start: Option<usize>,
    /// `window_end` in the input.
    pub end: Option<usize>,
    /// `window_time` in the input.
    pub time: Option<usize>,
    /// Length of a pane, to derive a missing bound.
    pub length: Option<Nanos>,
}

/// Everything the planner decided for one windowed aggregate.
#[derive(Clone)]
pub struct WindowAggregateSpec {
    /// The panes and how they make windows.
    pub panes: Panes,
    /// Where the pane bounds are in the input.
    pub pane_columns: PaneColumns,
    /// The output's group columns, in order.
    pub group_columns: Vec<GroupColumn>,
    /// The grouping keys (group columns that are not window bounds) and the
    /// aggregates.
    pub aggregates: Aggregates,
    /// The output schema (group columns, then aggregates).
    pub schema: SchemaRef,
}

struct Pane {
    /// State by the first window its rows count in: rows on time count in
    /// every window of the pane (the slot keyed by the pane's end); a row
    /// late for the pane's first windows only in the later ones.
    slots: BTreeMap<Nanos, Slot>,
    /// Changed since the last snapshot (a new pane is): a checkpoint writes
    /// the partials of changed panes only and refers to the others.
    changed: bool,
}

impl Default for Pane {
    fn default() -> Self {
        Self {
            slots: BTreeMap::new(),
            changed: true,
        }
    }
}

/// Rows of a pane that count from one window on.
#[derive(Default)]
struct Slot {
    live: Option<Groups>,
    frozen: Vec<Partial>,
}

/// The operator.
pub struct WindowAggregateOperator {
    spec: WindowAggregateSpec,
    panes: BTreeMap<PaneId, Pane>,
    watermark: Nanos,
    late: LateRows,
    /// `EMIT CHANGES`: what each open window last showed.
    changes: Option<Changes>,
    /// The state's share of the session's memory pool
    /// (`datafusion.runtime.memory_limit`).
    memory: StateMemory,
}

/// `EMIT CHANGES` state: the rows each open window last emitted, to send
/// `+I` for a new group and `-U`/`+U` for a changed one after every batch.
struct Changes {
    /// Output columns that are grouping keys (a row's identity in its window).
    keys: Vec<usize>,
    key_rows: RowConverter,
    all_rows: RowConverter,
    last: HashMap<PaneId, Emitted>,
}

impl Changes {
    /// `batch` as a window's last emitted rows, indexed.
    fn emitted(&self, batch: RecordBatch) -> Result<Emitted> {
        let key_columns: Vec<ArrayRef> = self.keys.iter().map(|&i| Arc::clone(batch.column(i))).collect();
        let keys = match key_columns.is_empty() {
            true => None,
            false => Some(self.key_rows.convert_columns(&key_columns)?),
        };
        let by_key = (0..batch.num_rows())
            .map(|row| (keys.as_ref().map(|k| k.row(row).owned()), row))
            .collect();
        Ok(Emitted {
            all: self.all_rows.convert_columns(batch.columns())?,
            by_key,
            batch,
        })
    }
}

/// A window's last emitted rows.
struct Emitted {
    batch: RecordBatch,
    all: Rows,
    /// Row of each key (`None` without keys: one row).
    by_key: HashMap<Option<OwnedRow>, usize>,
}

impl WindowAggregateOperator {
    /// An operator with no state yet.
    pub fn new(spec: WindowAggregateSpec, late: LateRows) -> Self {
        Self {
            spec,
            panes: BTreeMap::new(),
            watermark: crate::stream::operator::NO_WATERMARK,
            late,
            changes: None,
            memory: StateMemory::new("WindowAggregate", "window_partials"),
        }
    }

    /// Bytes of state held: every pane's live groups and frozen partials.
    fn state_size(&self) -> usize {
        self.panes
            .values()
            .flat_map(|pane| pane.slots.values())
            .map(|slot| {
                slot.live.as_ref().map_or(0, Groups::size)
                    + slot.frozen.iter().map(Partial::size).sum::<usize>()
            })
            .sum()
    }

    /// Account the state in the memory pool: an error naming the operator
    /// when it does not fit, instead of growing until the process aborts.
    fn reserve(&mut self) -> Result<()> {
        let size = self.state_size();
        let panes = self.panes.len();
        self.memory.resize(size, || format!("{panes} open panes"))
    }

    /// Emit early results as a changelog after every batch (`EMIT CHANGES`);
    /// only where each pane is a window.
    pub fn emit_changes(mut self) -> Result<Self> {
        if self.spec.panes != Panes::Windows {
            return internal_err!("EMIT CHANGES needs rows copied into their windows, not panes");
        }
        let fields = self.spec.schema.fields();
        let keys: Vec<usize> = self
            .spec
            .group_columns
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, GroupColumn::Key(_)))
            .map(|(i, _)| i)
            .collect();
        let sort_field = |i: usize| SortField::new(fields[i].data_type().clone());
        self.changes = Some(Changes {
            key_rows: RowConverter::new(keys.iter().map(|&i| sort_field(i)).collect())?,
            all_rows: RowConverter::new((0..fields.len()).map(sort_field).collect())?,
            keys,
            last: HashMap::new(),
        });
        Ok(self)
    }

    /// The current rows of `pane`'s window, leaving its state as it was.
    fn peek(&mut self, pane: PaneId) -> Result<Option<RecordBatch>> {
        let aggregates = &self.spec.aggregates;
        let Some(live) = slot_of(&mut self.panes, pane).and_then(|s| s.live.as_mut()) else {
            return Ok(None);
        };
        let partial = aggregates.copy_out(live)?;
        let mut copy = aggregates.new_groups()?;
        copy.merge(&partial)?;
        self.evaluate(copy, pane.start, pane.end).map(Some)
    }

    /// The changelog rows that take `pane`'s window from what it last showed
    /// to `now`: `+I` for new groups, `-U` then `+U` for changed ones.
    fn diff(&mut self, pane: PaneId, now: RecordBatch) -> Result<Option<StreamBatch>> {
        let Some(changes) = &mut self.changes else {
            return Ok(None);
        };
        let key_columns: Vec<ArrayRef> = changes.keys.iter().map(|&i| Arc::clone(now.column(i))).collect();
        let keys = if key_columns.is_empty() {
            None
        } else {
            Some(changes.key_rows.convert_columns(&key_columns)?)
        };
        let all = changes.all_rows.convert_columns(now.columns())?;
        let last = changes.last.remove(&pane);
        let mut picks: Vec<(usize, usize)> = Vec::new();
        let mut ops: Vec<Change> = Vec::new();
        let mut by_key = HashMap::with_capacity(now.num_rows());
        for row in 0..now.num_rows() {
            let key = keys.as_ref().map(|k| k.row(row).owned());
            let before = last.as_ref().and_then(|l| l.by_key.get(&key).copied());
            match (before, &last) {
                (Some(old), Some(l)) if l.all.row(old) != all.row(row) => {
                    picks.extend([(0, old), (1, row)]);
                    ops.extend([Change::UpdateBefore, Change::UpdateAfter]);
                }
                (Some(_), _) => {}
                (None, _) => {
                    picks.push((1, row));
                    ops.push(Change::Insert);
                }
            }
            by_key.insert(key, row);
        }
        let previous = last
            .as_ref()
            .map_or_else(|| RecordBatch::new_empty(now.schema()), |l| l.batch.clone());
        let out = interleave_record_batch(&[&previous, &now], &picks)?;
        changes.last.insert(
            pane,
            Emitted {
                batch: now,
                all,
                by_key,
            },
        );
        if ops.is_empty() {
            return Ok(None);
        }
        let mut batch = StreamBatch::new(out, RowWatermarks::Constant(self.watermark));
        batch.changes = Some(crate::stream::Changes::from_changes(ops));
        Ok(Some(batch))
    }

    /// Each row's pane, from the window columns in the batch.
    fn pane_ids(&self, batch: &RecordBatch) -> Result<Vec<PaneId>> {
        let columns = &self.spec.pane_columns;
        // Each bound's values as nanoseconds, converted once per batch.
        let values = |i: Option<usize>| -> Result<Option<Vec<Nanos>>> {
            match i {
                Some(i) => {
                    let nanos = to_nanos(batch.column(i), batch.schema_ref().field(i).name())?;
                    Ok(Some(nanos_values(&nanos)?.values().to_vec()))
                }
                None => Ok(None),
            }
        };
        let start = values(columns.start)?;
        let end = match (values(columns.end)?, values(columns.time)?) {
            (Some(end), _) => Some(end),
            (None, Some(time)) => Some(time.into_iter().map(|t| t + MILLISECOND).collect()),
            _ => None,
        };
        Ok(match (start, end, columns.length) {
            (Some(start), Some(end), _) => start
                .into_iter()
                .zip(end)
                .map(|(start, end)| PaneId { end, start })
                .collect(),
            (Some(start), None, Some(length)) => start
                .into_iter()
                .map(|start| PaneId {
                    end: start + length,
                    start,
                })
                .collect(),
            (None, Some(end), Some(length)) => end
                .into_iter()
                .map(|end| PaneId {
                    end,
                    start: end - length,
                })
                .collect(),
            _ => return internal_err!("a windowed aggregate's input lacks the window's bounds"),
        })
    }

    /// Aggregate `rows` rows of evaluated keys and arguments into `pane`,
    /// counting in its windows from the one ending at `first_end` on.
    fn update(
        &mut self,
        pane: PaneId,
        first_end: Nanos,
        keys: &[ArrayRef],
        arguments: &Arguments,
        rows: usize,
    ) -> Result<()> {
        let state = self.panes.entry(pane).or_default();
        state.changed = true;
        let slot = state.slots.entry(first_end).or_default();
        if slot.live.is_none() {
            slot.live = Some(self.spec.aggregates.new_groups()?);
        }
        match &mut slot.live {
            Some(groups) => groups.update(keys, arguments, rows),
            None => internal_err!("a pane lost its state while being updated"),
        }
    }

    /// Emit every window that ends at or before `watermark`, in end order.
    fn close_windows(&mut self, watermark: Nanos) -> Result<Option<RecordBatch>> {
        let closing_panes = self.panes.keys().take_while(|p| p.end <= watermark).copied();
        let windows: Vec<PaneId> = match self.spec.panes {
            // Each pane is a window.
            Panes::Windows => closing_panes.collect(),
            panes => {
                let ends: BTreeSet<Nanos> = closing_panes
                    .flat_map(|pane| panes.window_ends(pane))
                    .filter(|&end| end > self.watermark && end <= watermark)
                    .collect();
                ends.into_iter()
                    .map(|end| PaneId {
                        end,
                        start: panes.window_start(end),
                    })
                    .collect()
            }
        };
        let mut batches = Vec::with_capacity(windows.len());
        for window in windows {
            let groups = match self.spec.panes {
                Panes::Windows => self
                    .panes
                    .remove(&window)
                    .and_then(|mut pane| pane.slots.remove(&window.end))
                    .and_then(|slot| slot.live),
                _ => Some(self.merge_panes(window)?),
            };
            // Under EMIT CHANGES every update is out already: the window's
            // state is only dropped.
            if let Some(groups) = groups.filter(|g| !g.is_empty() && self.changes.is_none()) {
                batches.push(self.evaluate(groups, window.start, window.end)?);
            }
        }
        let panes = self.spec.panes;
        self.panes.retain(|id, _| panes.last_end(*id) > watermark);
        self.watermark = watermark;
        self.late.flush()?;
        match batches.len() {
            0 => Ok(None),
            1 => Ok(batches.pop()),
            _ => Ok(Some(concat_batches(&self.spec.schema, &batches)?)),
        }
    }

    /// The merged state of the panes making `window`. Each pane's live groups
    /// are frozen into a partial first, so later windows can merge it again.
    fn merge_panes(&mut self, window: PaneId) -> Result<Groups> {
        let mut merged = self.spec.aggregates.new_groups()?;
        let first = PaneId {
            end: window.start.saturating_add(1),
            start: Nanos::MIN,
        };
        let last = PaneId {
            end: window.end,
            start: Nanos::MAX,
        };
        for (id, pane) in self.panes.range_mut(first..=last) {
            if id.start < window.start {
                continue;
            }
            for (_, slot) in pane.slots.range_mut(..=window.end) {
                if let Some(live) = slot.live.take() {
                    slot.frozen.push(live.freeze()?);
                    pane.changed = true;
                }
                for partial in &slot.frozen {
                    merged.merge(partial)?;
                }
            }
        }
        Ok(merged)
    }

    /// One window's output rows.
    fn evaluate(&self, groups: Groups, start: Nanos, end: Nanos) -> Result<RecordBatch> {
        let rows = groups.len();
        let (keys, values) = groups.finish()?;
        assemble(
            &self.spec.schema,
            &self.spec.group_columns,
            &keys,
            values,
            rows,
            |bound, data_type| timestamps(vec![bound.of(start, end); rows], data_type),
        )
    }
}

impl Operator for WindowAggregateOperator {
    fn name(&self) -> String {
        let aggregates = self.spec.aggregates.names();
        format!(
            "WindowAggregate: {:?}, aggregates {}; {}",
            self.spec.panes,
            aggregates.join(", "),
            self.late.policy()
        )
    }

    fn state(&self) -> Option<String> {
        Some("window_partials per pane and key, each freed once the watermark passes the end of the last window over its pane".into())
    }

    fn state_rows(&self) -> usize {
        // Groups (pane and key) held, live and frozen.
        self.panes
            .values()
            .flat_map(|pane| pane.slots.values())
            .map(|slot| {
                slot.live.as_ref().map_or(0, Groups::len)
                    + slot.frozen.iter().map(Partial::len).sum::<usize>()
            })
            .sum()
    }

    fn state_bytes(&self) -> usize {
        self.state_size()
    }

    fn open(&mut self, task: Arc<TaskContext>) -> BoxFuture<'_, Result<()>> {
        self.memory.open(&task);
        Box::pin(async { Ok(()) })
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        // Every slot of every pane (a row each); the partial states of each
        // pane (their groups, after the slot's bounds and which piece) as a
        // state piece of its own, written only if the pane changed since the
        // last snapshot: a checkpoint of a long replay's many open windows
        // writes the few that moved.
        let mut slots: Vec<[i64; 5]> = vec![];
        let aggregates = &self.spec.aggregates;
        for (pane, state) in &mut self.panes {
            let mut partials: Vec<PartialAt> = vec![];
            for (first_end, slot) in &mut state.slots {
                let bounds = [pane.end, pane.start, *first_end];
                slots.push([
                    bounds[0],
                    bounds[1],
                    bounds[2],
                    i64::from(slot.live.is_some()),
                    slot.frozen.len() as i64,
                ]);
                if !state.changed {
                    continue;
                }
                if let Some(live) = &mut slot.live {
                    partials.push(([bounds[0], bounds[1], bounds[2], 0], aggregates.copy_out(live)?));
                }
                for (i, frozen) in slot.frozen.iter().enumerate() {
                    partials.push(([bounds[0], bounds[1], bounds[2], i as i64 + 1], frozen.clone()));
                }
            }
            let name = pane_piece(*pane);
            if !state.changed {
                into.keep_piece(name);
                continue;
            }
            let places = int_columns(
                &["pane_end", "pane_start", "first_end", "piece"],
                partials
                    .iter()
                    .flat_map(|(p, g)| std::iter::repeat_n(p.to_vec(), g.len())),
            )?;
            into.put_piece(
                name,
                with_columns(places, partials.iter().map(|(_, g)| g.columns()).collect())?,
            );
            state.changed = false;
        }
        into.put_batch(
            "window_slots",
            int_columns(
                &["pane_end", "pane_start", "first_end", "live", "frozen"],
                slots.iter().map(|r| r.to_vec()),
            )?,
        );
        into.put_value("watermark", self.watermark);
        if let Some(changes) = &self.changes {
            let mut panes = Vec::new();
            let mut batches = Vec::new();
            for (pane, emitted) in &changes.last {
                panes.extend(std::iter::repeat_n(
                    vec![pane.end, pane.start],
                    emitted.batch.num_rows(),
                ));
                batches.push(emitted.batch.clone());
            }
            let shown = concat_batches(&self.spec.schema, &batches)?;
            let places = int_columns(&["pane_end", "pane_start"], panes.into_iter())?;
            into.put_batch("emitted", with_columns(places, vec![shown.columns().to_vec()])?);
        }
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        self.watermark = from.value("watermark")?;
        let slots = int_rows(from.batch("window_slots")?, 5)?;
        // Before pieces (manifest format 1) every pane's partials were one
        // part, in slot order.
        let whole = match from.has_pieces() {
            true => None,
            false => from.batch("window_partials").ok(),
        };
        let mut panes: BTreeMap<PaneId, Pane> = BTreeMap::new();
        let mut reader: Option<(PaneId, PartialReader)> = match whole {
            Some(batch) => Some((PaneId { end: 0, start: 0 }, PartialReader::new(batch)?)),
            None => None,
        };
        for [end, start, first_end, live, frozen] in slots.iter().map(|r| [r[0], r[1], r[2], r[3], r[4]]) {
            let pane = PaneId { end, start };
            if whole.is_none() && reader.as_ref().is_none_or(|(at, _)| *at != pane) {
                reader = Some((pane, PartialReader::new(from.piece(&pane_piece(pane))?)?));
            }
            let Some((_, partials)) = &mut reader else {
                return internal_err!("a window pane's partials were not read");
            };
            let mut slot = Slot::default();
            if live != 0 {
                let mut groups = self.spec.aggregates.new_groups()?;
                groups.merge(&partials.next([end, start, first_end, 0], &self.spec.aggregates)?)?;
                slot.live = Some(groups);
            }
            for i in 0..frozen {
                slot.frozen
                    .push(partials.next([end, start, first_end, i + 1], &self.spec.aggregates)?);
            }
            let state = panes.entry(pane).or_default();
            // As the checkpoint holds it: the next one refers to it.
            state.changed = whole.is_some();
            state.slots.insert(first_end, slot);
        }
        self.panes = panes;
        if let Some(changes) = &mut self.changes {
            let emitted = from.batch("emitted")?;
            let places = int_rows(emitted, 2)?;
            let shown = RecordBatch::try_new(Arc::clone(&self.spec.schema), emitted.columns()[2..].to_vec())?;
            let mut at = 0;
            while at < places.len() {
                let len = places[at..].iter().take_while(|p| **p == places[at]).count();
                let pane = PaneId {
                    end: places[at][0],
                    start: places[at][1],
                };
                changes.last.insert(pane, changes.emitted(shown.slice(at, len))?);
                at += len;
            }
        }
        self.reserve()
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let touched = self.aggregate(&input)?;
        self.reserve()?;
        if self.changes.is_some() {
            for pane in touched {
                if let Some(now) = self.peek(pane)?
                    && let Some(changes) = self.diff(pane, now)?
                {
                    out.push(Event::Data(changes));
                }
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        let before = self.watermark;
        let closed = self.close_windows(watermark)?;
        self.reserve()?;
        if let Some(changes) = &mut self.changes {
            // Closing a window ends its changes.
            changes.last.retain(|pane, _| pane.end > watermark);
        } else if let Some(batch) = closed {
            // Emitted rows carry the watermark before the one that closed
            // their window, so an aggregate downstream does not see them late.
            out.push(Event::Data(StreamBatch::new(
                batch,
                RowWatermarks::Constant(before),
            )));
        }
        out.push(Event::Watermark(watermark));
        Ok(())
    }
}

impl WindowAggregateOperator {
    /// Aggregate a batch; the panes it touched.
    fn aggregate(&mut self, input: &StreamBatch) -> Result<Vec<PaneId>> {
        let batch = &input.batch;
        let rows = batch.num_rows();
        let panes = self.pane_ids(batch)?;
        // Late rows: the first window they fall in had closed when they came.
        let late: Vec<bool> = (0..rows)
            .map(|i| panes[i].end <= input.watermarks.get(i))
            .collect();
        if late.iter().any(|&l| l) {
            let mask = BooleanArray::from(late.clone());
            self.late.record(&filter_record_batch(batch, &mask)?)?;
        }
        let (keys, arguments) = self.spec.aggregates.evaluate(batch)?;
        // Rows by pane and the first window still open when they came (rows
        // no open window wants are left out).
        let first_open = |i: usize| {
            let watermark = input.watermarks.get(i);
            let pane = panes[i];
            if pane.end > watermark {
                Some(pane.end)
            } else {
                self.spec
                    .panes
                    .window_ends(pane)
                    .into_iter()
                    .find(|&end| end > watermark)
            }
        };
        let first_ends: Vec<Option<Nanos>> = (0..rows).map(first_open).collect();
        let on_time = |i: usize| first_ends[i] == Some(panes[i].end);
        if (0..rows).all(on_time) && panes.windows(2).all(|w| w[0] == w[1]) {
            if let Some(&pane) = panes.first() {
                self.update(pane, pane.end, &keys, &arguments, rows)?;
                return Ok(vec![pane]);
            }
            return Ok(vec![]);
        }
        // Rows come mostly in pane order and a batch spans few panes: find
        // each row's slot from the last one used before searching (no hashing).
        let mut by_slot: Vec<((PaneId, Nanos), Vec<u32>)> = Vec::new();
        let mut last = 0;
        for (i, (pane, first_end)) in panes.iter().zip(&first_ends).enumerate() {
            let Some(first_end) = first_end else { continue };
            let key = (*pane, *first_end);
            if by_slot.get(last).is_none_or(|(k, _)| *k != key) {
                last = match by_slot.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        by_slot.push((key, Vec::new()));
                        by_slot.len() - 1
                    }
                };
            }
            if let Some((_, rows)) = by_slot.get_mut(last) {
                rows.push(i as u32);
            }
        }
        by_slot.sort_by_key(|(slot, _)| *slot);
        let mut touched: Vec<PaneId> = by_slot.iter().map(|((pane, _), _)| *pane).collect();
        touched.dedup();
        for ((pane, first_end), rows) in by_slot {
            let count = rows.len();
            let (keys, arguments) = take_rows(&keys, &arguments, &UInt32Array::from(rows))?;
            self.update(pane, first_end, &keys, &arguments, count)?;
        }
        Ok(touched)
    }
}

/// A partial state in a checkpoint, after its pane's end and start, its
/// slot's first window end and its piece (0: live, then the frozen ones).
type PartialAt = ([i64; 4], Partial);

/// The name of the state piece that holds `pane`'s partials.
fn pane_piece(pane: PaneId) -> String {
    format!("window_partials/{}/{}", pane.end, pane.start)
}

/// Reads a checkpoint's partials back in the order they were written, each
/// a run of rows after its place (pane, slot, piece).
struct PartialReader {
    places: Vec<Vec<i64>>,
    columns: Vec<ArrayRef>,
    at: usize,
}

impl PartialReader {
    fn new(batch: &RecordBatch) -> Result<Self> {
        let places = int_rows(batch, 4)?;
        let columns = batch.columns().get(4..).unwrap_or_default().to_vec();
        Ok(Self {
            places,
            columns,
            at: 0,
        })
    }

    /// The partial at `place`: the rows from here on that carry it.
    fn next(&mut self, place: [i64; 4], aggregates: &crate::stream::groups::Aggregates) -> Result<Partial> {
        let len = self.places[self.at..].iter().take_while(|p| **p == place).count();
        let part: Vec<ArrayRef> = self.columns.iter().map(|c| c.slice(self.at, len)).collect();
        self.at += len;
        aggregates.partial_from(&part, len)
    }
}

/// The on-time slot of `pane` (Windows mode has no other).
fn slot_of(panes: &mut BTreeMap<PaneId, Pane>, pane: PaneId) -> Option<&mut Slot> {
    panes.get_mut(&pane).and_then(|p| p.slots.get_mut(&pane.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn pane(start: Nanos, end: Nanos) -> PaneId {
        PaneId { end, start }
    }

    #[test]
    fn hop_panes_belong_to_size_over_slide_windows() {
        let hop = Panes::Hop {
            slide: 5 * S,
            size: 15 * S,
        };
        let p = pane(10 * S, 15 * S);
        assert_eq!(hop.window_ends(p), vec![15 * S, 20 * S, 25 * S]);
        assert_eq!(hop.last_end(p), 25 * S);
        assert_eq!(hop.window_start(25 * S), 10 * S);
    }

    #[test]
    fn cumulate_panes_count_in_every_later_window_of_their_cycle() {
        let cumulate = Panes::Cumulate {
            step: 10 * S,
            size: 30 * S,
            offset: 0,
        };
        // The cycle [30 s, 60 s): the pane [40 s, 50 s) is in the windows ending at 50 s and 60 s.
        let p = pane(40 * S, 50 * S);
        assert_eq!(cumulate.window_ends(p), vec![50 * S, 60 * S]);
        assert_eq!(cumulate.last_end(p), 60 * S);
        assert_eq!(cumulate.window_start(50 * S), 30 * S);
        assert_eq!(cumulate.window_start(60 * S), 30 * S);
        // Before the epoch too.
        assert_eq!(cycle_start(-S, 30 * S, 0), -30 * S);
    }

    #[test]
    fn tumbling_panes_are_their_windows() {
        let p = pane(0, 10 * S);
        assert_eq!(Panes::Windows.window_ends(p), vec![10 * S]);
        assert_eq!(Panes::Windows.last_end(p), 10 * S);
    }

    /// `count(*) GROUP BY window_start, window_end, k` over TUMBLE rows
    /// `(k, window_start, window_end)` of 10 s windows.
    fn tumble_count() -> crate::stream::operators::testing::Harness {
        use crate::stream::groups::GroupColumn;
        use crate::stream::operators::testing::{Harness, count_by, late, metrics, window_counts};
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("window_start", ts.clone(), false),
            Field::new("window_end", ts, false),
        ]));
        let metrics = metrics();
        let spec = WindowAggregateSpec {
            panes: Panes::Windows,
            pane_columns: PaneColumns {
                start: Some(1),
                end: Some(2),
                time: None,
                length: Some(10 * S),
            },
            group_columns: vec![
                GroupColumn::Window(WindowColumn::Start),
                GroupColumn::Window(WindowColumn::End),
                GroupColumn::Key(0),
            ],
            aggregates: count_by(&input, "k"),
            schema: window_counts(TimeUnit::Millisecond),
        };
        let operator = WindowAggregateOperator::new(spec, late(&metrics));
        Harness::single(Box::new(operator), input, &metrics)
    }

    #[test]
    fn a_restored_window_aggregate_carries_on_where_it_stopped() {
        crate::stream::operators::testing::check_restores(
            tumble_count,
            "
            wm 5
            rows (1, 0, 10) (2, 0, 10) (1, 10, 20)
            rows (3, 20, 30)
            wm 10
            rows (1, 0, 10)
            late
            rows (1, 10, 20) (3, 20, 30)
            wm 20
            late
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn a_window_closes_when_the_watermark_reaches_its_end_and_a_row_for_it_then_is_late() {
        crate::stream::operators::testing::check(
            &mut tumble_count(),
            "
            wm 5
            # A row at 10 s is in [10 s, 20 s), not in [0 s, 10 s).
            rows (1, 0, 10) (2, 0, 10) (1, 10, 20)
            wm 10
            rows (1, 0, 10)
            late
            rows (1, 10, 20)
            wm +inf
            end
            ",
            "
            wm 5
            (0, 10, 1, 1) @5
            (0, 10, 2, 1) @5
            wm 10
            late 1
            (10, 20, 1, 2) @10
            wm +inf
            end
            ",
        );
    }
}

//! A GROUP BY without a window over a stream: an *updating* aggregate. Each
//! input batch updates the groups it touches, and then the operator emits,
//! per touched group, what changed in the result: `+I` for a new group,
//! `-U`/`+U` for a changed one, `-D` for a group whose last row was taken
//! back (an updating input: a changelog, or an outer join). A group whose
//! values did not change emits nothing. Results are emitted per input batch,
//! never per row, or with `SET 'sluice.emit.interval'` ([`EmitInterval`]) at
//! most once per interval of processing time: the groups touched in between
//! wait, and a group changed five times emits one `-U`/`+U` pair (Flink's
//! mini-batches). The end of the input emits whatever waits.
//!
//! A TUMBLE, HOP or CUMULATE aggregate over an updating input (a changelog
//! table) is this operator too, grouped by the window's bounds among its keys
//! ([`WindowClose`]), each row copied into its windows by the window TVF
//! before it: rows and retractions update their window's groups, and
//! when the watermark reaches a window's end its groups are emitted once, as
//! appended rows (or, with `EMIT CHANGES`, their changes as they come), and
//! dropped. A row, or a retraction, whose window had closed when it came is
//! late: counted (or written aside), never applied.
//!
//! State per group: its key (arrow's row format), the net count of its rows,
//! and where its aggregates' state and the values it last emitted are. A
//! group's values are read after every batch that touched it, and a
//! `GroupsAccumulator` can only be read by draining it, so over appended rows
//! an aggregate with a flat state (`count`, `sum`, `min`, `max`, `avg`, ...)
//! keeps each group's partial state as a row of arrow arrays ([`Rows`]): a
//! batch merges the touched groups' states into a fresh DataFusion
//! `GroupsAccumulator`, updates it with the batch's rows, and takes the new
//! states out (`state` -> `merge_batch` -> `update_batch` -> `state`, all
//! vectorized); reading the groups merges them once more and `evaluate`s.
//! The others (DISTINCT aggregates, whose state is a list a merge would
//! rebuild per batch, and every aggregate over an updating input, which must
//! retract) keep one DataFusion row `Accumulator` per group;
//! `Accumulator::evaluate` leaves its state as it was. The values last
//! emitted are rows of arrow arrays too, compared column by column.
//!
//! Retractions go through DataFusion's `retract_batch` where it is exact in
//! any order (`sum`, `count`, `avg`: their sliding accumulators). The others
//! (`min`, `max`, DISTINCT aggregates, `string_agg`, ...) cannot take a
//! value back, so over an updating input they keep what they need instead: a
//! multiset of their argument values per group ([`Recount`]), aggregated
//! afresh when the group is read. Over an append-only input every aggregate
//! keeps only its plain accumulator.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use arrow::compute::kernels::interleave::interleave;
use arrow::compute::take;
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};
use datafusion::common::{ScalarValue, exec_err, internal_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Accumulator, EmitTo};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use super::group_changes::GroupChanges;
use super::join::Key;
use crate::stream::changelog::{Change, Changes};
use crate::stream::checkpoint::StateSnapshot;
use crate::stream::groups::{Aggregates, Arguments, GroupColumn, as_boolean, assemble};
use crate::stream::memory::StateMemory;
use crate::stream::operator::{
    END_OF_INPUT, Event, NO_WATERMARK, Nanos, Operator, RowWatermarks, StreamBatch, nanos_values, to_nanos,
};

/// What the updating aggregate is planned with.
pub struct UpdatingAggregateSpec {
    /// The GROUP BY keys and the aggregates.
    pub aggregates: Aggregates,
    /// Output columns: the keys, in GROUP BY order.
    pub group_columns: Vec<GroupColumn>,
    /// The output rows (without the change column).
    pub schema: arrow::datatypes::SchemaRef,
    /// Whether the input is updating (its rows carry changes), so that
    /// aggregates must be able to take rows back.
    pub retracting: bool,
    /// `state.ttl`: a group untouched while the watermark advances this far
    /// is dropped. `None`: groups are kept for ever.
    pub ttl: Option<Nanos>,
    /// `sluice.emit.interval`: emit at most once per this much processing
    /// time. `None`: after every input batch.
    pub emit_every: Option<std::time::Duration>,
    /// Groups are windows' (a windowed aggregate over an updating input),
    /// emitted and dropped when the watermark closes them.
    pub windows: Option<WindowClose>,
}

/// How a windowed aggregate over an updating input closes its windows.
pub struct WindowClose {
    /// The input column holding each row's window bound (`window_end`,
    /// `window_time` or `window_start`)...
    pub column: usize,
    /// ...and what to add to it to make the window's end (0, 1 ms, the size).
    pub to_end: Nanos,
    /// Where rows that come after their window closed go.
    pub late: crate::stream::late::LateRows,
    /// `EMIT CHANGES`: emit each window's changes as rows come, rather than
    /// its rows once, at its close.
    pub emit_changes: bool,
}

/// `SET 'sluice.emit.interval'`, as the engine hands it to the stream
/// planner (an extension of the continuous session's config): updating
/// aggregates emit their changes at most once per this much processing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmitInterval(pub std::time::Duration);

/// One group's state.
struct Group {
    key: Key,
    /// The accumulators of the aggregates kept per group ([`Kept::Rows`]).
    accumulators: Vec<Box<dyn Accumulator>>,
    /// Where the partial state of the others ([`Kept::Groups`]) is, in
    /// `states`.
    state: Option<Loc>,
    /// Rows added minus rows taken back: at zero the group disappears.
    rows: i64,
    /// Where the aggregate values it last emitted are, in `shown`, if it did.
    shown: Option<Loc>,
    /// The watermark when a row last touched it (for `state.ttl`).
    touched: Nanos,
}

/// How an aggregate keeps its groups' state.
#[derive(Debug, Clone, PartialEq)]
enum Kept {
    /// A row `Accumulator` per group: the `i`th of a group's accumulators.
    Rows(usize),
    /// Partial states as rows of arrow arrays: these columns of `states`,
    /// read and written through a fresh `GroupsAccumulator` per batch.
    Groups(std::ops::Range<usize>),
}

/// How each aggregate keeps its state: over appended rows an aggregate
/// with a groups accumulator and a flat state (no lists: a DISTINCT
/// aggregate's set would be rebuilt from its list at every batch) keeps
/// partial states; the others a row accumulator per group.
fn kept(aggregates: &Aggregates, retracting: bool) -> Result<(Vec<Kept>, Vec<DataType>)> {
    let (mut kept, mut types, mut rows) = (Vec::new(), Vec::new(), 0);
    for (aggregate, _) in aggregates.aggregates() {
        let fields = aggregate.state_fields()?;
        if !retracting
            && aggregate.groups_accumulator_supported()
            && fields.iter().all(|f| !f.data_type().is_nested())
        {
            kept.push(Kept::Groups(types.len()..types.len() + fields.len()));
            types.extend(fields.iter().map(|f| f.data_type().clone()));
        } else {
            kept.push(Kept::Rows(rows));
            rows += 1;
        }
    }
    Ok((kept, types))
}

/// The updating aggregate.
pub struct UpdatingAggregateOperator {
    spec: UpdatingAggregateSpec,
    /// Keys in arrow's row format; `None` without GROUP BY keys.
    converter: Option<RowConverter>,
    /// Group slot of each key.
    index: datafusion::common::HashMap<Key, usize>,
    groups: Vec<Option<Group>>,
    /// Slots freed by groups that disappeared.
    free: Vec<usize>,
    /// Per slot, the last input batch that touched it (by `batch`) and its
    /// place among the groups that batch touched.
    stamps: Vec<(u64, usize)>,
    /// How each aggregate keeps its state.
    kept: Vec<Kept>,
    /// The partial states of the aggregates kept as [`Kept::Groups`].
    states: Rows,
    /// The values each group last emitted, one column per aggregate, of the
    /// output schema's types.
    shown: Rows,
    /// Input batches so far.
    batch: u64,
    watermark: Nanos,
    /// The watermark at the last TTL sweep.
    swept: Nanos,
    /// Where retractions of rows never added are counted.
    metrics: Option<Arc<crate::stream::StreamMetrics>>,
    /// Slots touched since the last emission, first touch first, and per
    /// slot whether it is among them.
    waiting: Vec<usize>,
    is_waiting: Vec<bool>,
    /// When it last emitted (`sluice.emit.interval`); `None`: not yet.
    emitted_at: Option<std::time::Instant>,
    /// With [`WindowClose`]: the keys of the groups of each window, by the
    /// window's end (a key may be listed again after its group was dropped
    /// and made anew; one no longer in the index is skipped).
    ends: std::collections::BTreeMap<Nanos, Vec<Key>>,
    /// The groups' share of the memory pool.
    memory: StateMemory,
    /// The groups changed since the last checkpoint, which is all the next
    /// one writes of them.
    changed: GroupChanges,
}

impl UpdatingAggregateOperator {
    /// An operator with no groups yet.
    pub fn try_new(spec: UpdatingAggregateSpec) -> Result<Self> {
        let key_types = spec.aggregates.key_types();
        let converter = if key_types.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                key_types.into_iter().map(SortField::new).collect(),
            )?)
        };
        let (kept, state_types) = kept(&spec.aggregates, spec.retracting)?;
        let value_types = spec.schema.fields()[spec.group_columns.len()..]
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Self {
            converter,
            index: Default::default(),
            groups: Vec::new(),
            free: Vec::new(),
            stamps: Vec::new(),
            kept,
            states: Rows::new(state_types),
            shown: Rows::new(value_types),
            spec,
            batch: 0,
            watermark: NO_WATERMARK,
            swept: NO_WATERMARK,
            metrics: None,
            waiting: Vec::new(),
            is_waiting: Vec::new(),
            emitted_at: None,
            ends: Default::default(),
            memory: StateMemory::new("UpdatingAggregate", "groups")
                .with_fix("bound the groups with SET 'state.ttl', or group by fewer keys"),
            changed: GroupChanges::default(),
        })
    }

    /// Fold rows into their groups; emit the changes due.
    fn take(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        if input.batch.num_rows() == 0 {
            return Ok(());
        }
        let (input, ends) = self.on_time(input)?;
        if input.batch.num_rows() == 0 {
            return Ok(());
        }
        let touched = self.update(&input, ends.as_deref())?;
        self.changed.touch(&touched);
        if self.spec.windows.as_ref().is_some_and(|w| !w.emit_changes) {
            // Each window's rows go out once, when it closes.
            return Ok(());
        }
        self.wait(touched);
        self.flush(false, out)
    }

    /// Resize the memory pool's share to the groups held.
    fn reserve(&self) -> Result<()> {
        self.memory
            .resize(self.state_bytes(), || format!("{} groups", self.state_rows()))
    }

    /// Report retractions of rows never added to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::stream::StreamMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// A fresh accumulator per aggregate kept per group, able to take rows
    /// back if the input is updating.
    fn new_accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        self.spec
            .aggregates
            .aggregates()
            .iter()
            .zip(&self.kept)
            .filter(|(_, kept)| matches!(kept, Kept::Rows(_)))
            .map(|((aggregate, _), _)| new_accumulator(aggregate, self.spec.retracting))
            .collect()
    }

    /// Drop the group in `slot`, with its rows in `states` and `shown`.
    fn drop_group(&mut self, slot: usize) {
        if let Some(group) = self.groups.get_mut(slot).and_then(Option::take) {
            self.index.remove(&group.key);
            self.changed.dropped(&group.key);
            for (rows, loc) in [(&mut self.states, group.state), (&mut self.shown, group.shown)] {
                if let Some(loc) = loc {
                    rows.release(loc);
                }
            }
            self.free.push(slot);
        }
    }

    /// The group slot of each row, creating groups for new keys (noted
    /// under their window's end, from `ends`, when groups are windows').
    fn slots(&mut self, keys: &[ArrayRef], rows: usize, ends: Option<&[Nanos]>) -> Result<Vec<usize>> {
        let keys: Vec<Key> = match &self.converter {
            None => vec![Key::default(); rows],
            Some(converter) => {
                let converted = converter.convert_columns(keys)?;
                (0..rows).map(|r| Key::new(converted.row(r).as_ref())).collect()
            }
        };
        let mut slots = Vec::with_capacity(rows);
        for (row, key) in keys.into_iter().enumerate() {
            let slot = match self.index.get(&key) {
                Some(&slot) => slot,
                None => {
                    let group = Group {
                        key: key.clone(),
                        accumulators: self.new_accumulators()?,
                        state: None,
                        rows: 0,
                        shown: None,
                        touched: self.watermark,
                    };
                    let slot = match self.free.pop() {
                        Some(slot) => {
                            self.groups[slot] = Some(group);
                            slot
                        }
                        None => {
                            self.groups.push(Some(group));
                            self.groups.len() - 1
                        }
                    };
                    if let Some(end) = ends.and_then(|e| e.get(row)) {
                        self.ends.entry(*end).or_default().push(key.clone());
                    }
                    self.index.insert(key, slot);
                    slot
                }
            };
            slots.push(slot);
        }
        Ok(slots)
    }

    /// Fold `input` into its groups; the slots it touched, first touch first.
    fn update(&mut self, input: &StreamBatch, ends: Option<&[Nanos]>) -> Result<Vec<usize>> {
        let rows = input.batch.num_rows();
        let (keys, arguments) = self.spec.aggregates.evaluate(&input.batch)?;
        let slots = self.slots(&keys, rows, ends)?;
        let adds: Vec<bool> = match &input.changes {
            None => vec![true; rows],
            Some(changes) => changes.iter().map(Change::is_addition).collect(),
        };
        if adds.iter().any(|a| !a) && !self.spec.retracting {
            return internal_err!("an updating aggregate planned for appended rows got a retraction");
        }
        // Each touched slot once, first touch first (stamped with this
        // batch's number), and each row's place among them.
        self.batch += 1;
        self.stamps.resize(self.groups.len(), (0, 0));
        let mut touched = Vec::new();
        let mut places = Vec::with_capacity(rows);
        for &slot in &slots {
            let (stamp, place) = &mut self.stamps[slot];
            if *stamp != self.batch {
                (*stamp, *place) = (self.batch, touched.len());
                touched.push(slot);
            }
            places.push(*place);
        }
        // Rows grouped by their group, additions before retractions, each
        // group's rows in input order (a counting sort): one `take` per
        // argument, then a slice per run.
        let mut starts = vec![0usize; 2 * touched.len() + 1];
        for r in 0..rows {
            starts[2 * places[r] + usize::from(!adds[r]) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut order = vec![0u32; rows];
        for r in 0..rows {
            let bucket = &mut starts[2 * places[r] + usize::from(!adds[r])];
            order[*bucket] = r as u32;
            *bucket += 1;
        }
        // Net rows per group; a retraction of a row its group does not have
        // is counted and skipped.
        let mut skip = vec![false; rows];
        for &r in &order {
            let r = r as usize;
            let Some(group) = self.groups[slots[r]].as_mut() else {
                return internal_err!("a row's group slot is empty");
            };
            if adds[r] {
                group.rows += 1;
            } else if group.rows > 0 {
                group.rows -= 1;
            } else {
                skip[r] = true;
            }
            group.touched = self.watermark;
        }
        let skipped = skip.iter().filter(|s| **s).count();
        if skipped > 0
            && let Some(metrics) = &self.metrics
        {
            metrics.count_unmatched_retractions(skipped);
        }
        // Aggregates kept as partial states: all of the batch at once (the
        // input is append-only: nothing is skipped).
        self.refresh_states(&touched, &places, &arguments)?;
        if !self.kept.iter().any(|k| matches!(k, Kept::Rows(_))) {
            return Ok(touched);
        }
        // Without FILTERs and skipped rows every aggregate sees the same rows.
        let shared = (UInt32Array::from(order.clone()), runs(&order, &slots, &adds));
        for (a, (values, filter)) in arguments.iter().enumerate() {
            let Kept::Rows(kept) = self.kept[a] else {
                continue;
            };
            let own;
            let (indices, runs) = if filter.is_none() && skipped == 0 {
                (&shared.0, &shared.1)
            } else {
                // The rows this aggregate sees: its FILTER holds, and not skipped.
                let passes =
                    |r: usize| !skip[r] && filter.as_ref().is_none_or(|f| passes_filter(f.as_ref(), r));
                let picked: Vec<u32> = order.iter().copied().filter(|&r| passes(r as usize)).collect();
                let picked_runs = runs(&picked, &slots, &adds);
                own = (UInt32Array::from(picked), picked_runs);
                (&own.0, &own.1)
            };
            if indices.is_empty() {
                continue;
            }
            let taken = values
                .iter()
                .map(|v| Ok(take(v.as_ref(), indices, None)?))
                .collect::<Result<Vec<ArrayRef>>>()?;
            for run in runs {
                let slice: Vec<ArrayRef> = taken.iter().map(|t| t.slice(run.start, run.len)).collect();
                let Some(group) = self.groups[run.slot].as_mut() else {
                    return internal_err!("a row's group slot is empty");
                };
                match run.adds {
                    true => group.accumulators[kept].update_batch(&slice)?,
                    false => group.accumulators[kept].retract_batch(&slice)?,
                }
            }
        }
        Ok(touched)
    }

    /// The partial states of the aggregates kept as [`Kept::Groups`] in the
    /// groups of `slots`, updated with `rows` (each row's place in `slots`,
    /// and the aggregates' arguments): merged into a fresh
    /// `GroupsAccumulator`, updated, and written back as a new chunk.
    fn refresh_states(&mut self, slots: &[usize], rows: &[usize], arguments: &Arguments) -> Result<()> {
        if self.states.types.is_empty() || slots.is_empty() {
            return Ok(());
        }
        // The groups that have a state come first in the accumulator: a
        // `GroupsAccumulator` takes groups with no value seen to be new
        // groups of the rows it is given (as DataFusion's hash aggregate
        // makes them), and would count those with none as seen (a `sum` of
        // 0, not NULL) if `total_num_groups` ran ahead of its rows.
        let (places, locs) = self.state_locs(slots)?;
        let mut local = vec![usize::MAX; slots.len()];
        for (i, &place) in places.iter().enumerate() {
            local[place] = i;
        }
        for (next, l) in (places.len()..).zip(local.iter_mut().filter(|l| **l == usize::MAX)) {
            *l = next;
        }
        let merged: Vec<usize> = (0..places.len()).collect();
        let rows: Vec<usize> = rows.iter().map(|&place| local[place]).collect();
        let mut columns = Vec::with_capacity(self.states.types.len());
        for (a, kept) in self.kept.iter().enumerate() {
            let Kept::Groups(range) = kept else { continue };
            let aggregate = &self.spec.aggregates.aggregates()[a].0;
            let mut accumulator = aggregate.create_groups_accumulator()?;
            let state = self.states.gather(&locs, range.clone())?;
            accumulator.merge_batch(&state, &merged, places.len())?;
            let (values, filter) = &arguments[a];
            let filter = filter.as_ref().map(as_boolean).transpose()?;
            accumulator.update_batch(values, &rows, filter, slots.len())?;
            columns.extend(accumulator.state(EmitTo::All)?);
        }
        let chunk = self.states.push(columns, slots.len())?;
        for (place, &slot) in slots.iter().enumerate() {
            let Some(group) = self.groups[slot].as_mut() else {
                return internal_err!("a touched group slot is empty");
            };
            if let Some(old) = group.state.replace(Loc {
                chunk,
                row: local[place],
            }) {
                self.states.release(old);
            }
        }
        compact(&mut self.states, &mut self.groups, |g| &mut g.state)
    }

    /// The partial state over no rows of the aggregates kept as
    /// [`Kept::Groups`], for the group in `slot`: a fresh row accumulator's
    /// (the state of the one group of a GROUP BY without keys over no input;
    /// a `GroupsAccumulator` makes no group without a row).
    fn empty_state(&mut self, slot: usize) -> Result<()> {
        if self.states.types.is_empty() {
            return Ok(());
        }
        let mut columns = Vec::with_capacity(self.states.types.len());
        for ((aggregate, _), kept) in self.spec.aggregates.aggregates().iter().zip(&self.kept) {
            if let Kept::Groups(_) = kept {
                for value in aggregate.create_accumulator()?.state()? {
                    columns.push(value.to_array()?);
                }
            }
        }
        let chunk = self.states.push(columns, 1)?;
        let Some(group) = self.groups[slot].as_mut() else {
            return internal_err!("the empty group's slot is empty");
        };
        if let Some(old) = group.state.replace(Loc { chunk, row: 0 }) {
            self.states.release(old);
        }
        Ok(())
    }

    /// The groups of `slots` that have a partial state: their places in
    /// `slots` and where their states are.
    fn state_locs(&self, slots: &[usize]) -> Result<(Vec<usize>, Vec<Loc>)> {
        let mut found = (Vec::new(), Vec::new());
        for (place, &slot) in slots.iter().enumerate() {
            let Some(group) = self.groups[slot].as_ref() else {
                return internal_err!("a group slot read is empty");
            };
            if let Some(loc) = group.state {
                found.0.push(place);
                found.1.push(loc);
            }
        }
        Ok(found)
    }

    /// The aggregate values of the groups of `slots`, one column per
    /// aggregate of the output schema's type.
    fn values(&mut self, slots: &[usize]) -> Result<Vec<ArrayRef>> {
        let n = slots.len();
        let (places, locs) = self.state_locs(slots)?;
        if !self.states.types.is_empty() && places.len() != n {
            return internal_err!("a group read has no partial state");
        }
        let mut columns = Vec::with_capacity(self.kept.len());
        for (a, kept) in self.kept.iter().enumerate() {
            let column = match kept {
                _ if n == 0 => arrow::array::new_empty_array(&self.shown.types[a]),
                Kept::Groups(range) => {
                    let aggregate = &self.spec.aggregates.aggregates()[a].0;
                    let mut accumulator = aggregate.create_groups_accumulator()?;
                    let state = self.states.gather(&locs, range.clone())?;
                    accumulator.merge_batch(&state, &places, n)?;
                    accumulator.evaluate(EmitTo::All)?
                }
                Kept::Rows(i) => {
                    let mut values = Vec::with_capacity(n);
                    for &slot in slots {
                        let Some(group) = self.groups[slot].as_mut() else {
                            return internal_err!("a group slot read is empty");
                        };
                        values.push(group.accumulators[*i].evaluate()?);
                    }
                    uniform_array(values)?
                }
            };
            columns.push(match &self.shown.types[a] {
                t if t == column.data_type() => column,
                t => arrow::compute::cast(&column, t)?,
            });
        }
        Ok(columns)
    }

    /// The changes that take the touched groups from what they last showed
    /// to what they hold now; groups left with no rows are dropped.
    fn emit(&mut self, touched: &[usize], out: &mut Vec<Event>) -> Result<()> {
        // The values they show change.
        self.changed.touch(touched);
        let keyless = self.converter.is_none();
        // Per touched group: its key, its row among the values it showed
        // (`old`) and among those it holds (`new`; none once emptied).
        let (mut keys, mut parts, mut shown, mut reading, mut gone) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &slot in touched {
            let Some(group) = self.groups[slot].as_ref() else {
                continue;
            };
            let old = group.shown.map(|loc| {
                shown.push(loc);
                shown.len() - 1
            });
            let new = if group.rows == 0 && !keyless {
                gone.push(slot);
                None
            } else {
                reading.push(slot);
                Some(reading.len() - 1)
            };
            keys.push(group.key.clone());
            parts.push((old, new));
        }
        let old = self.shown.gather(&shown, 0..self.shown.types.len())?;
        let new = self.values(&reading)?;
        let same = Same::new(&old, &new)?;
        let mut rows = Picks::default();
        for (key, part) in parts.iter().enumerate() {
            match *part {
                (Some(o), None) => rows.push(key, (0, o), Change::Delete),
                (None, Some(n)) => rows.push(key, (1, n), Change::Insert),
                (Some(o), Some(n)) if !same.rows(o, n)? => {
                    rows.push(key, (0, o), Change::UpdateBefore);
                    rows.push(key, (1, n), Change::UpdateAfter);
                }
                _ => {}
            }
        }
        // What the groups hold now is what they show.
        if !reading.is_empty() {
            let chunk = self.shown.push(new.clone(), reading.len())?;
            for (row, &slot) in reading.iter().enumerate() {
                if let Some(group) = self.groups[slot].as_mut()
                    && let Some(old) = group.shown.replace(Loc { chunk, row })
                {
                    self.shown.release(old);
                }
            }
        }
        for slot in gone {
            self.drop_group(slot);
        }
        compact(&mut self.shown, &mut self.groups, |g| &mut g.shown)?;
        self.push_rows(&keys, rows, &[&old, &new], true, self.watermark, out)
    }

    /// Output rows as one batch: each `rows` row is the key `keys` has at
    /// its place and a row of one of `sources`' value columns; with their
    /// changes if `changes` (else as appended rows), each row under
    /// `watermark`.
    fn push_rows(
        &self,
        keys: &[Key],
        rows: Picks,
        sources: &[&[ArrayRef]],
        changes: bool,
        watermark: Nanos,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        if rows.changes.is_empty() {
            return Ok(());
        }
        let keys = match &self.converter {
            None => vec![],
            Some(converter) => {
                let parser = converter.parser();
                converter.convert_rows(rows.keys.iter().map(|&k| parser.parse(keys[k].as_bytes())))?
            }
        };
        let values = (0..self.shown.types.len())
            .map(|c| {
                let columns: Vec<&dyn Array> = sources.iter().map(|s| s[c].as_ref()).collect();
                Ok(interleave(&columns, &rows.values)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = assemble(
            &self.spec.schema,
            &self.spec.group_columns,
            &keys,
            values,
            rows.changes.len(),
            |_, _| internal_err!("an aggregate without a window has no window columns"),
        )?;
        let mut batch = StreamBatch::new(batch, RowWatermarks::Constant(watermark));
        if changes {
            batch.changes = Some(Changes::from_changes(rows.changes));
        }
        out.push(Event::Data(batch));
        Ok(())
    }

    /// With [`WindowClose`]: the rows of `input` whose window was still open
    /// when they came, with their windows' ends; the others are late
    /// (recorded), as is a row with no window (a NULL bound).
    fn on_time(&mut self, input: StreamBatch) -> Result<(StreamBatch, Option<Vec<Nanos>>)> {
        let Some(windows) = &mut self.spec.windows else {
            return Ok((input, None));
        };
        let column = input.batch.column(windows.column);
        let name = input.batch.schema_ref().field(windows.column).name().clone();
        let bounds = to_nanos(column, &name)?;
        let bounds = nanos_values(&bounds)?;
        let ends: Vec<Option<Nanos>> = (0..bounds.len())
            .map(|i| {
                bounds
                    .is_valid(i)
                    .then(|| bounds.value(i).saturating_add(windows.to_end))
            })
            .collect();
        let on_time: Vec<bool> = (0..ends.len())
            .map(|i| ends[i].is_some_and(|end| end > input.watermarks.get(i)))
            .collect();
        if on_time.iter().all(|k| *k) {
            return Ok((input, Some(ends.into_iter().flatten().collect())));
        }
        let late = BooleanArray::from(on_time.iter().map(|k| !k).collect::<Vec<_>>());
        windows
            .late
            .record(&arrow::compute::filter_record_batch(&input.batch, &late)?)?;
        let kept = input.filter(&BooleanArray::from(on_time.clone()))?;
        let ends = ends
            .into_iter()
            .zip(on_time)
            .filter_map(|(end, kept)| end.filter(|_| kept))
            .collect();
        Ok((kept, Some(ends)))
    }

    /// With [`WindowClose`]: emit (unless `EMIT CHANGES` sent them already)
    /// and drop the groups of every window that ends at or before
    /// `watermark`; the rows carry `before`, the watermark before this one,
    /// so that an operator downstream does not find them late.
    fn close_windows(&mut self, watermark: Nanos, before: Nanos, out: &mut Vec<Event>) -> Result<()> {
        let Some(emit_changes) = self.spec.windows.as_ref().map(|w| w.emit_changes) else {
            return Ok(());
        };
        let open = self.ends.split_off(&watermark.saturating_add(1));
        let closing = std::mem::replace(&mut self.ends, open);
        if closing.is_empty() {
            return Ok(());
        }
        // What the closing windows' groups changed goes out before they do.
        if emit_changes {
            self.flush(true, out)?;
        }
        let mut slots = Vec::new();
        let mut reading = Vec::new();
        for key in closing.into_values().flatten() {
            // Out of the index, so that a key listed twice is read once.
            let Some(slot) = self.index.remove(&key) else {
                continue;
            };
            slots.push(slot);
            if !emit_changes && self.groups[slot].as_ref().is_some_and(|g| g.rows > 0) {
                reading.push(slot);
            }
        }
        let values = self.values(&reading)?;
        let mut keys = Vec::with_capacity(reading.len());
        let mut rows = Picks::default();
        for (row, &slot) in reading.iter().enumerate() {
            if let Some(group) = &self.groups[slot] {
                keys.push(group.key.clone());
                rows.push(row, (0, row), Change::Insert);
            }
        }
        for slot in slots {
            self.drop_group(slot);
        }
        self.push_rows(&keys, rows, &[&values], false, before, out)?;
        if let Some(windows) = &mut self.spec.windows {
            windows.late.flush()?;
        }
        Ok(())
    }

    /// A GROUP BY with no keys has one row even over no input (`count(*)`
    /// 0): at the end, emit it if no row ever made it.
    fn emit_empty_group(&mut self, out: &mut Vec<Event>) -> Result<()> {
        if self.converter.is_some() || !self.groups.is_empty() {
            return Ok(());
        }
        // The one group, with fresh accumulators over no rows.
        let slots = self.slots(&[], 1, None)?;
        for &slot in &slots {
            self.empty_state(slot)?;
        }
        self.emit(&slots, out)
    }

    /// Note `touched` as waiting to be emitted.
    fn wait(&mut self, touched: Vec<usize>) {
        self.is_waiting.resize(self.groups.len(), false);
        for slot in touched {
            if !self.is_waiting[slot] {
                self.is_waiting[slot] = true;
                self.waiting.push(slot);
            }
        }
    }

    /// Emit the waiting groups' changes if `sluice.emit.interval` has passed
    /// since the last emission (always, without it), or if `now`.
    fn flush(&mut self, now: bool, out: &mut Vec<Event>) -> Result<()> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        let due = match (self.spec.emit_every, self.emitted_at) {
            (Some(every), Some(at)) => at.elapsed() >= every,
            _ => true,
        };
        if !(now || due) {
            return Ok(());
        }
        let waiting = std::mem::take(&mut self.waiting);
        for &slot in &waiting {
            self.is_waiting[slot] = false;
        }
        self.emitted_at = Some(std::time::Instant::now());
        self.emit(&waiting, out)
    }

    /// Drop groups untouched for `state.ttl` of event time.
    fn expire(&mut self) {
        let Some(ttl) = self.spec.ttl else { return };
        if self.watermark == END_OF_INPUT || self.watermark.saturating_sub(self.swept) < ttl / 2 {
            return;
        }
        self.swept = self.watermark;
        let horizon = self.watermark.saturating_sub(ttl);
        for slot in 0..self.groups.len() {
            // A waiting group was touched since it last emitted: it stays
            // until it has.
            if let Some(group) = &self.groups[slot]
                && group.touched < horizon
                && !self.is_waiting.get(slot).copied().unwrap_or(false)
            {
                self.drop_group(slot);
            }
        }
    }
}

impl Operator for UpdatingAggregateOperator {
    fn name(&self) -> String {
        let names = self.spec.aggregates.names();
        let what = if names.is_empty() {
            "distinct rows".to_string()
        } else {
            names.join(", ")
        };
        let windows = match &self.spec.windows {
            Some(w) if w.emit_changes => {
                format!(", per window, changes until it closes; {}", w.late.policy())
            }
            Some(w) => format!(", per window, emitted when it closes; {}", w.late.policy()),
            None => String::new(),
        };
        format!(
            "UpdatingAggregate: {what}{}{windows}",
            if self.spec.retracting { " (retracting)" } else { "" }
        )
    }

    fn state_rows(&self) -> usize {
        // Groups held: slots less those freed (counted without a scan, as
        // this is read after every batch).
        self.groups.len().saturating_sub(self.free.len())
    }

    fn state_bytes(&self) -> usize {
        // An estimate: the groups held times the mean size of a sample of
        // them (their key, accumulators and last emitted values), so a
        // million groups are not walked a few times a second.
        const SAMPLE: usize = 64;
        let sample: Vec<usize> = self
            .groups
            .iter()
            .flatten()
            .take(SAMPLE)
            .map(|g| {
                // The group, its index entry, and a long key's heap bytes.
                std::mem::size_of::<Group>()
                    + std::mem::size_of::<(Key, usize)>()
                    + if let Key::Boxed(bytes) = &g.key {
                        bytes.len()
                    } else {
                        0
                    }
                    + g.accumulators.iter().map(|a| a.size()).sum::<usize>()
            })
            .collect();
        // Partial states and values shown are held in arrays, counted whole.
        let held = self.states.size() + self.shown.size();
        match sample.len() {
            0 => 0,
            n => sample.iter().sum::<usize>() / n * self.state_rows() + held,
        }
    }

    fn state(&self) -> Option<String> {
        let bound = match self.spec.ttl {
            _ if self.spec.windows.is_some() => {
                "each dropped once the watermark passes its window's end".to_string()
            }
            Some(ttl) => format!(
                "a group untouched for state.ttl ({}) of event time is dropped",
                super::join::show_nanos(ttl)
            ),
            None => "kept for ever (state grows with the number of keys; SET 'state.ttl' bounds it)".into(),
        };
        let multiset = if self.spec.retracting
            && self
                .spec
                .aggregates
                .aggregates()
                .iter()
                .any(|(a, _)| !retracts_exactly(a))
        {
            "; aggregates that cannot retract keep their values per group"
        } else {
            ""
        };
        let every = match self.spec.emit_every {
            Some(every) => format!("; emits at most every {every:?} (sluice.emit.interval)"),
            None => String::new(),
        };
        let per = match self.spec.windows {
            Some(_) => "window and key",
            None => "key",
        };
        Some(format!("groups per {per}: {bound}{multiset}{every}"))
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        // The groups changed since the last checkpoint, or all of them.
        let mut changed = std::mem::take(&mut self.changed);
        let live = self.state_rows();
        let written = changed.snapshot(into, live, |slots| self.groups_batch(slots));
        self.changed = changed;
        written?;
        into.put_values("times", vec![self.watermark, self.swept, self.batch as i64]);
        // Groups waiting for `sluice.emit.interval`, first touch first, by key.
        let waiting: Vec<Key> = self
            .waiting
            .iter()
            .filter_map(|&slot| self.groups[slot].as_ref().map(|g| g.key.clone()))
            .collect();
        into.put_batch("waiting_keys", super::group_changes::keys_batch(&waiting)?);
        // A windowed one's groups by window end (keys in row format).
        let (ends, keys): (Vec<i64>, Vec<&[u8]>) = self
            .ends
            .iter()
            .flat_map(|(end, keys)| keys.iter().map(move |k| (*end, k.as_bytes())))
            .unzip();
        let ends =
            crate::stream::checkpoint::int_columns(&["window_end"], ends.into_iter().map(|e| vec![e]))?;
        let keys: ArrayRef = Arc::new(arrow::array::BinaryArray::from(keys));
        into.put_batch(
            "window_ends",
            crate::stream::checkpoint::with_columns(ends, vec![vec![keys]])?,
        );
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        let [watermark, swept, batch] = from.values("times")? else {
            return exec_err!("the checkpoint's times of {} are malformed", self.name());
        };
        (self.watermark, self.swept, self.batch) = (*watermark, *swept, *batch as u64);
        self.clear_groups();
        // Out while the groups are rebuilt: what that drops and makes is
        // not a change since the checkpoint.
        let mut changed = GroupChanges::default();
        let restored = changed.restore(from)?;
        self.changed = GroupChanges::default();
        let waiting: Vec<usize> = match restored {
            // A checkpoint before incremental ones: one batch of groups, and
            // the waiting ones by their place in it.
            None => {
                self.add_groups(from.batch("groups")?)?;
                from.values("waiting")?.iter().map(|&p| p as usize).collect()
            }
            // The base, then each delta: its dropped groups out, its changed
            // ones in, in place of what was there.
            Some((base, deltas)) => {
                self.add_groups(base)?;
                for delta in deltas {
                    for key in delta.gone.iter().flatten() {
                        if let Some(&slot) = self.index.get(&Key::new(key)) {
                            self.drop_group(slot);
                        }
                    }
                    self.add_groups(delta.changed)?;
                }
                let keys = from.batch("waiting_keys")?;
                let Some(keys) = keys
                    .columns()
                    .first()
                    .and_then(|c| c.as_any().downcast_ref::<arrow::array::BinaryArray>())
                else {
                    return exec_err!("the checkpoint's waiting groups of {} are malformed", self.name());
                };
                keys.iter()
                    .flatten()
                    .map(|key| self.index.get(&Key::new(key)).copied().unwrap_or(usize::MAX))
                    .collect()
            }
        };
        self.changed = changed;
        self.is_waiting = vec![false; self.groups.len()];
        for &slot in &waiting {
            match self.is_waiting.get_mut(slot) {
                Some(w) => *w = true,
                None => return exec_err!("the checkpoint's waiting groups of {} are malformed", self.name()),
            }
        }
        self.waiting = waiting;
        self.emitted_at = None;
        let ends = from.batch("window_ends")?;
        self.ends.clear();
        if let Some(keys) = ends.columns().get(1) {
            let Some(keys) = keys.as_any().downcast_ref::<arrow::array::BinaryArray>() else {
                return exec_err!("the checkpoint's window keys of {} are malformed", self.name());
            };
            let values = crate::stream::checkpoint::int_rows(ends, 1)?;
            for (row, end) in values.iter().enumerate() {
                self.ends
                    .entry(end[0])
                    .or_default()
                    .push(Key::new(keys.value(row)));
            }
        }
        Ok(())
    }

    fn open(&mut self, task: Arc<TaskContext>) -> futures::future::BoxFuture<'_, Result<()>> {
        let bytes = self.state_bytes();
        self.memory.opened(&task, bytes)
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        self.take(input, out)?;
        self.reserve()
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        let before = self.watermark;
        self.watermark = self.watermark.max(watermark);
        if self.watermark > before {
            self.close_windows(self.watermark, before, out)?;
        }
        // A watermark comes after each source batch (and, with an emit
        // interval, on the driver's clock while sources are quiet), so
        // waiting changes go out once their interval has passed.
        self.flush(watermark == END_OF_INPUT, out)?;
        if watermark == END_OF_INPUT {
            self.emit_empty_group(out)?;
        }
        self.expire();
        out.push(Event::Watermark(watermark));
        self.reserve()
    }

    fn on_end(&mut self, out: &mut Vec<Event>) -> Result<()> {
        self.flush(true, out)?;
        self.emit_empty_group(out)?;
        out.push(Event::End);
        Ok(())
    }
}

/// Consecutive rows (of an ordered selection) of one group, all additions or
/// all retractions.
/// Checkpoints: the groups as one batch (a row a group) and back.
impl UpdatingAggregateOperator {
    /// The groups of `slots` (every group if `None`; empty slots are
    /// skipped), in slot order. Columns: the key columns, then `rows` and
    /// `touched`, then per aggregate whether it was shown and the value
    /// shown, then each aggregate's accumulator state columns.
    fn groups_batch(&mut self, slots: Option<&[usize]>) -> Result<arrow::array::RecordBatch> {
        let aggregates = self.spec.aggregates.aggregates().len();
        let picked = slots.map(|slots| {
            let mut picked = vec![false; self.groups.len()];
            for &slot in slots {
                if let Some(p) = picked.get_mut(slot) {
                    *p = true;
                }
            }
            picked
        });
        let groups: Vec<&mut Group> = self
            .groups
            .iter_mut()
            .enumerate()
            .filter(|(slot, _)| picked.as_ref().is_none_or(|p| p[*slot]))
            .filter_map(|(_, group)| group.as_mut())
            .collect();
        let mut columns: Vec<ArrayRef> = match &self.converter {
            None => vec![],
            Some(converter) => {
                let parser = converter.parser();
                converter.convert_rows(groups.iter().map(|g| parser.parse(g.key.as_bytes())))?
            }
        };
        columns.push(Arc::new(arrow::array::Int64Array::from_iter_values(
            groups.iter().map(|g| g.rows),
        )));
        columns.push(Arc::new(arrow::array::Int64Array::from_iter_values(
            groups.iter().map(|g| g.touched),
        )));
        columns.push(Arc::new(BooleanArray::from_iter(
            groups.iter().map(|g| Some(g.shown.is_some())),
        )));
        let shown: Vec<Option<Loc>> = groups.iter().map(|g| g.shown).collect();
        columns.extend(self.shown.gather_or_null(&shown)?);
        // Partial states kept as rows are read as they are; a row
        // accumulator's are its `state`.
        let locs = groups
            .iter()
            .map(|g| g.state)
            .collect::<Option<Vec<Loc>>>()
            .filter(|_| !self.states.types.is_empty())
            .unwrap_or_default();
        if !self.states.types.is_empty() && locs.len() != groups.len() {
            return internal_err!(
                "a group of {} has no partial state",
                self.spec.aggregates.names().join(", ")
            );
        }
        let mut states: Vec<Vec<Vec<ScalarValue>>> = vec![Vec::new(); aggregates];
        for group in groups {
            for (a, kept) in self.kept.iter().enumerate() {
                let Kept::Rows(i) = kept else { continue };
                let accumulator = &mut group.accumulators[*i];
                let state = accumulator.state()?;
                // `state` may leave an accumulator drained: rebuild it from
                // what it gave.
                let arrays = state.iter().map(|v| v.to_array()).collect::<Result<Vec<_>>>()?;
                let mut rebuilt =
                    new_accumulator(&self.spec.aggregates.aggregates()[a].0, self.spec.retracting)?;
                rebuilt.merge_batch(&arrays)?;
                *accumulator = rebuilt;
                if states[a].is_empty() {
                    states[a] = vec![Vec::new(); state.len()];
                }
                for (field, value) in states[a].iter_mut().zip(state) {
                    field.push(value);
                }
            }
        }
        let mut widths = Vec::with_capacity(aggregates);
        for (kept, fields) in self.kept.iter().zip(states) {
            match kept {
                Kept::Groups(range) => {
                    widths.push(range.len());
                    columns.extend(self.states.gather(&locs, range.clone())?);
                }
                Kept::Rows(_) => {
                    widths.push(fields.len());
                    for values in fields {
                        columns.push(uniform_array(values)?);
                    }
                }
            }
        }
        let fields: Vec<arrow::datatypes::Field> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| arrow::datatypes::Field::new(format!("c{i}"), c.data_type().clone(), true))
            .collect();
        // Each aggregate's number of state columns, as the schema's metadata.
        let widths = widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(",");
        let options = arrow::array::RecordBatchOptions::new()
            .with_row_count(Some(columns.first().map_or(0, |c| c.len())));
        let schema =
            arrow::datatypes::Schema::new(fields).with_metadata([("widths".to_string(), widths)].into());
        Ok(arrow::array::RecordBatch::try_new_with_options(
            Arc::new(schema),
            columns,
            &options,
        )?)
    }

    /// No groups.
    fn clear_groups(&mut self) {
        self.groups.clear();
        self.index.clear();
        self.free.clear();
        self.stamps.clear();
        self.states.clear();
        self.shown.clear();
    }

    /// Take in the groups of `batch` (as [`Self::groups_batch`] wrote them),
    /// each in place of a group of its key if there is one.
    fn add_groups(&mut self, batch: &arrow::array::RecordBatch) -> Result<()> {
        let name = self.name();
        let malformed =
            || datafusion::common::exec_datafusion_err!("the checkpoint's groups of {name} are malformed");
        let keys = self.spec.aggregates.key_types().len();
        let aggregates = self.spec.aggregates.aggregates().len();
        let widths: Vec<usize> = match batch.schema().metadata().get("widths") {
            Some(w) if !w.is_empty() => w
                .split(',')
                .map(|n| n.parse().map_err(|_| malformed()))
                .collect::<Result<_>>()?,
            _ => vec![],
        };
        let columns = batch.columns();
        let int = |i: usize| {
            columns
                .get(i)
                .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>())
                .ok_or_else(malformed)
        };
        let (rows, touched) = (int(keys)?, int(keys + 1)?);
        let has_shown = columns
            .get(keys + 2)
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
            .ok_or_else(malformed)?;
        let shown = columns
            .get(keys + 3..keys + 3 + aggregates)
            .ok_or_else(malformed)?;
        let key_rows = match &self.converter {
            Some(converter) => Some(converter.convert_columns(&columns[..keys])?),
            None => None,
        };
        // Each aggregate's state columns; those kept as rows become one chunk.
        let mut state_columns = Vec::with_capacity(aggregates);
        let mut kept_states = Vec::new();
        let mut at = keys + 3 + aggregates;
        for (a, kept) in self.kept.iter().enumerate() {
            let width = *widths.get(a).ok_or_else(malformed)?;
            let state = columns.get(at..at + width).ok_or_else(malformed)?;
            if let Kept::Groups(range) = kept {
                if range.len() != width {
                    return Err(malformed());
                }
                kept_states.extend(state.iter().cloned());
            }
            state_columns.push(state);
            at += width;
        }
        let states = match self.states.types.is_empty() || batch.num_rows() == 0 {
            true => None,
            false => Some(self.states.push(kept_states, batch.num_rows())?),
        };
        let shown_chunk = match batch.num_rows() {
            0 => None,
            _ => Some(self.shown.push(shown.to_vec(), batch.num_rows())?),
        };
        for row in 0..batch.num_rows() {
            let mut accumulators = self.new_accumulators()?;
            for (kept, state) in self.kept.iter().zip(&state_columns) {
                if let Kept::Rows(i) = kept {
                    let state: Vec<ArrayRef> = state.iter().map(|c| c.slice(row, 1)).collect();
                    accumulators[*i].merge_batch(&state)?;
                }
            }
            let key = match &key_rows {
                Some(k) => Key::new(k.row(row).as_ref()),
                None => Key::default(),
            };
            let shown = shown_chunk
                .filter(|_| has_shown.value(row))
                .map(|chunk| Loc { chunk, row });
            if let Some(&slot) = self.index.get(&key) {
                self.drop_group(slot);
            }
            self.index.insert(key.clone(), self.groups.len());
            self.groups.push(Some(Group {
                key,
                accumulators,
                state: states.map(|chunk| Loc { chunk, row }),
                rows: rows.value(row),
                shown,
                touched: touched.value(row),
            }));
        }
        // Rows of the chunks no group shows are not in use.
        if let Some(chunk) = shown_chunk {
            for row in 0..batch.num_rows() {
                if !has_shown.value(row) {
                    self.shown.release(Loc { chunk, row });
                }
            }
        }
        Ok(())
    }
}

/// Values of one column across groups as an array: a NULL where a group has
/// none (`ScalarValue::Null`) takes the type of the others.
fn uniform_array(values: Vec<ScalarValue>) -> Result<ArrayRef> {
    let Some(data_type) = values
        .iter()
        .map(ScalarValue::data_type)
        .find(|t| *t != arrow::datatypes::DataType::Null)
    else {
        return Ok(Arc::new(arrow::array::NullArray::new(values.len())));
    };
    let typed = values
        .into_iter()
        .map(|v| match v {
            ScalarValue::Null => ScalarValue::try_new_null(&data_type),
            v => Ok(v),
        })
        .collect::<Result<Vec<_>>>()?;
    ScalarValue::iter_to_array(typed)
}

struct Run {
    start: usize,
    len: usize,
    slot: usize,
    adds: bool,
}

/// The runs of `rows` (input rows, grouped by slot then kind).
fn runs(rows: &[u32], slots: &[usize], adds: &[bool]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (at, &r) in rows.iter().enumerate() {
        let (slot, add) = (slots[r as usize], adds[r as usize]);
        match runs.last_mut() {
            Some(run) if run.slot == slot && run.adds == add => run.len += 1,
            _ => runs.push(Run {
                start: at,
                len: 1,
                slot,
                adds: add,
            }),
        }
    }
    runs
}

/// Output rows being gathered: per row, the place of its key (in the keys
/// the caller holds), its values (a source and a row of it) and its change.
#[derive(Default)]
struct Picks {
    keys: Vec<usize>,
    values: Vec<(usize, usize)>,
    changes: Vec<Change>,
}

impl Picks {
    fn push(&mut self, key: usize, values: (usize, usize), change: Change) {
        self.keys.push(key);
        self.values.push(values);
        self.changes.push(change);
    }
}

/// Where a group's row is in [`Rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    chunk: usize,
    row: usize,
}

/// Rows of arrow arrays (one column per type) kept in chunks as they are
/// written: a batch writes the rows of the groups it touched as a new chunk,
/// and those groups' older rows are released. A chunk goes once none of its
/// rows is in use, and when most rows held are no longer in use, [`compact`]
/// copies the ones in use into one chunk; so each row in use costs its
/// columns' bytes, about twice at worst, rather than a `ScalarValue` per
/// value.
struct Rows {
    types: Vec<DataType>,
    chunks: Vec<Option<Chunk>>,
    /// Chunk numbers free for reuse.
    free: Vec<usize>,
    /// Rows held in chunks, and those in use.
    held: usize,
    used: usize,
    bytes: usize,
}

struct Chunk {
    columns: Vec<ArrayRef>,
    len: usize,
    used: usize,
    bytes: usize,
}

impl Rows {
    fn new(types: Vec<DataType>) -> Self {
        Self {
            types,
            chunks: Vec::new(),
            free: Vec::new(),
            held: 0,
            used: 0,
            bytes: 0,
        }
    }

    /// Keep `columns` (of `types`, cast where spelt otherwise) of `len`
    /// rows (there may be no column) as a new chunk, every row in use; its
    /// number.
    fn push(&mut self, columns: Vec<ArrayRef>, len: usize) -> Result<usize> {
        if columns.len() != self.types.len() || columns.iter().any(|c| c.len() != len) {
            return internal_err!(
                "rows of {} columns given {} columns",
                self.types.len(),
                columns.len()
            );
        }
        let columns = columns
            .into_iter()
            .zip(&self.types)
            .map(|(c, t)| match c.data_type() == t {
                true => Ok(c),
                false => Ok(arrow::compute::cast(&c, t)?),
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = columns.iter().map(|c| c.get_array_memory_size()).sum();
        let chunk = Chunk {
            columns,
            len,
            used: len,
            bytes,
        };
        (self.held, self.used, self.bytes) = (self.held + len, self.used + len, self.bytes + bytes);
        Ok(match self.free.pop() {
            Some(at) => {
                self.chunks[at] = Some(chunk);
                at
            }
            None => {
                self.chunks.push(Some(chunk));
                self.chunks.len() - 1
            }
        })
    }

    /// The row at `loc` is no longer in use.
    fn release(&mut self, loc: Loc) {
        let Some(entry) = self.chunks.get_mut(loc.chunk) else {
            return;
        };
        let Some(chunk) = entry else { return };
        chunk.used -= 1;
        self.used -= 1;
        if chunk.used == 0 {
            self.held -= chunk.len;
            self.bytes -= chunk.bytes;
            *entry = None;
            self.free.push(loc.chunk);
        }
    }

    /// Columns `columns` of the rows at `locs`, in that order.
    fn gather(&self, locs: &[Loc], columns: std::ops::Range<usize>) -> Result<Vec<ArrayRef>> {
        if locs.is_empty() {
            return Ok(self.types[columns]
                .iter()
                .map(arrow::array::new_empty_array)
                .collect());
        }
        // The chunks read, numbered in the order first read.
        let mut source = vec![usize::MAX; self.chunks.len()];
        let mut read = Vec::new();
        let mut indices = Vec::with_capacity(locs.len());
        for loc in locs {
            let Some(Some(chunk)) = self.chunks.get(loc.chunk) else {
                return internal_err!("a group's row is in a chunk no longer held");
            };
            if source[loc.chunk] == usize::MAX {
                source[loc.chunk] = read.len();
                read.push(chunk);
            }
            indices.push((source[loc.chunk], loc.row));
        }
        columns
            .map(|c| {
                let arrays: Vec<&dyn Array> = read.iter().map(|chunk| chunk.columns[c].as_ref()).collect();
                Ok(interleave(&arrays, &indices)?)
            })
            .collect()
    }

    /// The rows at `locs` as columns, a NULL row where there is none.
    fn gather_or_null(&self, locs: &[Option<Loc>]) -> Result<Vec<ArrayRef>> {
        let present: Vec<Loc> = locs.iter().flatten().copied().collect();
        let columns = self.gather(&present, 0..self.types.len())?;
        if present.len() == locs.len() {
            return Ok(columns);
        }
        let mut next = 0u32;
        let rows: UInt32Array = locs
            .iter()
            .map(|loc| {
                loc.map(|_| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        columns
            .iter()
            .map(|c| Ok(take(c.as_ref(), &rows, None)?))
            .collect()
    }

    /// Bytes held by its chunks.
    fn size(&self) -> usize {
        self.bytes
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.free.clear();
        (self.held, self.used, self.bytes) = (0, 0, 0);
    }
}

/// When more than half the rows `rows` holds are not in use (and there are
/// some), copy the ones in use, those the groups point at through `loc`,
/// into one chunk.
fn compact(
    rows: &mut Rows,
    groups: &mut [Option<Group>],
    loc: impl Fn(&mut Group) -> &mut Option<Loc>,
) -> Result<()> {
    if rows.held <= 2 * rows.used + 8192 {
        return Ok(());
    }
    let locs: Vec<Loc> = groups.iter_mut().flatten().filter_map(|g| *loc(g)).collect();
    let columns = rows.gather(&locs, 0..rows.types.len())?;
    rows.clear();
    let chunk = rows.push(columns, locs.len())?;
    let mut row = 0;
    for group in groups.iter_mut().flatten() {
        if let Some(at) = loc(group) {
            *at = Loc { chunk, row };
            row += 1;
        }
    }
    Ok(())
}

/// Whether a row of one set of value columns equals a row of another,
/// column by column (arrow's comparators; `ScalarValue`s for a type they do
/// not order).
struct Same {
    columns: Vec<Compare>,
}

enum Compare {
    Arrow(arrow::array::DynComparator),
    Scalars(ArrayRef, ArrayRef),
}

impl Same {
    fn new(old: &[ArrayRef], new: &[ArrayRef]) -> Result<Self> {
        let columns = old
            .iter()
            .zip(new)
            .map(
                |(o, n)| match arrow::array::make_comparator(o.as_ref(), n.as_ref(), Default::default()) {
                    Ok(compare) => Compare::Arrow(compare),
                    Err(_) => Compare::Scalars(Arc::clone(o), Arc::clone(n)),
                },
            )
            .collect();
        Ok(Self { columns })
    }

    /// Whether row `o` of the old columns equals row `n` of the new ones.
    fn rows(&self, o: usize, n: usize) -> Result<bool> {
        for column in &self.columns {
            let same = match column {
                Compare::Arrow(compare) => compare(o, n).is_eq(),
                Compare::Scalars(old, new) => {
                    ScalarValue::try_from_array(old, o)? == ScalarValue::try_from_array(new, n)?
                }
            };
            if !same {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn passes_filter(filter: &dyn Array, row: usize) -> bool {
    filter
        .as_any()
        .downcast_ref::<BooleanArray>()
        .is_some_and(|f| f.is_valid(row) && f.value(row))
}

/// Whether `aggregate`'s sliding accumulator takes rows back exactly, in any
/// order. (`min`/`max`'s sliding accumulators assume rows leave in the order
/// they came, as a window frame's do; a changelog's do not.)
pub fn retracts_exactly(aggregate: &AggregateFunctionExpr) -> bool {
    !aggregate.is_distinct() && matches!(aggregate.fun().name(), "sum" | "count" | "avg" | "mean")
}

/// An accumulator for `aggregate`; with `retracting`, one that can take rows
/// back.
fn new_accumulator(aggregate: &Arc<AggregateFunctionExpr>, retracting: bool) -> Result<Box<dyn Accumulator>> {
    if !retracting {
        return aggregate.create_accumulator();
    }
    if retracts_exactly(aggregate) {
        let sliding = aggregate.create_sliding_accumulator()?;
        if sliding.supports_retract_batch() {
            return Ok(sliding);
        }
    }
    Ok(Box::new(Recount::new(Arc::clone(aggregate))))
}

/// An aggregate that cannot take a value back, made to: it keeps the
/// multiset of its argument values, and is evaluated by aggregating them
/// afresh (so reading a group costs its distinct values).
#[derive(Debug)]
struct Recount {
    aggregate: Arc<AggregateFunctionExpr>,
    /// The argument tuples' row format, from the first values' types.
    converter: Option<RowConverter>,
    /// Each distinct argument tuple (row format) and how many times it is in.
    values: datafusion::common::HashMap<Key, i64>,
}

impl Recount {
    fn new(aggregate: Arc<AggregateFunctionExpr>) -> Self {
        Self {
            converter: None,
            aggregate,
            values: Default::default(),
        }
    }

    fn count(&mut self, values: &[ArrayRef], by: i64) -> Result<()> {
        let converter = match &mut self.converter {
            Some(converter) => converter,
            None => self.converter.insert(RowConverter::new(
                values
                    .iter()
                    .map(|v| SortField::new(v.data_type().clone()))
                    .collect(),
            )?),
        };
        let rows = converter.convert_columns(values)?;
        for row in rows.iter() {
            let key = Key::new(row.as_ref());
            let count = self.values.entry(key.clone()).or_insert(0);
            *count += by;
            if *count < 0 {
                return exec_err!(
                    "{} took back a value it never had (a -U/-D for a row never inserted)",
                    self.aggregate.name()
                );
            }
            if *count == 0 {
                self.values.remove(&key);
            }
        }
        Ok(())
    }
}

impl Accumulator for Recount {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.count(values, 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.count(values, -1)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut fresh = self.aggregate.create_accumulator()?;
        if let Some(converter) = self.converter.as_ref().filter(|_| !self.values.is_empty()) {
            let parser = converter.parser();
            let (keys, repeats): (Vec<&Key>, Vec<i64>) = self.values.iter().map(|(k, n)| (k, *n)).unzip();
            let distinct = converter.convert_rows(keys.iter().map(|k| parser.parse(k.as_bytes())))?;
            let indices: UInt32Array = repeats
                .iter()
                .enumerate()
                .flat_map(|(i, &n)| std::iter::repeat_n(i as u32, n as usize))
                .collect();
            let all = distinct
                .iter()
                .map(|c| Ok(take(c.as_ref(), &indices, None)?))
                .collect::<Result<Vec<_>>>()?;
            fresh.update_batch(&all)?;
        }
        fresh.evaluate()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.values.capacity() * (std::mem::size_of::<Key>() + std::mem::size_of::<i64>())
    }

    /// Its multiset, for a checkpoint: per argument column the list of the
    /// distinct values, then the list of their counts (NULLs before it saw a
    /// value, when the argument types are not known yet).
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let Some(converter) = &self.converter else {
            return Ok(vec![ScalarValue::Null; self.aggregate.expressions().len() + 1]);
        };
        let parser = converter.parser();
        let (keys, counts): (Vec<&Key>, Vec<i64>) = self.values.iter().map(|(k, n)| (k, *n)).unzip();
        let distinct = converter.convert_rows(keys.iter().map(|k| parser.parse(k.as_bytes())))?;
        let counts: ArrayRef = Arc::new(arrow::array::Int64Array::from(counts));
        Ok(distinct
            .into_iter()
            .chain([counts])
            .map(|column| {
                datafusion::common::utils::SingleRowListArrayBuilder::new(column).build_list_scalar()
            })
            .collect())
    }

    /// Take back a multiset [`Recount::state`] gave (a checkpoint's).
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some((counts, columns)) = states.split_last() else {
            return Ok(());
        };
        let Some(counts) = counts.as_any().downcast_ref::<arrow::array::ListArray>() else {
            return Ok(()); // NULLs: it had seen no value
        };
        for row in 0..counts.len() {
            if counts.is_null(row) {
                continue;
            }
            let repeats = counts.value(row);
            let Some(repeats) = repeats.as_any().downcast_ref::<arrow::array::Int64Array>() else {
                return internal_err!("a checkpoint's multiset counts are not integers");
            };
            let indices: UInt32Array = repeats
                .values()
                .iter()
                .enumerate()
                .flat_map(|(i, &n)| std::iter::repeat_n(i as u32, n.max(0) as usize))
                .collect();
            let values = columns
                .iter()
                .map(|c| match c.as_any().downcast_ref::<arrow::array::ListArray>() {
                    Some(list) => Ok(take(list.value(row).as_ref(), &indices, None)?),
                    None => internal_err!("a checkpoint's multiset values are not lists"),
                })
                .collect::<Result<Vec<_>>>()?;
            self.count(&values, 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::functions_aggregate::min_max::max_udaf;
    use datafusion::functions_aggregate::sum::sum_udaf;
    use datafusion::logical_expr::AggregateUDF;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::{col, lit};

    use super::*;
    use crate::stream::operators::testing::{batch, check_memory_limit, metrics};

    fn input() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]))
    }

    fn aggregate(
        input: &SchemaRef,
        udf: Arc<AggregateUDF>,
        arg: &str,
        name: &str,
    ) -> crate::stream::groups::Aggregate {
        let argument = match arg {
            "*" => lit(1i64),
            column => col(column, input).expect("a column"),
        };
        let aggregate = AggregateExprBuilder::new(udf, vec![argument])
            .schema(Arc::clone(input))
            .alias(name)
            .build()
            .expect("an aggregate");
        (Arc::new(aggregate), None)
    }

    /// `SELECT k, sum(v), count(*), max(v) FROM input GROUP BY k` (keyed), or
    /// without `k` (keyless).
    fn operator(
        keyed: bool,
        retracting: bool,
    ) -> (UpdatingAggregateOperator, Arc<crate::stream::StreamMetrics>) {
        let input = input();
        let mut fields = vec![
            Field::new("total", DataType::Int64, true),
            Field::new("n", DataType::Int64, false),
            Field::new("top", DataType::Int64, true),
        ];
        let (keys, key_fields, group_columns) = if keyed {
            fields.insert(0, Field::new("k", DataType::Int64, true));
            (
                vec![col("k", &input).expect("k")],
                vec![Arc::new(Field::new("k", DataType::Int64, true))],
                vec![GroupColumn::Key(0)],
            )
        } else {
            (vec![], vec![], vec![])
        };
        let aggregates = Aggregates::try_new(
            keys,
            key_fields,
            vec![
                aggregate(&input, sum_udaf(), "v", "total"),
                aggregate(&input, count_udaf(), "*", "n"),
                aggregate(&input, max_udaf(), "v", "top"),
            ],
        )
        .expect("aggregates");
        let spec = UpdatingAggregateSpec {
            aggregates,
            group_columns,
            schema: Arc::new(Schema::new(fields)),
            retracting,
            ttl: None,
            emit_every: None,
            windows: None,
        };
        let metrics = metrics();
        let operator = UpdatingAggregateOperator::try_new(spec)
            .expect("plans")
            .with_metrics(Arc::clone(&metrics));
        (operator, metrics)
    }

    /// Feed `rows` (each `op (k, v)`), one batch; the changes it emits.
    fn feed(operator: &mut UpdatingAggregateOperator, rows: &[(&str, &str)]) -> Vec<String> {
        let tuples: Vec<&str> = rows.iter().map(|(_, t)| *t).collect();
        let mut input = StreamBatch::new(
            batch(&self::input(), &tuples.join(" ")),
            RowWatermarks::Constant(0),
        );
        if rows.iter().any(|(op, _)| *op != "+I") {
            input.changes = Some(Changes::from_changes(
                rows.iter().map(|(op, _)| Change::parse(op).expect("a change")),
            ));
        }
        let mut out = Vec::new();
        operator.process(input, &mut out).expect("processes");
        render(&out)
    }

    fn render(out: &[Event]) -> Vec<String> {
        crate::stream::operators::testing::changes_text(out)
    }

    fn harness(keyed: bool) -> crate::stream::operators::testing::Harness {
        let (operator, metrics) = operator(keyed, true);
        crate::stream::operators::testing::Harness::single(Box::new(operator), input(), &metrics)
    }

    const UPDATES: &str = "
        changes +I (1, 10) +I (2, 5) +I (1, 1)
        wm 5
        changes -D (1, 10) +I (2, 7) +I (null, 3)
        changes -D (2, 5) -D (2, 7)
        changes +I (2, 4) -D (1, 1)
        wm 9
        changes +I (1, 8)
        wm +inf
        end
        ";

    #[test]
    fn a_restored_updating_aggregate_carries_on_where_it_stopped() {
        crate::stream::operators::testing::check_restores(|| harness(true), UPDATES);
        crate::stream::operators::testing::check_restores(|| harness(false), UPDATES);
    }

    /// Ten keys, then changes to a few of them at a time: deletions, a key
    /// made again, a new key.
    const FEW_CHANGES: &str = "
        changes +I (1, 1) +I (2, 2) +I (3, 3) +I (4, 4) +I (5, 5) +I (6, 6) +I (7, 7) +I (8, 8) +I (9, 9) +I (10, 10)
        changes +I (3, 1)
        changes -D (4, 4)
        changes +I (4, 9)
        changes +I (11, 1) -D (3, 1)
        changes -D (2, 2) +I (2, 5)
        wm +inf
        end
        ";

    #[test]
    fn a_restored_chain_of_incremental_checkpoints_carries_on_where_it_stopped() {
        crate::stream::operators::testing::check_restores(|| harness(true), FEW_CHANGES);
    }

    #[test]
    fn a_checkpoint_after_a_few_changes_writes_those_groups_only() {
        let (mut operator, _) = operator(true, true);
        let ten: Vec<(&str, String)> = (1..=10).map(|k| ("+I", format!("({k}, {k})"))).collect();
        let ten: Vec<(&str, &str)> = ten.iter().map(|(op, t)| (*op, t.as_str())).collect();
        feed(&mut operator, &ten);
        // Each checkpoint as the checkpointer takes it: located, through its
        // bytes; the pieces it wrote, by rows.
        let mut at = std::collections::BTreeMap::new();
        let mut held = Vec::new();
        let mut checkpoint = |operator: &mut UpdatingAggregateOperator| {
            let mut state = StateSnapshot::default();
            operator.snapshot(&mut state).expect("a snapshot");
            let id = held.len() as u64;
            at = state.locate(id, &at).expect("located");
            let state = StateSnapshot::decode(&state.encode().expect("bytes")).expect("decoded");
            let written: Vec<(String, usize)> = at
                .iter()
                .filter(|(_, held)| **held == id)
                .map(|(name, _)| (name.clone(), state.piece(name).expect("rows").num_rows()))
                .collect();
            held.push(state.clone());
            let mut state = state;
            state
                .resolve(|id, name| held[id as usize].piece(name).cloned())
                .expect("resolved");
            (written, state)
        };
        let (written, _) = checkpoint(&mut operator);
        assert_eq!(written, vec![("groups".to_string(), 10)]);
        feed(&mut operator, &[("+I", "(3, 1)")]);
        let (written, _) = checkpoint(&mut operator);
        assert_eq!(
            written,
            vec![
                ("gone+000000000000".to_string(), 0),
                ("groups+000000000000".to_string(), 1)
            ]
        );
        feed(&mut operator, &[("-D", "(3, 1)"), ("-D", "(3, 3)")]);
        let (written, state) = checkpoint(&mut operator);
        assert_eq!(
            written,
            vec![
                ("gone+000000000001".to_string(), 1),
                ("groups+000000000001".to_string(), 0)
            ]
        );
        // Restored from the base and its two deltas: key 3 is gone, the others
        // carry on.
        let (mut restored, _) = self::operator(true, true);
        restored.restore(&state).expect("restored");
        assert_eq!(restored.state_rows(), 9);
        assert_eq!(feed(&mut restored, &[("+I", "(3, 4)")]), ["+I (3, 4, 1, 4)"]);
        assert_eq!(
            feed(&mut restored, &[("+I", "(5, 1)")]),
            ["-U (5, 5, 1, 5)", "+U (5, 6, 2, 5)"]
        );
    }

    #[test]
    fn new_keys_insert_changed_keys_update_and_unchanged_keys_say_nothing() {
        let (mut operator, _) = operator(true, false);
        assert_eq!(
            feed(
                &mut operator,
                &[("+I", "(1, 10)"), ("+I", "(2, 5)"), ("+I", "(1, 1)")]
            ),
            ["+I (1, 11, 2, 10)", "+I (2, 5, 1, 5)"]
        );
        assert_eq!(
            feed(&mut operator, &[("+I", "(2, 7)"), ("+I", "(null, 3)")]),
            ["-U (2, 5, 1, 5)", "+U (2, 12, 2, 7)", "+I (null, 3, 1, 3)"]
        );
        // sum(NULL) adds nothing but count(*) counts the row.
        assert_eq!(
            feed(&mut operator, &[("+I", "(1, null)")]),
            ["-U (1, 11, 2, 10)", "+U (1, 11, 3, 10)"]
        );
    }

    #[test]
    fn state_bytes_grow_with_the_groups() {
        let (mut operator, _) = operator(true, false);
        assert_eq!(operator.state_bytes(), 0);
        feed(&mut operator, &[("+I", "(1, 10)")]);
        let one = operator.state_bytes();
        assert!(one > 0, "a group has bytes");
        feed(&mut operator, &[("+I", "(2, 5)"), ("+I", "(3, 5)")]);
        assert!(operator.state_bytes() > one, "more groups, more bytes");
        // Many groups: their states and shown values are rows of arrays
        // (no ScalarValue, no accumulator per group), a few hundred bytes each.
        let rows: Vec<(&str, String)> = (10..2010).map(|k| ("+I", format!("({k}, {k})"))).collect();
        let rows: Vec<(&str, &str)> = rows.iter().map(|(op, t)| (*op, t.as_str())).collect();
        feed(&mut operator, &rows);
        let per_group = operator.state_bytes() / operator.state_rows();
        assert!(per_group < 300, "{per_group} bytes per group");
    }

    #[test]
    fn rows_are_gathered_released_and_compacted() {
        let mut rows = Rows::new(vec![DataType::Int64]);
        let column =
            |values: &[i64]| -> ArrayRef { Arc::new(arrow::array::Int64Array::from(values.to_vec())) };
        let first = rows.push(vec![column(&[1, 2, 3])], 3).expect("pushes");
        let second = rows.push(vec![column(&[4, 5])], 2).expect("pushes");
        let at = |chunk, row| Loc { chunk, row };
        let gathered = rows
            .gather(&[at(second, 1), at(first, 0), at(second, 0)], 0..1)
            .expect("gathers");
        assert_eq!(
            crate::stream::operators::testing::rows_text(&gathered, 3),
            ["(5)", "(1)", "(4)"]
        );
        let nulls = rows.gather_or_null(&[None, Some(at(first, 2))]).expect("gathers");
        assert_eq!(
            crate::stream::operators::testing::rows_text(&nulls, 2),
            ["(null)", "(3)"]
        );
        // A chunk goes with its last row in use.
        let bytes = rows.size();
        rows.release(at(second, 0));
        rows.release(at(second, 1));
        assert!(rows.size() < bytes);
        assert!(
            rows.gather(&[at(second, 0)], 0..1).is_err(),
            "a released chunk is not read"
        );
        assert_eq!((rows.held, rows.used), (3, 3));
    }

    #[test]
    fn groups_read_after_their_rows_were_compacted_carry_on() {
        let (mut operator, _) = operator(true, false);
        let rows: Vec<(&str, String)> = (0..2000).map(|k| ("+I", format!("({k}, 1)"))).collect();
        let rows: Vec<(&str, &str)> = rows.iter().map(|(op, t)| (*op, t.as_str())).collect();
        for _ in 0..9 {
            feed(&mut operator, &rows);
        }
        // Nine batches of the same 2,000 groups: the rows no longer in use
        // were dropped on the way, and the groups read on as before.
        assert!(operator.states.held <= 2 * operator.states.used + 8192 + 2000);
        assert!(operator.shown.held <= 2 * operator.shown.used + 8192 + 2000);
        let out = feed(&mut operator, &[("+I", "(7, 5)")]);
        assert_eq!(out, ["-U (7, 9, 9, 1)", "+U (7, 14, 10, 5)"]);
    }

    #[test]
    fn only_flat_states_over_appended_rows_are_kept_as_rows_of_arrays() {
        let input = input();
        let distinct = AggregateExprBuilder::new(count_udaf(), vec![col("v", &input).expect("v")])
            .schema(Arc::clone(&input))
            .alias("d")
            .distinct()
            .build()
            .expect("an aggregate");
        let aggregates = Aggregates::try_new(
            vec![],
            vec![],
            vec![
                aggregate(&input, sum_udaf(), "v", "total"),
                (Arc::new(distinct), None),
                aggregate(&input, max_udaf(), "v", "top"),
            ],
        )
        .expect("aggregates");
        let (appended, types) = kept(&aggregates, false).expect("plans");
        assert_eq!(appended, [Kept::Groups(0..1), Kept::Rows(0), Kept::Groups(1..2)]);
        assert_eq!(types, [DataType::Int64, DataType::Int64]);
        let (retracting, types) = kept(&aggregates, true).expect("plans");
        assert_eq!(retracting, [Kept::Rows(0), Kept::Rows(1), Kept::Rows(2)]);
        assert!(types.is_empty());
    }

    #[test]
    fn a_filtered_aggregate_kept_as_partial_states_counts_only_the_rows_its_filter_passes() {
        // `sum(v) FILTER (WHERE v > 4)` and `count(*)` per k, over appended rows.
        let input = input();
        let filtered = (
            aggregate(&input, sum_udaf(), "v", "total").0,
            Some(
                datafusion::physical_expr::expressions::binary(
                    col("v", &input).expect("v"),
                    datafusion::logical_expr::Operator::Gt,
                    lit(4i64),
                    &input,
                )
                .expect("a filter"),
            ),
        );
        let aggregates = Aggregates::try_new(
            vec![col("k", &input).expect("k")],
            vec![Arc::new(Field::new("k", DataType::Int64, true))],
            vec![filtered, aggregate(&input, count_udaf(), "*", "n")],
        )
        .expect("aggregates");
        let spec = UpdatingAggregateSpec {
            aggregates,
            group_columns: vec![GroupColumn::Key(0)],
            schema: Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, true),
                Field::new("total", DataType::Int64, true),
                Field::new("n", DataType::Int64, false),
            ])),
            retracting: false,
            ttl: None,
            emit_every: None,
            windows: None,
        };
        let mut operator = UpdatingAggregateOperator::try_new(spec).expect("plans");
        assert!(operator.kept.iter().all(|k| matches!(k, Kept::Groups(_))));
        assert_eq!(
            feed(
                &mut operator,
                &[("+I", "(1, 3)"), ("+I", "(2, 9)"), ("+I", "(1, 5)")]
            ),
            ["+I (1, 5, 2)", "+I (2, 9, 1)"]
        );
        // A row the filter drops still counts; an unchanged group says nothing.
        assert_eq!(
            feed(&mut operator, &[("+I", "(1, 1)")]),
            ["-U (1, 5, 2)", "+U (1, 5, 3)"]
        );
        assert_eq!(feed(&mut operator, &[("+I", "(3, 1)")]), ["+I (3, null, 1)"]);
    }

    #[test]
    fn retractions_take_rows_back_max_included_and_an_emptied_key_is_deleted() {
        let (mut operator, metrics) = operator(true, true);
        feed(
            &mut operator,
            &[("+I", "(1, 10)"), ("+I", "(1, 4)"), ("+I", "(2, 1)")],
        );
        // max cannot retract: it recounts what is left (4), not a sliding max.
        assert_eq!(
            feed(&mut operator, &[("-D", "(1, 10)")]),
            ["-U (1, 14, 2, 10)", "+U (1, 4, 1, 4)"]
        );
        // An update's pair: the old row out, the new one in, one change out.
        assert_eq!(
            feed(&mut operator, &[("-U", "(2, 1)"), ("+U", "(2, 9)")]),
            ["-U (2, 1, 1, 1)", "+U (2, 9, 1, 9)"]
        );
        assert_eq!(feed(&mut operator, &[("-D", "(1, 4)")]), ["-D (1, 4, 1, 4)"]);
        // A retraction of a row never inserted is counted, not applied.
        assert!(feed(&mut operator, &[("-D", "(7, 1)")]).is_empty());
        assert_eq!(
            metrics
                .unmatched_retractions
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // The deleted key comes back as new.
        assert_eq!(feed(&mut operator, &[("+I", "(1, 2)")]), ["+I (1, 2, 1, 2)"]);
    }

    #[test]
    fn a_keyless_aggregate_has_one_row_even_over_no_input() {
        let (mut operator, _) = operator(false, true);
        let mut out = Vec::new();
        operator.on_watermark(END_OF_INPUT, &mut out).expect("ends");
        operator.on_end(&mut out).expect("ends");
        assert_eq!(render(&out), ["+I (null, 0, null)"]);

        let (mut operator, _) = operator_pair();
        feed(&mut operator, &[("+I", "(1, 3)")]);
        // Emptied, the keyless row updates to the empty aggregate, as batch's.
        assert_eq!(
            feed(&mut operator, &[("-D", "(1, 3)")]),
            ["-U (3, 1, 3)", "+U (null, 0, null)"]
        );
        let mut out = Vec::new();
        operator.on_end(&mut out).expect("ends");
        assert!(render(&out).is_empty(), "no second empty row");
    }

    fn operator_pair() -> (UpdatingAggregateOperator, Arc<crate::stream::StreamMetrics>) {
        operator(false, true)
    }

    /// `SELECT k, end, sum(v), count(*) ... GROUP BY k, end` over an updating
    /// input whose rows carry their window's end (seconds), closed by the
    /// watermark.
    fn windowed() -> (
        UpdatingAggregateOperator,
        SchemaRef,
        Arc<crate::stream::StreamMetrics>,
    ) {
        use arrow::datatypes::TimeUnit;
        let end = DataType::Timestamp(TimeUnit::Millisecond, None);
        let input: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
            Field::new("end", end.clone(), true),
        ]));
        let aggregates = Aggregates::try_new(
            vec![col("k", &input).expect("k"), col("end", &input).expect("end")],
            vec![
                Arc::new(Field::new("k", DataType::Int64, true)),
                Arc::new(Field::new("end", end.clone(), true)),
            ],
            vec![
                aggregate(&input, sum_udaf(), "v", "total"),
                aggregate(&input, count_udaf(), "*", "n"),
            ],
        )
        .expect("aggregates");
        let metrics = metrics();
        let spec = UpdatingAggregateSpec {
            aggregates,
            group_columns: vec![GroupColumn::Key(0), GroupColumn::Key(1)],
            schema: Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, true),
                Field::new("end", end, true),
                Field::new("total", DataType::Int64, true),
                Field::new("n", DataType::Int64, false),
            ])),
            retracting: true,
            ttl: None,
            emit_every: None,
            windows: Some(WindowClose {
                column: 2,
                to_end: 0,
                late: crate::stream::operators::testing::late(&metrics),
                emit_changes: false,
            }),
        };
        let operator = UpdatingAggregateOperator::try_new(spec)
            .expect("plans")
            .with_metrics(Arc::clone(&metrics));
        (operator, input, metrics)
    }

    #[test]
    fn a_restored_windowed_updating_aggregate_carries_on_where_it_stopped() {
        let make = || {
            let (operator, input, metrics) = windowed();
            crate::stream::operators::testing::Harness::single(Box::new(operator), input, &metrics)
        };
        crate::stream::operators::testing::check_restores(
            make,
            "
            changes +I (1, 5, 10) +I (1, 7, 10) +I (2, 1, 20)
            changes -D (1, 5, 10)
            wm 10
            changes +I (2, 4, 20) -D (1, 7, 10)
            late
            changes +I (3, 2, 30)
            wm 20
            changes -D (3, 2, 30)
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn a_window_over_an_updating_input_emits_its_rows_once_at_its_close_and_late_changes_are_counted() {
        let (mut operator, input, metrics) = windowed();
        let mut push = |rows: &str, changes: &[Change], watermark: Nanos| {
            let mut batch = StreamBatch::new(batch(&input, rows), RowWatermarks::Constant(watermark));
            batch.changes = Some(Changes::from_changes(changes.iter().copied()));
            let mut out = Vec::new();
            operator.process(batch, &mut out).expect("processes");
            operator.on_watermark(watermark, &mut out).expect("a watermark");
            out
        };
        let s = crate::stream::operators::testing::S;
        use Change::{Delete, Insert};
        // Nothing comes out while the windows are open, retractions included.
        assert!(
            render_rows(&push(
                "(1, 5, 10) (1, 7, 10) (2, 1, 20)",
                &[Insert, Insert, Insert],
                0
            ))
            .is_empty()
        );
        assert!(render_rows(&push("(1, 5, 10)", &[Delete], 0)).is_empty());
        // The watermark closes the window ending at 10: its one group, as an
        // appended row (no changes).
        let out = push("(2, 4, 20)", &[Insert], 10 * s);
        let rows: Vec<&StreamBatch> = out
            .iter()
            .filter_map(|e| match e {
                Event::Data(b) => Some(b),
                _ => None,
            })
            .collect();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].changes.is_none(), "appended rows");
        assert_eq!(
            crate::stream::operators::testing::rows_text(rows[0].batch.columns(), 1),
            ["(1, 10, 7, 1)"]
        );
        // A change to the closed window is late; the open one's group empties.
        assert!(
            render_rows(&push(
                "(1, 3, 10) (2, 1, 20) (2, 4, 20)",
                &[Insert, Delete, Delete],
                10 * s
            ))
            .is_empty()
        );
        assert_eq!(metrics.late_rows.load(std::sync::atomic::Ordering::Relaxed), 1);
        let mut out = Vec::new();
        operator.on_watermark(END_OF_INPUT, &mut out).expect("ends");
        operator.on_end(&mut out).expect("ends");
        assert!(render_rows(&out).is_empty(), "an emptied window emits nothing");
        assert_eq!(operator.state_rows(), 0, "closed windows are dropped");
    }

    fn render_rows(out: &[Event]) -> Vec<String> {
        out.iter()
            .filter_map(|e| match e {
                Event::Data(b) => Some(crate::stream::operators::testing::rows_text(
                    b.batch.columns(),
                    b.batch.num_rows(),
                )),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn with_an_emit_interval_a_key_changed_five_times_emits_one_update() {
        let (mut operator, _) = operator(true, true);
        operator.spec.emit_every = Some(std::time::Duration::from_secs(3_600));
        // The first changes go out at once; then the interval holds them.
        assert_eq!(feed(&mut operator, &[("+I", "(1, 10)")]), ["+I (1, 10, 1, 10)"]);
        for v in 1..=5 {
            assert!(feed(&mut operator, &[("+I", &format!("(1, {v})"))]).is_empty());
        }
        // A key inserted then deleted in between says nothing.
        assert!(feed(&mut operator, &[("+I", "(2, 1)")]).is_empty());
        assert!(feed(&mut operator, &[("-D", "(2, 1)")]).is_empty());
        let mut out = Vec::new();
        operator.on_watermark(7, &mut out).expect("a watermark");
        assert!(render(&out).is_empty(), "{out:?}");
        out.clear();
        operator.on_watermark(END_OF_INPUT, &mut out).expect("ends");
        operator.on_end(&mut out).expect("ends");
        assert_eq!(render(&out), ["-U (1, 10, 1, 10)", "+U (1, 25, 6, 10)"]);
        assert_eq!(operator.state_rows(), 1, "the emptied key is gone");
    }

    #[test]
    fn waiting_changes_go_out_on_a_watermark_once_the_interval_passed() {
        let (mut operator, _) = operator(true, false);
        operator.spec.emit_every = Some(std::time::Duration::from_millis(20));
        feed(&mut operator, &[("+I", "(1, 1)")]);
        assert!(feed(&mut operator, &[("+I", "(1, 2)")]).is_empty());
        std::thread::sleep(std::time::Duration::from_millis(30));
        let mut out = Vec::new();
        operator.on_watermark(0, &mut out).expect("a watermark");
        assert_eq!(render(&out), ["-U (1, 1, 1, 1)", "+U (1, 3, 2, 2)"]);
    }

    #[test]
    fn groups_beyond_the_memory_limit_are_an_error_naming_them() {
        let script = "changes +I (1, 10) +I (2, 5) +I (1, 1)";
        check_memory_limit(|| harness(true), script, "UpdatingAggregate", "groups: 2 groups");
    }
}

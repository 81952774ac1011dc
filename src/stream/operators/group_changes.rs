//! Which groups of an updating aggregate changed since its last snapshot,
//! so that a checkpoint writes only those: incremental checkpoints of a
//! state of many keys (a million counters), of which a checkpoint interval
//! touches a few.
//!
//! The groups are a chain of state pieces: a *base* of every group, then
//! one *delta* per checkpoint since (the groups it changed or made, and the
//! keys of those it dropped). An unchanged piece is not written again: the
//! checkpoint refers to the earlier one that holds it (manifest `reads_from`).
//! A restore reads the base and applies the deltas in order. The chain is
//! compacted (the base written whole again, the deltas dropped) once its
//! deltas hold more groups than the base, or there are [`MAX_DELTAS`] of
//! them, so a restore reads at most about twice the state and a long run
//! keeps only a few earlier checkpoints.

use std::sync::Arc;

use arrow::array::{Array, BinaryArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::exec_err;
use datafusion::error::Result;

use crate::stream::checkpoint::StateSnapshot;
use crate::stream::operators::join::Key;

/// The piece of every group, as of the last compaction.
const BASE: &str = "groups";

/// What comes before a delta's number: its changed groups...
const CHANGED: &str = "groups+";

/// ...and the keys of the groups it dropped.
const GONE: &str = "gone+";

/// Deltas after which the chain is compacted whatever their size.
pub const MAX_DELTAS: usize = 8;

/// The groups changed since the last snapshot, and the chain of pieces it
/// wrote.
#[derive(Debug, Default)]
pub struct GroupChanges {
    /// Whether the last snapshot (or the restored checkpoint) has a base
    /// that later ones can refer to. Until then nothing is tracked, so a
    /// query without checkpoints keeps no list.
    based: bool,
    /// Per group slot, whether it is in `changed`.
    dirty: Vec<bool>,
    /// Slots changed (or made) since the last snapshot, once each.
    changed: Vec<usize>,
    /// Keys (row format) of the groups dropped since the last snapshot.
    gone: Vec<Key>,
    /// Groups in the base.
    base_rows: usize,
    /// The deltas since the base: their numbers and how many groups each
    /// holds (changed and dropped).
    deltas: Vec<(u64, usize)>,
    /// The next delta's number.
    next: u64,
}

/// What a restore applies over the base: each delta's dropped keys, then
/// its changed groups, in order.
pub struct Delta<'a> {
    /// Keys (row format) of the groups it dropped.
    pub gone: &'a BinaryArray,
    /// The groups it changed or made, as the base holds them.
    pub changed: &'a RecordBatch,
}

impl GroupChanges {
    /// The group in `slot` changed (rows folded in, values shown, made).
    pub fn touch(&mut self, slots: &[usize]) {
        if !self.based {
            return;
        }
        for &slot in slots {
            if slot >= self.dirty.len() {
                self.dirty.resize(slot + 1, false);
            }
            if !self.dirty[slot] {
                self.dirty[slot] = true;
                self.changed.push(slot);
            }
        }
    }

    /// The group of `key` was dropped.
    pub fn dropped(&mut self, key: &Key) {
        if self.based {
            self.gone.push(key.clone());
        }
    }

    /// Write the groups into `into`: all of them as the base (`groups(None)`)
    /// or the changed ones as a delta (`groups(Some(slots))`, skipping empty
    /// slots), referring to the earlier pieces of the chain. `live`: the
    /// groups held.
    pub fn snapshot(
        &mut self,
        into: &mut StateSnapshot,
        live: usize,
        mut groups: impl FnMut(Option<&[usize]>) -> Result<RecordBatch>,
    ) -> Result<()> {
        let pending = self.changed.len() + self.gone.len();
        let chained: usize = self.deltas.iter().map(|(_, n)| n).sum();
        let whole = !self.based || self.deltas.len() >= MAX_DELTAS || chained + pending > self.base_rows;
        let changed = std::mem::take(&mut self.changed);
        let gone = std::mem::take(&mut self.gone);
        for &slot in &changed {
            self.dirty[slot] = false;
        }
        if whole {
            into.put_piece(BASE.into(), groups(None)?);
            self.base_rows = live;
            self.deltas.clear();
            // An empty base (a query that has not started: the check that
            // every operator can be checkpointed snapshots it, and that
            // snapshot is not written) is written again next time.
            self.based = live > 0;
            return Ok(());
        }
        into.keep_piece(BASE.into());
        for (n, _) in &self.deltas {
            into.keep_piece(format!("{CHANGED}{n:012}"));
            into.keep_piece(format!("{GONE}{n:012}"));
        }
        let n = self.next;
        self.next += 1;
        into.put_piece(format!("{CHANGED}{n:012}"), groups(Some(&changed))?);
        into.put_piece(format!("{GONE}{n:012}"), keys_batch(&gone)?);
        self.deltas.push((n, pending));
        Ok(())
    }

    /// The base and the deltas of a snapshot written by
    /// [`GroupChanges::snapshot`], in order, or `None` if it has none (a
    /// checkpoint of a format before pieces); from now on the next snapshot
    /// refers to them.
    pub fn restore<'a>(
        &mut self,
        from: &'a StateSnapshot,
    ) -> Result<Option<(&'a RecordBatch, Vec<Delta<'a>>)>> {
        *self = Self::default();
        if !from.has_pieces() {
            return Ok(None);
        }
        let base = from.piece(BASE)?;
        let mut deltas = Vec::new();
        // Piece names sort by number (zero-padded).
        for name in from.piece_names() {
            let Some(n) = name.strip_prefix(CHANGED) else {
                continue;
            };
            let Ok(number) = n.parse::<u64>() else {
                return exec_err!("the checkpoint's state piece '{name}' has no delta number");
            };
            let changed = from.piece(name)?;
            let gone = from.piece(&format!("{GONE}{n}"))?;
            let Some(gone) = gone
                .columns()
                .first()
                .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
            else {
                return exec_err!("the checkpoint's state piece '{GONE}{n}' is not a list of keys");
            };
            self.deltas.push((number, changed.num_rows() + gone.len()));
            self.next = number + 1;
            deltas.push(Delta { gone, changed });
        }
        self.base_rows = base.num_rows();
        self.based = true;
        Ok(Some((base, deltas)))
    }
}

/// Keys in row format as a batch of one binary column.
pub fn keys_batch(keys: &[Key]) -> Result<RecordBatch> {
    let keys = BinaryArray::from_iter_values(keys.iter().map(Key::as_bytes));
    let schema = Schema::new(vec![Field::new("key", DataType::Binary, false)]);
    Ok(RecordBatch::try_new(Arc::new(schema), vec![Arc::new(keys)])?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::Int64Array;

    use super::*;

    /// Groups of slots as a batch of their slot numbers (all of `live` for
    /// the base).
    fn groups(live: &[usize], slots: Option<&[usize]>) -> Result<RecordBatch> {
        let slots = slots.unwrap_or(live);
        let values = Int64Array::from_iter_values(slots.iter().map(|&s| s as i64));
        let schema = Schema::new(vec![Field::new("slot", DataType::Int64, false)]);
        Ok(RecordBatch::try_new(Arc::new(schema), vec![Arc::new(values)])?)
    }

    /// Snapshot as checkpoint `id`: the pieces it wrote (name, rows), and
    /// where every piece now is.
    fn take(
        changes: &mut GroupChanges,
        live: &[usize],
        id: u64,
        at: &BTreeMap<String, u64>,
    ) -> (Vec<(String, usize)>, BTreeMap<String, u64>, StateSnapshot) {
        let mut state = StateSnapshot::default();
        changes
            .snapshot(&mut state, live.len(), |slots| groups(live, slots))
            .expect("a snapshot");
        let at = state.locate(id, at).expect("located");
        let written = at
            .iter()
            .filter(|(_, held)| **held == id)
            .map(|(name, _)| (name.clone(), state.piece(name).expect("rows").num_rows()))
            .collect();
        (written, at, state)
    }

    #[test]
    fn a_few_changes_are_a_delta_and_many_compact_the_chain() {
        let live: Vec<usize> = (0..10).collect();
        let mut changes = GroupChanges::default();
        // Nothing is tracked before a first base.
        changes.touch(&[1, 2]);
        assert!(changes.changed.is_empty());
        let (written, at, _) = take(&mut changes, &[], 1, &BTreeMap::new());
        assert_eq!(written, vec![("groups".into(), 0)]);
        assert!(!changes.based, "an empty base is not referred to");
        let (written, at, _) = take(&mut changes, &live, 2, &at);
        assert_eq!(written, vec![("groups".into(), 10)]);
        // Two groups changed, one twice, and one dropped: a delta of three.
        changes.touch(&[3, 4, 3]);
        changes.dropped(&Key::new(b"k9"));
        let (written, at, _) = take(&mut changes, &live, 3, &at);
        assert_eq!(
            written,
            vec![("gone+000000000000".into(), 1), ("groups+000000000000".into(), 2)]
        );
        assert_eq!(at["groups"], 2, "the base is read from checkpoint 2");
        // Nothing changed: an empty delta, the rest kept.
        let (written, at, _) = take(&mut changes, &live, 4, &at);
        assert_eq!(written.len(), 2);
        assert_eq!(at.len(), 5);
        // The deltas would hold more than the base: written whole.
        changes.touch(&[0, 1, 2, 5, 6, 7, 8, 9]);
        let (written, at, state) = take(&mut changes, &live, 5, &at);
        assert_eq!(written, vec![("groups".into(), 10)]);
        assert_eq!(at.len(), 1, "the chain is dropped");
        // A restore of it refers to the base it read.
        let mut restored = GroupChanges::default();
        let (base, deltas) = restored.restore(&state).expect("read").expect("pieces");
        assert_eq!((base.num_rows(), deltas.len()), (10, 0));
        assert!(restored.based);
    }

    #[test]
    fn a_long_chain_of_small_deltas_is_compacted_and_restored_in_order() {
        let live: Vec<usize> = (0..100).collect();
        let mut changes = GroupChanges::default();
        let (_, mut at, _) = take(&mut changes, &live, 1, &BTreeMap::new());
        let mut state = StateSnapshot::default();
        for id in 2..2 + MAX_DELTAS as u64 {
            changes.touch(&[id as usize]);
            (_, at, state) = take(&mut changes, &live, id, &at);
        }
        assert_eq!(changes.deltas.len(), MAX_DELTAS);
        // Read back in order (every piece given its rows, as a checkpoint's
        // read does).
        let mut held = StateSnapshot::default();
        for name in at.keys() {
            match state.piece(name) {
                Ok(rows) => held.put_piece(name.clone(), rows.clone()),
                // Held by an earlier checkpoint: an empty delta will do.
                Err(_) if name.starts_with(GONE) => {
                    held.put_piece(name.clone(), keys_batch(&[]).expect("rows"))
                }
                Err(_) => held.put_piece(name.clone(), groups(&live, Some(&[])).expect("rows")),
            }
        }
        let mut restored = GroupChanges::default();
        let (_, deltas) = restored.restore(&held).expect("read").expect("pieces");
        assert_eq!(deltas.len(), MAX_DELTAS);
        assert_eq!(restored.next, MAX_DELTAS as u64);
        // One more delta: the chain is at its length, so the base is written.
        changes.touch(&[50]);
        let (written, _, _) = take(&mut changes, &live, 20, &at);
        assert_eq!(written, vec![("groups".into(), 100)]);
    }
}

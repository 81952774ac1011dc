//! The rows one side of a stream-stream join keeps: batches as they came,
//! indexed by join key, each row with the watermark past which it is dropped
//! and how many rows of the other side it matches now (outer joins emit the
//! rows that never did; a retraction can bring a count back to zero).
//!
//! Rows are kept in the batches they came in (no copy per row); a batch is
//! freed once all of its rows expired. Expired rows leave the key index
//! lazily (probes skip them).
//!
//! A batch enters the key index only once probes have compared enough keys
//! with it ([`SCAN_KEYS`]); until then a probe compares its few keys with
//! the batch's row by row. A side that is probed rarely, by few keys (the
//! bids of Nexmark q7, probed by one maximum every ten seconds), is then
//! never indexed; one probed by whole batches is indexed at their first
//! probe, as before.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::{concat_batches, interleave_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion::common::{exec_err, internal_err};
use datafusion::error::Result;

use super::join::{JoinCore, Key, KeyIndex, Side, keep, take_rows};
use crate::stream::checkpoint::{StateSnapshot, int_columns, int_rows};
use crate::stream::memory::StateMemory;
use crate::stream::operator::Nanos;

/// Where a kept row is: its batch and its row in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowRef {
    chunk: u64,
    row: u32,
}

/// How many probe keys, in all, are compared row by row with a batch of
/// kept rows before it is indexed: comparing a key with a row costs a small
/// fraction of indexing the row (hashing its key, a place in the index, a
/// sweep when it expires), so a batch that probes barely touch is never
/// indexed, and one that many keys probe costs at most this many
/// comparisons per row more than if it had been indexed at once.
pub const SCAN_KEYS: usize = 16;

/// Rows that came in one batch.
struct Chunk {
    batch: RecordBatch,
    /// Its rows' keys while it is not in the index (empty once it is).
    keys: Vec<Key>,
    /// Probe keys compared with its rows so far.
    scanned: usize,
    /// The row is dropped once the watermark passes this.
    expire_at: Vec<Nanos>,
    /// Rows of the other side it matches.
    matches: Vec<u32>,
    alive: Vec<bool>,
    live: usize,
    /// The earliest `expire_at` of a live row (a chunk is skipped until then).
    first_expiry: Nanos,
    /// The snapshot whose checkpoint last wrote its rows (its state piece);
    /// `None`: none has.
    written: Option<u64>,
}

impl Chunk {
    /// Bytes of its rows and their bookkeeping.
    fn bytes(&self) -> usize {
        self.batch.get_array_memory_size()
            + self.expire_at.capacity() * std::mem::size_of::<Nanos>()
            + self.matches.capacity() * std::mem::size_of::<u32>()
            + self.alive.capacity()
            + self.keys.capacity() * std::mem::size_of::<Key>()
    }
}

/// The rows one side of a join keeps.
pub struct JoinState {
    schema: SchemaRef,
    chunks: BTreeMap<u64, Chunk>,
    next: u64,
    /// Live rows by key, and dead ones not yet swept (see [`JoinState::expire`]),
    /// of the chunks below `indexed_below`.
    index: KeyIndex<RowRef>,
    /// Chunks below this are in `index`; the others keep their keys.
    indexed_below: u64,
    /// Live rows in `index`.
    indexed_rows: usize,
    rows: usize,
    /// Rows expired since the index was last swept of them.
    unswept: usize,
    /// Bytes of `chunks`, kept as they come and go (read after every batch).
    chunk_bytes: usize,
    /// Snapshots taken (or restored) so far.
    snapshots: u64,
}

/// The pairs of a batch with a side's kept rows that match.
pub struct Probe {
    /// The batch's row of each pair.
    pub rows: Vec<u32>,
    /// The kept row of each pair.
    pub found: Vec<RowRef>,
    /// The pairs' left-then-right columns.
    pub columns: Vec<ArrayRef>,
}

/// Rows a watermark expired.
pub struct Expired {
    /// The rows that never matched, in the order they came.
    pub unmatched: RecordBatch,
}

impl JoinState {
    /// No rows yet, of `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        Self {
            schema,
            chunks: BTreeMap::new(),
            next: 0,
            index: KeyIndex::default(),
            indexed_below: 0,
            indexed_rows: 0,
            rows: 0,
            unswept: 0,
            chunk_bytes: 0,
            snapshots: 0,
        }
    }

    /// How many rows are kept.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Bytes of the kept rows' batches, their bookkeeping and the key index
    /// (estimated); no walk over the rows.
    pub fn bytes(&self) -> usize {
        self.chunk_bytes + self.index.bytes(self.indexed_rows + self.unswept)
    }

    /// A row of chunk `chunk` died: count it out of the index, if it is there.
    fn died(&mut self, chunk: u64) {
        self.rows -= 1;
        if chunk < self.indexed_below {
            self.indexed_rows -= 1;
            self.unswept += 1;
        }
    }

    /// Drop chunk `id`, all of whose rows are gone.
    fn drop_chunk(&mut self, id: u64) {
        if let Some(chunk) = self.chunks.remove(&id) {
            self.chunk_bytes -= chunk.bytes();
        }
    }

    /// Whether no row is kept.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Keep `batch`'s rows, with their keys, the watermark after which each
    /// is dropped, and whether each has matched already.
    pub fn insert(
        &mut self,
        batch: RecordBatch,
        keys: Vec<Key>,
        expire_at: Vec<Nanos>,
        matched: Vec<bool>,
    ) -> Result<()> {
        let matches = matched.into_iter().map(u32::from).collect();
        self.insert_counted(batch, keys, expire_at, matches)
    }

    /// Keep `batch`'s rows, with their keys, the watermark after which each
    /// is dropped, and how many rows of the other side each matches.
    pub fn insert_counted(
        &mut self,
        batch: RecordBatch,
        keys: Vec<Key>,
        expire_at: Vec<Nanos>,
        matches: Vec<u32>,
    ) -> Result<()> {
        let rows = batch.num_rows();
        if keys.len() != rows || expire_at.len() != rows || matches.len() != rows {
            return internal_err!("a join kept {rows} rows with other counts of keys, expiries and matches");
        }
        if rows == 0 {
            return Ok(());
        }
        let chunk = self.next;
        self.next += 1;
        let first_expiry = expire_at.iter().copied().min().unwrap_or(Nanos::MAX);
        let kept = Chunk {
            batch,
            keys,
            scanned: 0,
            expire_at,
            matches,
            alive: vec![true; rows],
            live: rows,
            first_expiry,
            written: None,
        };
        self.chunk_bytes += kept.bytes();
        self.chunks.insert(chunk, kept);
        self.rows += rows;
        Ok(())
    }

    /// Each (probe row, kept row) pair with equal keys, probe rows in order,
    /// each probe row's kept rows in the order they came.
    pub fn candidates(&mut self, keys: &[Option<Key>]) -> (Vec<u32>, Vec<RowRef>) {
        let wanted: Vec<(u32, &Key)> = keys
            .iter()
            .enumerate()
            .filter_map(|(row, key)| key.as_ref().map(|k| (row as u32, k)))
            .collect();
        self.index_probed(wanted.len());
        let (probe, found) = self.index.probe(keys);
        let (probe, found): (Vec<u32>, Vec<RowRef>) = if self.unswept == 0 {
            (probe, found)
        } else {
            // The index may still name expired rows: leave them out.
            probe
                .into_iter()
                .zip(found)
                .filter(|(_, r)| self.is_alive(r))
                .unzip()
        };
        if wanted.is_empty() || self.chunks.range(self.indexed_below..).next().is_none() {
            return (probe, found);
        }
        // The chunks not indexed: each wanted key with each live row. They
        // all came after the indexed ones, so each probe row's indexed rows
        // go first.
        let mut scanned: Vec<Vec<RowRef>> = vec![Vec::new(); wanted.len()];
        for (&chunk, c) in self.chunks.range_mut(self.indexed_below..) {
            c.scanned += wanted.len();
            for (row, key) in c.keys.iter().enumerate() {
                if !c.alive[row] {
                    continue;
                }
                for (at, (_, want)) in wanted.iter().enumerate() {
                    if key == *want {
                        scanned[at].push(RowRef {
                            chunk,
                            row: row as u32,
                        });
                    }
                }
            }
        }
        let mut pairs = (Vec::with_capacity(probe.len()), Vec::with_capacity(found.len()));
        let mut next = 0;
        for ((row, _), scanned) in wanted.iter().zip(scanned) {
            while probe.get(next) == Some(row) {
                pairs.0.push(*row);
                pairs.1.push(found[next]);
                next += 1;
            }
            pairs.0.extend(std::iter::repeat_n(*row, scanned.len()));
            pairs.1.extend(scanned);
        }
        pairs
    }

    /// Index the chunks, oldest first, that a probe of `wanted` more keys
    /// would take past [`SCAN_KEYS`] (each probe compares with every chunk
    /// not indexed, so older chunks have been compared with at least as many).
    fn index_probed(&mut self, wanted: usize) {
        if wanted == 0 {
            return;
        }
        let due: Vec<u64> = self
            .chunks
            .range(self.indexed_below..)
            .take_while(|(_, c)| c.scanned + wanted > SCAN_KEYS)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(c) = self.chunks.get_mut(&id) else {
                continue;
            };
            let before = c.bytes();
            let keys = std::mem::take(&mut c.keys);
            for (row, key) in keys.into_iter().enumerate() {
                if c.alive[row] {
                    self.index.insert(
                        key,
                        RowRef {
                            chunk: id,
                            row: row as u32,
                        },
                    );
                }
            }
            self.indexed_rows += c.live;
            self.chunk_bytes = self.chunk_bytes + c.bytes() - before;
            self.indexed_below = id + 1;
        }
    }

    fn is_alive(&self, r: &RowRef) -> bool {
        self.chunks
            .get(&r.chunk)
            .is_some_and(|c| c.alive.get(r.row as usize).copied().unwrap_or(false))
    }

    /// The pairs of `batch` (rows of `side`, keys `keys`) with the kept rows
    /// (of the other side) that match: equal keys and the join condition.
    pub fn probe(
        &mut self,
        core: &JoinCore,
        side: Side,
        batch: &RecordBatch,
        keys: &[Option<Key>],
    ) -> Result<Probe> {
        let (rows, found) = self.candidates(keys);
        let candidates = take_rows(batch, &UInt32Array::from(rows.clone()))?;
        let partners = self.rows(&found)?;
        let (mask, columns) = core.filter_pairs(side, &candidates, &partners)?;
        Ok(Probe {
            rows: keep(&rows, mask.as_ref()),
            found: keep(&found, mask.as_ref()),
            columns,
        })
    }

    /// The kept rows `refs`, in that order (repeats allowed).
    pub fn rows(&self, refs: &[RowRef]) -> Result<RecordBatch> {
        let mut order: Vec<u64> = refs.iter().map(|r| r.chunk).collect();
        order.sort_unstable();
        order.dedup();
        let mut batches = Vec::with_capacity(order.len());
        for chunk in &order {
            match self.chunks.get(chunk) {
                Some(c) => batches.push(&c.batch),
                None => return internal_err!("a join's key index names rows it no longer keeps"),
            }
        }
        if batches.is_empty() {
            return Ok(RecordBatch::new_empty(std::sync::Arc::clone(&self.schema)));
        }
        let indices: Vec<(usize, usize)> = refs
            .iter()
            .map(|r| (order.partition_point(|c| *c < r.chunk), r.row as usize))
            .collect();
        Ok(interleave_record_batch(&batches, &indices)?)
    }

    /// Count a match for each of `refs`; those that had no match before,
    /// once each, in order, with their first position in `refs`.
    pub fn first_matches(&mut self, refs: &[RowRef]) -> Vec<(RowRef, usize)> {
        let mut first = Vec::new();
        for (at, r) in refs.iter().enumerate() {
            if let Some(matches) = self
                .chunks
                .get_mut(&r.chunk)
                .and_then(|c| c.matches.get_mut(r.row as usize))
            {
                *matches += 1;
                if *matches == 1 {
                    first.push((*r, at));
                }
            }
        }
        first
    }

    /// Take back a match from each of `refs` (their partner was retracted);
    /// those left with none, once each, in order, with their first position.
    pub fn lost_matches(&mut self, refs: &[RowRef]) -> Vec<(RowRef, usize)> {
        let mut lost = Vec::new();
        for (at, r) in refs.iter().enumerate() {
            if let Some(matches) = self
                .chunks
                .get_mut(&r.chunk)
                .and_then(|c| c.matches.get_mut(r.row as usize))
                && *matches > 0
            {
                *matches -= 1;
                if *matches == 0 {
                    lost.push((*r, at));
                }
            }
        }
        lost
    }

    /// How many rows of the other side `r` matches.
    pub fn matches_of(&self, r: RowRef) -> u32 {
        self.chunks
            .get(&r.chunk)
            .and_then(|c| c.matches.get(r.row as usize).copied())
            .unwrap_or(0)
    }

    /// For each row of `batch` (with `keys`), a kept row equal to it in every
    /// column, if there is one, each kept row named at most once: the row a
    /// retraction takes back.
    pub fn find_equal(&mut self, batch: &RecordBatch, keys: &[Option<Key>]) -> Result<Vec<Option<RowRef>>> {
        let (probe, found) = self.candidates(keys);
        let fields = self
            .schema
            .fields()
            .iter()
            .map(|f| arrow::row::SortField::new(f.data_type().clone()))
            .collect();
        let converter = arrow::row::RowConverter::new(fields)?;
        let wanted = converter.convert_columns(batch.columns())?;
        let kept = converter.convert_columns(self.rows(&found)?.columns())?;
        let mut equal: Vec<Option<RowRef>> = vec![None; batch.num_rows()];
        let mut taken = std::collections::HashSet::new();
        for (i, (&row, r)) in probe.iter().zip(&found).enumerate() {
            let row = row as usize;
            if equal[row].is_none() && !taken.contains(r) && wanted.row(row) == kept.row(i) {
                equal[row] = Some(*r);
                taken.insert(*r);
            }
        }
        Ok(equal)
    }

    /// Forget the kept rows `refs` (taken back by a retraction).
    pub fn remove(&mut self, refs: &[RowRef]) {
        let mut emptied = Vec::new();
        for r in refs {
            if let Some(chunk) = self.chunks.get_mut(&r.chunk)
                && let Some(alive) = chunk.alive.get_mut(r.row as usize)
                && *alive
            {
                *alive = false;
                chunk.live -= 1;
                if chunk.live == 0 {
                    emptied.push(r.chunk);
                }
                self.died(r.chunk);
            }
        }
        for chunk in emptied {
            self.drop_chunk(chunk);
        }
    }

    /// Drop the rows whose time ran out at `watermark` (`expire_at <
    /// watermark`), or every row when `all`.
    pub fn expire(&mut self, watermark: Nanos, all: bool) -> Result<Expired> {
        let mut unmatched: Vec<RecordBatch> = Vec::new();
        let mut emptied = Vec::new();
        let mut died = [0, 0];
        for (id, chunk) in self.chunks.iter_mut() {
            if !all && chunk.first_expiry >= watermark {
                continue;
            }
            let mut lonely = Vec::new();
            let mut first_expiry = Nanos::MAX;
            let indexed = usize::from(*id < self.indexed_below);
            for row in 0..chunk.alive.len() {
                if !chunk.alive[row] {
                    continue;
                }
                if all || chunk.expire_at[row] < watermark {
                    chunk.alive[row] = false;
                    chunk.live -= 1;
                    died[indexed] += 1;
                    if chunk.matches[row] == 0 {
                        lonely.push(row as u32);
                    }
                } else {
                    first_expiry = first_expiry.min(chunk.expire_at[row]);
                }
            }
            chunk.first_expiry = first_expiry;
            if !lonely.is_empty() {
                unmatched.push(take_rows(&chunk.batch, &UInt32Array::from(lonely))?);
            }
            if chunk.live == 0 {
                emptied.push(*id);
            }
        }
        self.rows -= died[0] + died[1];
        self.indexed_rows -= died[1];
        self.unswept += died[1];
        for id in emptied {
            self.drop_chunk(id);
        }
        // Expired rows leave the index lazily: probes skip them, and once
        // they outnumber the live rows one sweep drops them all, so each row
        // costs the index O(1) however often the watermark moves.
        if self.unswept > self.indexed_rows.max(1024) || (self.indexed_rows == 0 && self.unswept > 0) {
            let chunks = &self.chunks;
            self.index.retain_all(|r| {
                chunks
                    .get(&r.chunk)
                    .is_some_and(|c| c.alive.get(r.row as usize).copied().unwrap_or(false))
            });
            self.unswept = 0;
        }
        let unmatched = match unmatched.len() {
            0 => RecordBatch::new_empty(std::sync::Arc::clone(&self.schema)),
            1 => unmatched.remove(0),
            _ => concat_batches(&unmatched[0].schema(), &unmatched)?,
        };
        Ok(Expired { unmatched })
    }
}

/// Checkpoints older than this many snapshots are not read from: a chunk
/// whose piece one wrote is written again, so a long run keeps a few
/// earlier checkpoints, not one per chunk still alive.
pub const REWRITE_AFTER: u64 = 8;

impl JoinState {
    /// Its live rows for a checkpoint, incrementally: each chunk's rows as a
    /// state piece `{part}:{chunk}`, written when the chunk is new (or its
    /// piece is [`REWRITE_AFTER`] snapshots old) and else referred to in the
    /// earlier checkpoint that holds it (rows of a chunk never change; some
    /// die); and part `part` with, per live row in the order they came, its
    /// chunk, row, `expire_at` and `matches`, written whole (four integers a
    /// row).
    pub fn snapshot_pieces(&mut self, part: &str, into: &mut StateSnapshot) -> Result<()> {
        self.snapshots += 1;
        let mut bookkeeping = Vec::with_capacity(self.rows);
        for (&id, chunk) in &mut self.chunks {
            if chunk.live == 0 {
                continue;
            }
            let name = format!("{part}:{id:012}");
            match chunk.written {
                Some(at) if self.snapshots - at < REWRITE_AFTER => into.keep_piece(name),
                _ => {
                    into.put_piece(name, chunk.batch.clone());
                    chunk.written = Some(self.snapshots);
                }
            }
            for row in (0..chunk.alive.len()).filter(|&r| chunk.alive[r]) {
                bookkeeping.push(vec![
                    id as i64,
                    row as i64,
                    chunk.expire_at[row],
                    i64::from(chunk.matches[row]),
                    chunk.written.unwrap_or_default() as i64,
                ]);
            }
        }
        into.put_batch(
            part,
            int_columns(
                &["chunk", "row", "expire_at", "matches", "written"],
                bookkeeping.into_iter(),
            )?,
        );
        into.put_values(&format!("{part}_snapshots"), vec![self.snapshots as i64]);
        Ok(())
    }

    /// Take back the rows [`JoinState::snapshot_pieces`] saved, in place of
    /// any it keeps, each chunk under its number (so that the next snapshot
    /// refers to its piece); `keys` gives the join keys of rows of its schema.
    fn restore_pieces(
        &mut self,
        part: &str,
        from: &StateSnapshot,
        keys: impl Fn(&RecordBatch) -> Result<Vec<Option<Key>>>,
    ) -> Result<()> {
        let snapshots = from.value(&format!("{part}_snapshots"))?;
        *self = Self::new(Arc::clone(&self.schema));
        self.snapshots = snapshots as u64;
        let rows = int_rows(from.batch(part)?, 5)?;
        let mut at = 0;
        while at < rows.len() {
            let id = rows[at][0];
            let len = rows[at..].iter().take_while(|r| r[0] == id).count();
            let (Ok(chunk), written) = (u64::try_from(id), rows[at][4]) else {
                return exec_err!("a checkpoint of a join names chunk {id}");
            };
            let batch = from.piece(&format!("{part}:{chunk:012}"))?;
            let batch = RecordBatch::try_new_with_options(
                Arc::clone(&self.schema),
                batch.columns().to_vec(),
                &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
            )?;
            let n = batch.num_rows();
            let (mut expire_at, mut matches, mut alive) = (vec![0; n], vec![0u32; n], vec![false; n]);
            let keys = keys(&batch)?;
            for r in &rows[at..at + len] {
                let row = usize::try_from(r[1]).ok().filter(|&row| row < n);
                let (Some(row), Ok(count)) = (row, u32::try_from(r[3])) else {
                    return exec_err!("a checkpoint of a join has a row {} of chunk {id} it lacks", r[1]);
                };
                let Some(key) = keys.get(row).cloned().flatten() else {
                    return exec_err!(
                        "a checkpoint of a join keeps a row with a NULL join key, which it never keeps"
                    );
                };
                (expire_at[row], matches[row], alive[row]) = (r[2], count, true);
                self.index.insert(
                    key,
                    RowRef {
                        chunk,
                        row: row as u32,
                    },
                );
            }
            // Its rows went into the index above.
            let kept = Chunk {
                keys: Vec::new(),
                scanned: 0,
                first_expiry: rows[at..at + len]
                    .iter()
                    .map(|r| r[2])
                    .min()
                    .unwrap_or(Nanos::MAX),
                batch,
                expire_at,
                matches,
                alive,
                live: len,
                written: u64::try_from(written).ok(),
            };
            self.chunk_bytes += kept.bytes();
            self.chunks.insert(chunk, kept);
            self.rows += len;
            self.indexed_rows += len;
            self.next = self.next.max(chunk + 1);
            at += len;
        }
        // Every restored chunk is indexed.
        self.indexed_below = self.next;
        Ok(())
    }

    /// Its live rows for a checkpoint as this build wrote them before
    /// incremental ones (which [`JoinState::restore`] still reads), in the
    /// order they came (which is the order probes and expiry see them):
    /// columns `expire_at` and `matches`, then the rows' own columns.
    /// Expired and retracted rows are left out.
    #[cfg(test)]
    pub fn snapshot(&self) -> Result<RecordBatch> {
        let mut refs = Vec::with_capacity(self.rows);
        let mut bookkeeping = Vec::with_capacity(self.rows);
        for (&chunk, c) in &self.chunks {
            for row in (0..c.alive.len()).filter(|&r| c.alive[r]) {
                refs.push(RowRef {
                    chunk,
                    row: row as u32,
                });
                bookkeeping.push(vec![c.expire_at[row], i64::from(c.matches[row])]);
            }
        }
        let rows = self.rows(&refs)?;
        let places = int_columns(&["expire_at", "matches"], bookkeeping.into_iter())?;
        crate::stream::checkpoint::with_columns(places, vec![rows.columns().to_vec()])
    }

    /// Take back the rows [`JoinState::snapshot`] saved, in place of any it
    /// keeps; `keys` gives the join keys of rows of its schema (every saved
    /// row has one: rows without are never kept).
    pub fn restore(
        &mut self,
        saved: &RecordBatch,
        keys: impl FnOnce(&RecordBatch) -> Result<Vec<Option<Key>>>,
    ) -> Result<()> {
        let bookkeeping = int_rows(saved, 2)?;
        let columns = saved.columns().get(2..).unwrap_or_default().to_vec();
        let options = RecordBatchOptions::new().with_row_count(Some(saved.num_rows()));
        let batch = RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?;
        let keys = keys(&batch)?.into_iter().collect::<Option<Vec<Key>>>();
        let Some(keys) = keys else {
            return exec_err!(
                "a checkpoint of a join keeps a row with a NULL join key, which it never keeps"
            );
        };
        let mut matches = Vec::with_capacity(bookkeeping.len());
        for row in &bookkeeping {
            match u32::try_from(row[1]) {
                Ok(m) => matches.push(m),
                Err(_) => return exec_err!("a checkpoint of a join has a row with {} matches", row[1]),
            }
        }
        let expire_at = bookkeeping.iter().map(|r| r[0]).collect();
        *self = Self::new(Arc::clone(&self.schema));
        self.insert_counted(batch, keys, expire_at, matches)
    }
}

/// The names of the two sides' parts in a checkpoint (as EXPLAIN names them).
const SIDE_PARTS: [&str; 2] = ["join_left", "join_right"];

/// Both sides' share of the memory pool for join `operator`; `fix` says
/// how to keep fewer rows.
pub fn sides_memory(operator: &'static str, fix: &'static str) -> StateMemory {
    StateMemory::new(operator, "join_left and join_right").with_fix(fix)
}

/// Bytes both sides keep.
pub fn sides_bytes(state: &[JoinState; 2]) -> usize {
    state.iter().map(JoinState::bytes).sum()
}

/// Resize `memory` to both sides' kept rows.
pub fn reserve_sides(state: &[JoinState; 2], memory: &StateMemory) -> Result<()> {
    memory.resize(sides_bytes(state), || {
        format!("{} left and {} right rows", state[0].len(), state[1].len())
    })
}

/// Both sides' kept rows into `into`, as parts `join_left` and `join_right`
/// and the pieces of their chunks (incremental: see
/// [`JoinState::snapshot_pieces`]).
pub fn snapshot_sides(state: &mut [JoinState; 2], into: &mut StateSnapshot) -> Result<()> {
    for (side, part) in state.iter_mut().zip(SIDE_PARTS) {
        side.snapshot_pieces(part, into)?;
    }
    Ok(())
}

/// Take back both sides' rows [`snapshot_sides`] saved, keyed by `core`; a
/// checkpoint from before incremental ones has each side's rows as one part.
pub fn restore_sides(state: &mut [JoinState; 2], core: &JoinCore, from: &StateSnapshot) -> Result<()> {
    for (side, (kept, part)) in [Side::Left, Side::Right]
        .into_iter()
        .zip(state.iter_mut().zip(SIDE_PARTS))
    {
        match from.values(&format!("{part}_snapshots")) {
            Ok(_) => kept.restore_pieces(part, from, |batch| core.keys(side, batch))?,
            Err(_) => kept.restore(from.batch(part)?, |batch| core.keys(side, batch))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]))
    }

    fn rows(values: &[i64]) -> RecordBatch {
        RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(values.to_vec()))]).expect("a batch")
    }

    /// Each row's key: its value.
    fn keys(batch: &RecordBatch) -> Result<Vec<Option<Key>>> {
        let values = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("integers");
        Ok((0..values.len())
            .map(|i| Some(Key::new(&values.value(i).to_le_bytes())))
            .collect())
    }

    fn insert(state: &mut JoinState, values: &[i64]) {
        let batch = rows(values);
        let keys = keys(&batch).expect("keys").into_iter().flatten().collect();
        state
            .insert(batch, keys, vec![100; values.len()], vec![false; values.len()])
            .expect("kept");
    }

    /// The pieces a snapshot wrote (with rows), by name.
    fn written(
        state: &mut JoinState,
        id: u64,
        at: &mut BTreeMap<String, u64>,
    ) -> (Vec<String>, StateSnapshot) {
        let mut snapshot = StateSnapshot::default();
        state
            .snapshot_pieces("join_left", &mut snapshot)
            .expect("a snapshot");
        *at = snapshot.locate(id, at).expect("located");
        let names = at
            .iter()
            .filter(|(_, held)| **held == id)
            .map(|(n, _)| n.clone())
            .collect();
        (names, snapshot)
    }

    #[test]
    fn a_chunk_is_written_once_and_again_only_when_its_checkpoint_is_old() {
        let mut state = JoinState::new(schema());
        let mut at = BTreeMap::new();
        insert(&mut state, &[1, 2]);
        let (names, _) = written(&mut state, 1, &mut at);
        assert_eq!(names, ["join_left:000000000000"]);
        insert(&mut state, &[3]);
        let (names, _) = written(&mut state, 2, &mut at);
        assert_eq!(
            names,
            ["join_left:000000000001"],
            "the first chunk is read from checkpoint 1"
        );
        // A retraction changes the bookkeeping only.
        let found = state
            .find_equal(&rows(&[2]), &keys(&rows(&[2])).expect("keys"))
            .expect("found");
        state.remove(&found.into_iter().flatten().collect::<Vec<_>>());
        let (names, snapshot) = written(&mut state, 3, &mut at);
        assert!(names.is_empty(), "{names:?}");
        assert_eq!(snapshot.batch("join_left").expect("rows").num_rows(), 2);
        // Read back: the live rows, in their chunks, which the next snapshot
        // refers to.
        let mut resolved = StateSnapshot::decode(&snapshot.encode().expect("bytes")).expect("decoded");
        let pieces = [(0, rows(&[1, 2])), (1, rows(&[3]))];
        resolved
            .resolve(|_, name| {
                let n: usize = name.trim_start_matches("join_left:").parse().expect("a number");
                Ok(pieces[n].1.clone())
            })
            .expect("resolved");
        let mut back = JoinState::new(schema());
        back.restore_pieces("join_left", &resolved, keys)
            .expect("restored");
        assert_eq!(back.len(), 2);
        let (probe, _) = back.candidates(&keys(&rows(&[1, 2, 3])).expect("keys"));
        assert_eq!(probe, [0, 2], "rows 1 and 3 are kept, 2 was retracted");
        let (names, _) = written(&mut back, 4, &mut at);
        assert!(names.is_empty(), "{names:?}");
        // A chunk whose piece is REWRITE_AFTER snapshots old is written again.
        let mut names = vec![];
        for id in 5..5 + REWRITE_AFTER {
            names.extend(written(&mut back, id, &mut at).0);
        }
        assert_eq!(names, ["join_left:000000000000", "join_left:000000000001"]);
    }

    #[test]
    fn a_checkpoint_before_incremental_ones_still_restores() {
        let mut state = JoinState::new(schema());
        insert(&mut state, &[1, 2]);
        insert(&mut state, &[3]);
        let mut snapshot = StateSnapshot::default();
        snapshot.put_batch("join_left", state.snapshot().expect("rows"));
        let mut back = JoinState::new(schema());
        back.restore(snapshot.batch("join_left").expect("a part"), keys)
            .expect("restored");
        assert_eq!(back.len(), 3);
    }

    fn key(k: i64) -> Key {
        Key::new(&k.to_be_bytes())
    }

    /// Each probe row's live rows of equal key, in the order they came.
    fn reference(rows: &[(RowRef, i64, bool)], probe: &[Option<i64>]) -> (Vec<u32>, Vec<RowRef>) {
        let mut out = (Vec::new(), Vec::new());
        for (at, want) in probe.iter().enumerate() {
            for (r, k, alive) in rows {
                if *alive && Some(*k) == *want {
                    out.0.push(at as u32);
                    out.1.push(*r);
                }
            }
        }
        out
    }

    #[test]
    fn probes_find_the_same_rows_in_the_same_order_indexed_or_not() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let mut state = JoinState::new(Arc::clone(&schema));
        // (row, key, alive) of every row kept, in the order they came.
        let mut rows: Vec<(RowRef, i64, bool)> = Vec::new();
        let mut time = 0;
        for step in 0..40_i64 {
            // A chunk of keys step % 5, .., with an expiry each.
            let keys: Vec<i64> = (0..6).map(|i| (step + i * 3) % 5).collect();
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from(keys.clone()))],
            )
            .expect("a batch");
            let expire_at: Vec<Nanos> = (0..6).map(|i| time + 10 + i).collect();
            time += 3;
            let chunk = state.next;
            state
                .insert(
                    batch,
                    keys.iter().map(|k| key(*k)).collect(),
                    expire_at.clone(),
                    vec![false; 6],
                )
                .expect("kept");
            for (row, k) in keys.iter().enumerate() {
                rows.push((
                    RowRef {
                        chunk,
                        row: row as u32,
                    },
                    *k,
                    true,
                ));
            }
            // Probes of one key, of a few, with a NULL and a repeat, and now
            // and then of many: chunks are indexed a few at a time.
            let probe: Vec<Option<i64>> = match step % 4 {
                0 => vec![Some(step % 5)],
                1 => vec![Some(1), None, Some(3), Some(1)],
                2 if step % 12 == 2 => (0..20).map(|k| Some(k % 7)).collect(),
                _ => vec![None, Some(4)],
            };
            let keys: Vec<Option<Key>> = probe.iter().map(|k| k.map(key)).collect();
            assert_eq!(state.candidates(&keys), reference(&rows, &probe), "step {step}");
            // A retraction, and the watermark expiring older rows.
            if step % 3 == 0 {
                let (r, _, alive) = rows.iter_mut().rev().nth(2).expect("rows");
                state.remove(&[*r]);
                *alive = false;
            }
            state.expire(time, false).expect("expires");
            for (r, _, alive) in rows.iter_mut() {
                let expiry = (r.chunk as i64) * 3 + 10 + i64::from(r.row);
                if expiry < time {
                    *alive = false;
                }
            }
            assert_eq!(state.len(), rows.iter().filter(|(_, _, a)| *a).count());
            assert_eq!(
                state.indexed_rows,
                rows.iter()
                    .filter(|(r, _, a)| *a && r.chunk < state.indexed_below)
                    .count()
            );
        }
        assert!(state.indexed_below > 0, "some chunks were indexed");
        assert!(state.indexed_below < state.next, "some were not");
    }
}

//! What the continuous executor's joins share: the planned join
//! ([`JoinSpec`]), join keys in arrow's row format ([`JoinKeys`], NULL
//! matches nothing), an index from key to rows ([`KeyIndex`]), the extra
//! condition over candidate pairs, and the assembly of output rows for every
//! join type ([`Emits`]).
//!
//! The lookup join, the interval join, the window join and the stream join
//! all match rows the same way (equal keys AND the filter), so that one
//! definition gives DataFusion's batch result; they differ only in what
//! state they keep and when they emit.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array, new_null_array,
};
use arrow::compute::{can_cast_types, cast, filter, prep_null_mask_filter, take};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use datafusion::common::{JoinType, internal_err, not_impl_err, plan_err};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;

use crate::stream::changelog::{Change, Changes};
use crate::stream::late::LateRows;
use crate::stream::operator::{Event, Nanos, RowWatermarks, StreamBatch};

/// A join key in arrow's row format (empty when the join has no keys). Keys
/// of up to [`INLINE_KEY`] bytes (one or two integers, a short string) are
/// held inline, so keying a row costs no allocation; longer ones are boxed.
#[derive(Debug, Clone)]
pub enum Key {
    /// The bytes in place.
    Inline {
        /// How many of `bytes` are the key.
        len: u8,
        /// The key, then zeros.
        bytes: [u8; INLINE_KEY],
    },
    /// The bytes on the heap.
    Boxed(Box<[u8]>),
}

/// The longest key held inline.
pub const INLINE_KEY: usize = 22;

impl Key {
    /// The key of these row-format bytes.
    pub fn new(row: &[u8]) -> Self {
        if row.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..row.len()].copy_from_slice(row);
            Key::Inline {
                len: row.len() as u8,
                bytes,
            }
        } else {
            Key::Boxed(Box::from(row))
        }
    }

    /// Its row-format bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Boxed(bytes) => bytes,
        }
    }
}

impl Default for Key {
    fn default() -> Self {
        Key::new(&[])
    }
}

// Equality and hashing by the bytes alone: a key's form follows from its length.
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

/// One side of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The left input, port 0.
    Left,
    /// The right input, port 1.
    Right,
}

impl Side {
    /// The side an input port feeds.
    pub fn of_port(port: usize, operator: &str) -> Result<Self> {
        match port {
            0 => Ok(Side::Left),
            1 => Ok(Side::Right),
            _ => internal_err!("{operator} has two inputs, not an input {}", port + 1),
        }
    }

    /// The other side.
    pub fn other(self) -> Self {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }

    /// 0 for the left side, 1 for the right (to index per-side arrays).
    pub fn index(self) -> usize {
        match self {
            Side::Left => 0,
            Side::Right => 1,
        }
    }
}

/// A join as the planner gives it to a two-input operator.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    /// Which rows the join keeps.
    pub join_type: JoinType,
    /// Equality keys over the left input's columns; empty: every pair is a
    /// candidate.
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Equality keys over the right input's columns, one per left key.
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The extra condition, over the left columns followed by the right ones.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// The left input's columns.
    pub left_schema: SchemaRef,
    /// The right input's columns.
    pub right_schema: SchemaRef,
    /// The output (DataFusion's `Join::schema`): left then right columns for
    /// inner and outer joins, one side's columns for semi and anti joins.
    pub schema: SchemaRef,
}

/// Which rows a join type emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emits {
    /// Matching pairs, left then right columns (inner and outer joins).
    pub pairs: bool,
    /// Per side, its rows that never matched: padded with NULLs for outer
    /// joins, its own columns for anti joins.
    pub unmatched: [bool; 2],
    /// Per side, its rows that matched, once each, its own columns (semi joins).
    pub matched: [bool; 2],
}

impl Emits {
    /// What `join_type` emits; mark joins (which add a column saying whether
    /// a row matched) are refused.
    pub fn of(join_type: JoinType, operator: &str) -> Result<Self> {
        let (pairs, unmatched, matched) = match join_type {
            JoinType::Inner => (true, [false, false], [false, false]),
            JoinType::Left => (true, [true, false], [false, false]),
            JoinType::Right => (true, [false, true], [false, false]),
            JoinType::Full => (true, [true, true], [false, false]),
            JoinType::LeftSemi => (false, [false, false], [true, false]),
            JoinType::RightSemi => (false, [false, false], [false, true]),
            JoinType::LeftAnti => (false, [true, false], [false, false]),
            JoinType::RightAnti => (false, [false, true], [false, false]),
            JoinType::LeftMark | JoinType::RightMark => {
                return not_impl_err!(
                    "{operator} cannot run a {join_type} join (an IN/EXISTS subquery under OR) in continuous mode yet; rewrite the condition as a join or a UNION of joins"
                );
            }
        };
        Ok(Self {
            pairs,
            unmatched,
            matched,
        })
    }

    /// Whether a row that never matches is emitted (outer or anti on `side`).
    pub fn unmatched(&self, side: Side) -> bool {
        self.unmatched[side.index()]
    }

    /// Whether a row is emitted at its first match (semi on `side`).
    pub fn matched(&self, side: Side) -> bool {
        self.matched[side.index()]
    }
}

/// The join keys of one side, comparable across sides.
pub struct JoinKeys {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// The types keys are compared in (both sides' keys are cast to them).
    types: Vec<DataType>,
    /// `None` without keys.
    converter: Option<RowConverter>,
}

impl JoinKeys {
    /// Keys `exprs`, compared as `types`.
    pub fn try_new(exprs: Vec<Arc<dyn PhysicalExpr>>, types: Vec<DataType>) -> Result<Self> {
        let converter = if exprs.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                types.iter().map(|t| SortField::new(t.clone())).collect(),
            )?)
        };
        Ok(Self {
            exprs,
            types,
            converter,
        })
    }

    /// The key of each row; `None` where a key is NULL (it matches nothing).
    pub fn of(&self, batch: &RecordBatch) -> Result<Vec<Option<Key>>> {
        let rows = batch.num_rows();
        let Some(converter) = &self.converter else {
            return Ok(vec![Some(Key::default()); rows]);
        };
        let keys = self
            .exprs
            .iter()
            .zip(&self.types)
            .map(|(e, t)| {
                let key = e.evaluate(batch)?.into_array(rows)?;
                if key.data_type() == t {
                    Ok(key)
                } else {
                    Ok(cast(&key, t)?)
                }
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let converted = converter.convert_columns(&keys)?;
        Ok((0..rows)
            .map(|row| {
                keys.iter()
                    .all(|k| k.is_valid(row))
                    .then(|| Key::new(converted.row(row).as_ref()))
            })
            .collect())
    }
}

/// The key types both sides are compared in: the left keys' types (the
/// planner's type coercion makes the sides agree; a right key that is not of
/// its left key's type is cast to it).
pub fn key_types(
    left: &[Arc<dyn PhysicalExpr>],
    left_schema: &Schema,
    right: &[Arc<dyn PhysicalExpr>],
    right_schema: &Schema,
) -> Result<Vec<DataType>> {
    if left.len() != right.len() {
        return plan_err!(
            "a join has {} left keys and {} right keys: give each left key its right key",
            left.len(),
            right.len()
        );
    }
    left.iter()
        .zip(right)
        .map(|(l, r)| {
            let (lt, rt) = (l.data_type(left_schema)?, r.data_type(right_schema)?);
            if lt != rt && !can_cast_types(&rt, &lt) {
                return plan_err!(
                    "join key {l} is {lt} and {r} is {rt}: cast one of them to the other's type"
                );
            }
            Ok(lt)
        })
        .collect()
}

/// Rows by key. `V` says where a row is (its index in a batch, or in a
/// buffer of batches).
pub struct KeyIndex<V> {
    /// DataFusion's hash map (hashbrown with foldhash): keys are hashed per
    /// row, and the standard library's SipHash was most of a probe's time.
    map: datafusion::common::HashMap<Key, Vec<V>>,
}

impl<V> Default for KeyIndex<V> {
    fn default() -> Self {
        Self {
            map: datafusion::common::HashMap::default(),
        }
    }
}

impl KeyIndex<u32> {
    /// An index of rows `0..keys.len()` by their keys (NULL keys left out).
    pub fn build(keys: &[Option<Key>]) -> Self {
        let mut index = KeyIndex::default();
        for (row, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                index.insert(key.clone(), row as u32);
            }
        }
        index
    }
}

impl<V: Copy> KeyIndex<V> {
    /// Add a row.
    pub fn insert(&mut self, key: Key, at: V) {
        self.map.entry(key).or_default().push(at);
    }

    /// The rows of `key`.
    pub fn get(&self, key: &Key) -> &[V] {
        self.map.get(key).map_or(&[], |v| v.as_slice())
    }

    /// Each (probe row, indexed row) pair with equal keys, probe rows in order.
    pub fn probe(&self, keys: &[Option<Key>]) -> (Vec<u32>, Vec<V>) {
        let (mut probe, mut found) = (Vec::new(), Vec::new());
        for (row, key) in keys.iter().enumerate() {
            if let Some(rows) = key.as_ref().and_then(|k| self.map.get(k)) {
                probe.extend(std::iter::repeat_n(row as u32, rows.len()));
                found.extend_from_slice(rows);
            }
        }
        (probe, found)
    }

    /// Bytes of the index holding `entries` rows, estimated from its keys
    /// (the heap bytes of long keys not counted).
    pub fn bytes(&self, entries: usize) -> usize {
        self.map.len() * std::mem::size_of::<(Key, Vec<V>)>() + entries * std::mem::size_of::<V>()
    }

    /// Keep the rows of every key that `keep` says; drop keys left empty.
    pub fn retain_all(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.map.retain(|_, rows| {
            rows.retain(&mut keep);
            !rows.is_empty()
        });
    }
}

/// The planned parts every two-input join uses: keys per side, the filter,
/// what its type emits and how its rows are assembled.
pub struct JoinCore {
    /// The join.
    pub spec: JoinSpec,
    /// What the join type emits.
    pub emits: Emits,
    /// Left then right columns: what the filter sees.
    pairs_schema: SchemaRef,
    /// Keys per side.
    keys: [JoinKeys; 2],
}

impl JoinCore {
    /// Check `spec` for `operator` (its name, for errors).
    pub fn try_new(spec: JoinSpec, operator: &str) -> Result<Self> {
        let emits = Emits::of(spec.join_type, operator)?;
        let types = key_types(
            &spec.left_keys,
            &spec.left_schema,
            &spec.right_keys,
            &spec.right_schema,
        )?;
        let pairs_schema = Arc::new(Schema::new(
            spec.left_schema
                .fields()
                .iter()
                .chain(spec.right_schema.fields())
                .cloned()
                .collect::<Vec<_>>(),
        ));
        if let Some(filter) = &spec.filter {
            let data_type = filter.data_type(&pairs_schema)?;
            if data_type != DataType::Boolean {
                return plan_err!("the condition {filter} of a join is {data_type}, not BOOLEAN");
            }
        }
        let (left, right) = (spec.left_schema.fields().len(), spec.right_schema.fields().len());
        let width = match (emits.pairs, emits.unmatched, emits.matched) {
            (true, _, _) => left + right,
            (false, [true, _], _) | (false, _, [true, _]) => left,
            (false, _, _) => right,
        };
        if spec.schema.fields().len() != width {
            return internal_err!(
                "a {} join of {left} and {right} columns cannot have {} output columns",
                spec.join_type,
                spec.schema.fields().len()
            );
        }
        let keys = [
            JoinKeys::try_new(spec.left_keys.clone(), types.clone())?,
            JoinKeys::try_new(spec.right_keys.clone(), types)?,
        ];
        Ok(Self {
            spec,
            emits,
            pairs_schema,
            keys,
        })
    }

    /// The keys of `batch`'s rows, from `side`.
    pub fn keys(&self, side: Side, batch: &RecordBatch) -> Result<Vec<Option<Key>>> {
        self.keys[side.index()].of(batch)
    }

    /// The columns of `side`'s input.
    pub fn side_schema(&self, side: Side) -> &SchemaRef {
        match side {
            Side::Left => &self.spec.left_schema,
            Side::Right => &self.spec.right_schema,
        }
    }

    /// Of the candidate pairs `(a, b)` (`a` rows of `side`, `b` rows of the
    /// other side, taken already: one row per pair), those the filter keeps:
    /// the mask over the candidates (`None`: all), and the kept pairs'
    /// left-then-right columns.
    pub fn filter_pairs(
        &self,
        side: Side,
        a: &RecordBatch,
        b: &RecordBatch,
    ) -> Result<(Option<BooleanArray>, Vec<ArrayRef>)> {
        let columns = left_then_right(side, a.columns().to_vec(), b.columns().to_vec());
        filter_pairs(
            self.spec.filter.as_ref(),
            &self.pairs_schema,
            columns,
            a.num_rows(),
        )
    }

    /// Output rows for pairs given as left-then-right columns.
    pub fn pairs(&self, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
        self.output(columns, rows)
    }

    /// Output rows for `rows` of `side` that have no partner: padded with
    /// NULLs for outer joins, their own columns for semi and anti joins.
    pub fn alone(&self, side: Side, rows: &RecordBatch) -> Result<RecordBatch> {
        let count = rows.num_rows();
        if self.emits.pairs {
            let nulls = self
                .side_schema(side.other())
                .fields()
                .iter()
                .map(|f| new_null_array(f.data_type(), count))
                .collect();
            self.output(left_then_right(side, rows.columns().to_vec(), nulls), count)
        } else {
            self.output(rows.columns().to_vec(), count)
        }
    }

    fn output(&self, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.spec.schema),
            columns,
            &options,
        )?)
    }
}

/// Of `rows` candidate pairs given as left-then-right `columns` (of
/// `pairs_schema`), those `condition` keeps: the mask over the candidates
/// (`None` without a condition: all), and the kept pairs' columns.
pub fn filter_pairs(
    condition: Option<&Arc<dyn PhysicalExpr>>,
    pairs_schema: &SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<(Option<BooleanArray>, Vec<ArrayRef>)> {
    let Some(condition) = condition else {
        return Ok((None, columns));
    };
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    let pairs = RecordBatch::try_new_with_options(Arc::clone(pairs_schema), columns, &options)?;
    let mask = condition.evaluate(&pairs)?.into_array(rows)?;
    let Some(mask) = mask.as_any().downcast_ref::<BooleanArray>() else {
        return internal_err!("a join condition gave {}, not booleans", mask.data_type());
    };
    // NULL is not true.
    let mask = if mask.null_count() > 0 {
        prep_null_mask_filter(mask)
    } else {
        mask.clone()
    };
    let columns = pairs
        .columns()
        .iter()
        .map(|c| Ok(filter(c.as_ref(), &mask)?))
        .collect::<Result<Vec<_>>>()?;
    Ok((Some(mask), columns))
}

/// `a` (of `side`) and `b` (of the other side) as left then right.
pub fn left_then_right<T>(side: Side, a: Vec<T>, b: Vec<T>) -> Vec<T> {
    match side {
        Side::Left => a.into_iter().chain(b).collect(),
        Side::Right => b.into_iter().chain(a).collect(),
    }
}

/// The columns of rows `indices` of `batch` (a NULL index takes NULLs).
pub fn take_columns(batch: &RecordBatch, indices: &UInt32Array) -> Result<Vec<ArrayRef>> {
    batch
        .columns()
        .iter()
        .map(|c| Ok(take(c.as_ref(), indices, None)?))
        .collect()
}

/// Rows `indices` of `batch`.
pub fn take_rows(batch: &RecordBatch, indices: &UInt32Array) -> Result<RecordBatch> {
    let columns = take_columns(batch, indices)?;
    let options = RecordBatchOptions::new().with_row_count(Some(indices.len()));
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &options,
    )?)
}

/// The values `mask` keeps (`None`: all of them).
pub fn keep<T: Copy>(values: &[T], mask: Option<&BooleanArray>) -> Vec<T> {
    match mask {
        None => values.to_vec(),
        Some(mask) => values
            .iter()
            .zip(mask.values().iter())
            .filter(|(_, keep)| *keep)
            .map(|(v, _)| *v)
            .collect(),
    }
}

/// Of `rows` rows, those that `indices` name.
pub fn hits(rows: usize, indices: &[u32]) -> Vec<bool> {
    let mut hit = vec![false; rows];
    for &i in indices {
        if let Some(h) = hit.get_mut(i as usize) {
            *h = true;
        }
    }
    hit
}

/// The rows of `batch` where `mask` is set.
pub fn rows_where(batch: &RecordBatch, mask: &[bool]) -> Result<RecordBatch> {
    Ok(arrow::compute::filter_record_batch(
        batch,
        &BooleanArray::from(mask.to_vec()),
    )?)
}

/// A join input must be append-only: a retraction would have to take back
/// pairs, which the joins do not do.
pub fn check_append_only(input: &StreamBatch, operator: &str) -> Result<()> {
    if let Some(changes) = &input.changes
        && !changes.all_inserts()
    {
        return not_impl_err!(
            "{operator} takes appended rows only, and an input is an updating stream (-U/+U/-D); join before the updating aggregate or join, or make it windowed"
        );
    }
    Ok(())
}

/// Output rows with their watermarks and, for an updating join, their changes.
#[derive(Default)]
pub struct Output {
    batches: Vec<RecordBatch>,
    watermarks: Vec<RowWatermarks>,
    changes: Vec<Change>,
    counts: Vec<usize>,
}

impl Output {
    /// Add `rows` with `watermarks`, each one change `change`.
    pub fn push(&mut self, rows: RecordBatch, watermarks: RowWatermarks, change: Change) {
        if rows.num_rows() > 0 {
            self.counts.push(rows.num_rows());
            self.changes.push(change);
            self.batches.push(rows);
            self.watermarks.push(watermarks);
        }
    }

    /// Push everything added to `out` as one batch of `schema` (with a change
    /// column when `updating`), if anything was.
    pub fn emit(self, schema: &SchemaRef, updating: bool, out: &mut Vec<Event>) -> Result<()> {
        if let Some(batch) = self.finish(schema, updating)? {
            out.push(Event::Data(batch));
        }
        Ok(())
    }

    /// Everything added, as one batch of `schema`: with a change column when
    /// `updating`. `None` when nothing was added.
    fn finish(self, schema: &SchemaRef, updating: bool) -> Result<Option<StreamBatch>> {
        if self.batches.is_empty() {
            return Ok(None);
        }
        let batch = arrow::compute::concat_batches(schema, &self.batches)?;
        let watermarks = concat_watermarks(&self.watermarks, &self.counts);
        let changes = updating.then(|| {
            Changes::from_changes(
                self.changes
                    .iter()
                    .zip(&self.counts)
                    .flat_map(|(c, n)| std::iter::repeat_n(*c, *n)),
            )
        });
        Ok(Some(StreamBatch {
            batch,
            watermarks,
            changes,
        }))
    }
}

/// Row watermarks of consecutive parts of `counts` rows, as one.
fn concat_watermarks(parts: &[RowWatermarks], counts: &[usize]) -> RowWatermarks {
    if let [RowWatermarks::Constant(first), rest @ ..] = parts
        && rest
            .iter()
            .all(|w| matches!(w, RowWatermarks::Constant(c) if c == first))
    {
        return RowWatermarks::Constant(*first);
    }
    let mut values = Vec::with_capacity(counts.iter().sum());
    for (part, &count) in parts.iter().zip(counts) {
        values.extend((0..count).map(|i| part.get(i)));
    }
    RowWatermarks::PerRow(Arc::new(arrow::array::Int64Array::from(values)))
}

/// Check that column `index` of a join input's `schema` is a TIMESTAMP;
/// `why` says what the operator needs it for, and the fix.
pub fn check_timestamp(schema: &Schema, index: usize, why: &str) -> Result<()> {
    let Some(field) = schema.fields().get(index) else {
        return internal_err!(
            "column {index} is out of a join input of {} columns",
            schema.fields().len()
        );
    };
    match field.data_type() {
        DataType::Timestamp(_, _) => Ok(()),
        other => plan_err!("{why}, and {} is {other}", field.name()),
    }
}

/// A signed length of event time, for EXPLAIN (`-5s`, `1.5s`).
pub fn show_nanos(nanos: Nanos) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    format!(
        "{sign}{:?}",
        std::time::Duration::from_nanos(nanos.unsigned_abs())
    )
}

/// The late-row policy of a join's inputs, for EXPLAIN.
pub fn late_policy(late: &[LateRows; 2]) -> String {
    let [left, right] = late;
    let (left, right) = (left.policy(), right.policy());
    if left == right {
        left
    } else {
        format!("left {left}, right {right}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, RandomState};

    #[test]
    fn keys_compare_and_hash_by_their_bytes_inline_or_boxed() {
        let short = Key::new(&[1, 2, 3]);
        let long = Key::new(&[7; INLINE_KEY + 1]);
        assert!(matches!(short, Key::Inline { .. }) && matches!(long, Key::Boxed(_)));
        assert_eq!(short, Key::new(&[1, 2, 3]));
        assert_ne!(
            short,
            Key::new(&[1, 2, 3, 0]),
            "trailing zeros are not the same key"
        );
        assert_eq!(long, Key::new(&[7; INLINE_KEY + 1]));
        assert_eq!(long.as_bytes().len(), INLINE_KEY + 1);
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(&short), hasher.hash_one(Key::new(&[1, 2, 3])));
        assert_eq!(Key::default().as_bytes(), &[] as &[u8]);
    }
}

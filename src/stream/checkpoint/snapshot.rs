//! One operator's state at a checkpoint, and its bytes.
//!
//! An operator names each part of its state (`"window_partials"`,
//! `"join_left"`) and gives it as an Arrow batch, or as a few integers
//! (watermarks, counters). The bytes are Arrow IPC streams, one a part,
//! each after its name and length, so a checkpoint of any operator is read
//! back by the same few lines and a part of the wrong shape is an error
//! naming the part, not a panic.
//!
//! A large state can come in *pieces* (a window aggregate's panes): named
//! batches an operator either gives again, changed, or marks unchanged since
//! its last snapshot. An unchanged piece is not written again: the state file
//! refers to the earlier checkpoint that holds it, so a checkpoint costs what
//! changed since the last one, not the whole state.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use datafusion::common::{exec_datafusion_err, exec_err, internal_err};
use datafusion::error::Result;

/// The name of the part that holds a snapshot's integers.
const VALUES_PART: &str = "__values";

/// The name of the part that lists the pieces held by earlier checkpoints.
const STORED_PART: &str = "__stored";

/// What comes before a piece's name among a state file's parts.
const PIECE_PREFIX: &str = "__piece:";

/// One piece of a state.
#[derive(Debug, Clone)]
enum Piece {
    /// Its rows, to be written in this checkpoint (or read back).
    Rows(RecordBatch),
    /// Unchanged since the operator's last snapshot, where it was.
    Unchanged,
    /// Held by the state file of an earlier checkpoint, by number.
    Stored(u64),
}

/// The named parts of one operator's state.
#[derive(Debug, Default, Clone)]
pub struct StateSnapshot {
    batches: BTreeMap<String, RecordBatch>,
    values: BTreeMap<String, Vec<i64>>,
    pieces: BTreeMap<String, Piece>,
}

impl StateSnapshot {
    /// Keep `batch` as part `name`.
    pub fn put_batch(&mut self, name: &str, batch: RecordBatch) {
        self.batches.insert(name.to_string(), batch);
    }

    /// Keep `values` as part `name`.
    pub fn put_values(&mut self, name: &str, values: Vec<i64>) {
        self.values.insert(name.to_string(), values);
    }

    /// Keep one integer as part `name`.
    pub fn put_value(&mut self, name: &str, value: i64) {
        self.put_values(name, vec![value]);
    }

    /// Keep `batch` as piece `name`, changed since the last snapshot (or new).
    pub fn put_piece(&mut self, name: String, batch: RecordBatch) {
        self.pieces.insert(name, Piece::Rows(batch));
    }

    /// Piece `name` is as the operator's last snapshot gave it: the
    /// checkpoint refers to the one that holds it instead of writing it again.
    pub fn keep_piece(&mut self, name: String) {
        self.pieces.insert(name, Piece::Unchanged);
    }

    /// Piece `name` (read back: every piece has its rows).
    pub fn piece(&self, name: &str) -> Result<&RecordBatch> {
        match self.pieces.get(name) {
            Some(Piece::Rows(batch)) => Ok(batch),
            Some(_) => exec_err!("the checkpoint's state piece '{name}' was not read back"),
            None => exec_err!("the checkpoint has no state piece '{name}'"),
        }
    }

    /// The names of its pieces, in order.
    pub fn piece_names(&self) -> impl Iterator<Item = &str> {
        self.pieces.keys().map(String::as_str)
    }

    /// Whether it has pieces (a state of a format before pieces has none).
    pub fn has_pieces(&self) -> bool {
        !self.pieces.is_empty()
    }

    /// Where each piece is: `id` (the checkpoint being taken, or the one
    /// read back) for those with rows, the earlier checkpoint for stored
    /// ones; an unchanged piece is looked up in `before` (where the last
    /// snapshot's pieces were) and from now on refers to it.
    pub fn locate(&mut self, id: u64, before: &BTreeMap<String, u64>) -> Result<BTreeMap<String, u64>> {
        let mut at = BTreeMap::new();
        for (name, piece) in &mut self.pieces {
            let held = match piece {
                Piece::Rows(_) => id,
                Piece::Stored(earlier) => *earlier,
                Piece::Unchanged => match before.get(name) {
                    Some(&earlier) => {
                        *piece = Piece::Stored(earlier);
                        earlier
                    }
                    None => {
                        return internal_err!(
                            "state piece '{name}' is unchanged, but no checkpoint holds it"
                        );
                    }
                },
            };
            at.insert(name.clone(), held);
        }
        Ok(at)
    }

    /// Give each piece held by an earlier checkpoint its rows: `read(id,
    /// name)` reads piece `name` from checkpoint `id`.
    pub fn resolve(&mut self, mut read: impl FnMut(u64, &str) -> Result<RecordBatch>) -> Result<()> {
        for (name, piece) in &mut self.pieces {
            match piece {
                Piece::Rows(_) => {}
                Piece::Stored(id) => *piece = Piece::Rows(read(*id, name)?),
                Piece::Unchanged => {
                    return internal_err!("state piece '{name}' is unchanged, but not located");
                }
            }
        }
        Ok(())
    }

    /// The earlier checkpoints that hold some of its pieces.
    pub fn stored_in(&self) -> std::collections::BTreeSet<u64> {
        self.pieces
            .values()
            .filter_map(|p| match p {
                Piece::Stored(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// Part `name`, a batch.
    pub fn batch(&self, name: &str) -> Result<&RecordBatch> {
        self.batches
            .get(name)
            .ok_or_else(|| exec_datafusion_err!("the checkpoint has no state part '{name}'"))
    }

    /// Part `name`, integers.
    pub fn values(&self, name: &str) -> Result<&[i64]> {
        self.values
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| exec_datafusion_err!("the checkpoint has no state value '{name}'"))
    }

    /// Part `name`, one integer.
    pub fn value(&self, name: &str) -> Result<i64> {
        match self.values(name)? {
            [v] => Ok(*v),
            other => exec_err!(
                "the checkpoint's state value '{name}' has {} numbers, not one",
                other.len()
            ),
        }
    }

    /// Whether it holds nothing (a stateless operator).
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.values.is_empty() && self.pieces.is_empty()
    }

    /// Rows over every batch part (for the report of what a checkpoint holds).
    pub fn rows(&self) -> usize {
        self.batches.values().map(RecordBatch::num_rows).sum()
    }

    /// The bytes: each part's name and length, then the part as an Arrow IPC
    /// stream; then the pieces with rows, the list of the pieces held by
    /// earlier checkpoints, and the integers, as one part each. Unchanged
    /// pieces must have been located first ([`StateSnapshot::locate`]).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (name, batch) in &self.batches {
            write_part(&mut out, name, batch)?;
        }
        let mut stored: Vec<(&str, u64)> = Vec::new();
        for (name, piece) in &self.pieces {
            match piece {
                Piece::Rows(batch) => write_part(&mut out, &format!("{PIECE_PREFIX}{name}"), batch)?,
                Piece::Stored(id) => stored.push((name, *id)),
                Piece::Unchanged => {
                    return internal_err!("state piece '{name}' is unchanged, but not located");
                }
            }
        }
        if !stored.is_empty() {
            write_part(&mut out, STORED_PART, &stored_batch(&stored)?)?;
        }
        if !self.values.is_empty() {
            write_part(&mut out, VALUES_PART, &values_batch(&self.values)?)?;
        }
        Ok(out)
    }

    /// Read back what [`StateSnapshot::encode`] wrote.
    pub fn decode(mut bytes: &[u8]) -> Result<Self> {
        let mut snapshot = Self::default();
        while !bytes.is_empty() {
            let name = String::from_utf8(take(&mut bytes)?.to_vec())
                .map_err(|_| exec_datafusion_err!("a state part's name is not UTF-8"))?;
            let body = take(&mut bytes)?;
            let mut reader = StreamReader::try_new(body, None)?;
            let batch = match reader.next() {
                Some(batch) => batch?,
                None => return exec_err!("state part '{name}' has no rows batch"),
            };
            if name == VALUES_PART {
                snapshot.values = values_of(&batch)?;
            } else if name == STORED_PART {
                snapshot.pieces.extend(stored_of(&batch)?);
            } else if let Some(piece) = name.strip_prefix(PIECE_PREFIX) {
                snapshot.pieces.insert(piece.to_string(), Piece::Rows(batch));
            } else {
                snapshot.batches.insert(name, batch);
            }
        }
        Ok(snapshot)
    }
}

/// Rows of integers as a batch with columns `names` (a state's bookkeeping:
/// bounds, counts, times).
pub fn int_columns(names: &[&str], rows: impl Iterator<Item = Vec<i64>>) -> Result<RecordBatch> {
    let mut columns: Vec<Vec<i64>> = vec![Vec::new(); names.len()];
    for row in rows {
        if row.len() != names.len() {
            return exec_err!("a state row has {} numbers, not {}", row.len(), names.len());
        }
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value);
        }
    }
    let fields: Vec<Field> = names
        .iter()
        .map(|n| Field::new(*n, DataType::Int64, false))
        .collect();
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(Int64Array::from(c)) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// The first `width` columns of `batch`, integers, row by row.
pub fn int_rows(batch: &RecordBatch, width: usize) -> Result<Vec<Vec<i64>>> {
    let columns = (0..width)
        .map(|i| {
            batch
                .columns()
                .get(i)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| exec_datafusion_err!("a state part lacks its integer column {i}"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((0..batch.num_rows())
        .map(|row| columns.iter().map(|c| c.value(row)).collect())
        .collect())
}

/// `batch` with more columns after its own: each of `pieces` gives the same
/// columns for its run of rows (pieces in row order), concatenated.
pub fn with_columns(batch: RecordBatch, pieces: Vec<Vec<ArrayRef>>) -> Result<RecordBatch> {
    let Some(width) = pieces.first().map(Vec::len) else {
        return Ok(batch);
    };
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns = batch.columns().to_vec();
    for j in 0..width {
        let parts: Vec<&dyn Array> = pieces
            .iter()
            .filter_map(|p| p.get(j))
            .map(|a| a.as_ref())
            .collect();
        if parts.len() != pieces.len() {
            return exec_err!("the pieces of a state part have different columns");
        }
        let column = arrow::compute::concat(&parts)?;
        fields.push(Field::new(format!("c{j}"), column.data_type().clone(), true));
        columns.push(column);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

fn write_part(out: &mut Vec<u8>, name: &str, batch: &RecordBatch) -> Result<()> {
    let mut body = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut body, batch.schema_ref())?;
        writer.write(batch)?;
        writer.finish()?;
    }
    put(out, name.as_bytes());
    put(out, &body);
    Ok(())
}

/// `bytes` after its length.
fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The next length-prefixed piece of `bytes`.
fn take<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8]> {
    let truncated = || exec_datafusion_err!("the state file is truncated");
    let (len, rest) = bytes.split_at_checked(8).ok_or_else(truncated)?;
    let len = u64::from_le_bytes(len.try_into().map_err(|_| truncated())?) as usize;
    let (piece, rest) = rest.split_at_checked(len).ok_or_else(truncated)?;
    *bytes = rest;
    Ok(piece)
}

/// Integers by name as rows `(name, value)`, a name's values in order.
fn values_batch(values: &BTreeMap<String, Vec<i64>>) -> Result<RecordBatch> {
    let (names, numbers): (Vec<&str>, Vec<i64>) = values
        .iter()
        .flat_map(|(name, vs)| vs.iter().map(move |v| (name.as_str(), *v)))
        .unzip();
    // A name with no values still exists: it is kept as a NULL row.
    let empty: Vec<&str> = values
        .iter()
        .filter(|(_, vs)| vs.is_empty())
        .map(|(n, _)| n.as_str())
        .collect();
    let names: Vec<&str> = names.into_iter().chain(empty.iter().copied()).collect();
    let numbers: Int64Array = numbers
        .into_iter()
        .map(Some)
        .chain(empty.iter().map(|_| None))
        .collect();
    let schema = Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("value", DataType::Int64, true),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(StringArray::from(names)), Arc::new(numbers)],
    )?)
}

/// Pieces held by earlier checkpoints as rows `(name, checkpoint)`.
fn stored_batch(stored: &[(&str, u64)]) -> Result<RecordBatch> {
    let schema = Schema::new(vec![
        Field::new("piece", DataType::Utf8, false),
        Field::new("checkpoint", DataType::Int64, false),
    ]);
    let names: StringArray = stored.iter().map(|(n, _)| Some(*n)).collect();
    let ids: Int64Array = stored.iter().map(|(_, id)| Some(*id as i64)).collect();
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(names), Arc::new(ids)],
    )?)
}

fn stored_of(batch: &RecordBatch) -> Result<Vec<(String, Piece)>> {
    let (Some(names), Some(ids)) = (
        batch.columns().first().and_then(|c| c.as_string_opt::<i32>()),
        batch
            .columns()
            .get(1)
            .and_then(|c| c.as_primitive_opt::<Int64Type>()),
    ) else {
        return exec_err!("the state's list of stored pieces has the wrong columns");
    };
    (0..batch.num_rows())
        .map(|i| match u64::try_from(ids.value(i)) {
            Ok(id) => Ok((names.value(i).to_string(), Piece::Stored(id))),
            Err(_) => exec_err!("state piece '{}' is held by no valid checkpoint", names.value(i)),
        })
        .collect()
}

fn values_of(batch: &RecordBatch) -> Result<BTreeMap<String, Vec<i64>>> {
    let (Some(names), Some(numbers)) = (
        batch.column(0).as_string_opt::<i32>(),
        batch.column(1).as_primitive_opt::<Int64Type>(),
    ) else {
        return exec_err!("the state's values part has the wrong columns");
    };
    let mut values: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for i in 0..batch.num_rows() {
        let entry = values.entry(names.value(i).to_string()).or_default();
        if numbers.is_valid(i) {
            entry.push(numbers.value(i));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_back_as_they_were_kept() {
        let mut snapshot = StateSnapshot::default();
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![Some("a"), None]))])
            .expect("ok");
        snapshot.put_batch("keys", batch.clone());
        snapshot.put_value("watermark", -5);
        snapshot.put_values("ends", vec![1, 2, 3]);
        snapshot.put_values("none", vec![]);
        let back = StateSnapshot::decode(&snapshot.encode().expect("ok")).expect("ok");
        assert_eq!(back.batch("keys").expect("ok"), &batch);
        assert_eq!(back.value("watermark").expect("ok"), -5);
        assert_eq!(back.values("ends").expect("ok"), &[1, 2, 3]);
        assert!(back.values("none").expect("ok").is_empty());
        assert!(back.batch("other").is_err());
    }

    #[test]
    fn an_unchanged_piece_refers_to_the_checkpoint_that_holds_it() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let rows = |v: i64| {
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(vec![v]))]).expect("ok")
        };
        let many = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(0..10_000))],
        )
        .expect("ok");
        // Checkpoint 4 writes both pieces.
        let mut first = StateSnapshot::default();
        first.put_piece("a".into(), many.clone());
        first.put_piece("b".into(), rows(2));
        let at = first.locate(4, &BTreeMap::new()).expect("located");
        let first_bytes = first.encode().expect("ok");
        // Checkpoint 5: `a` unchanged, `b` changed.
        let mut second = StateSnapshot::default();
        second.keep_piece("a".into());
        second.put_piece("b".into(), rows(3));
        let at = second.locate(5, &at).expect("located");
        assert_eq!(at, BTreeMap::from([("a".into(), 4), ("b".into(), 5)]));
        assert_eq!(second.stored_in(), [4].into());
        let bytes = second.encode().expect("ok");
        assert!(
            bytes.len() < 10_000,
            "piece a is not written again: {} bytes",
            bytes.len()
        );
        let mut back = StateSnapshot::decode(&bytes).expect("ok");
        assert!(back.piece("a").is_err(), "not read back yet");
        let earlier = StateSnapshot::decode(&first_bytes).expect("ok");
        back.resolve(|id, name| {
            assert_eq!(id, 4);
            earlier.piece(name).cloned()
        })
        .expect("resolved");
        assert_eq!(back.piece("a").expect("ok"), &many);
        assert_eq!(back.piece("b").expect("ok"), &rows(3));
        // An unchanged piece no checkpoint holds is our bug, not a silent gap.
        let mut lost = StateSnapshot::default();
        lost.keep_piece("c".into());
        assert!(lost.locate(6, &at).is_err());
        assert!(lost.encode().is_err());
    }

    #[test]
    fn truncated_bytes_are_an_error() {
        let mut snapshot = StateSnapshot::default();
        snapshot.put_value("watermark", 7);
        let bytes = snapshot.encode().expect("ok");
        let err = StateSnapshot::decode(&bytes[..bytes.len() - 3]).expect_err("an error");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}

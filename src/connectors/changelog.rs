//! Changelog input: lines that are changes to a table, not appended rows, in
//! three formats.
//!
//! `'format' = 'changelog-json'`: Sluice's own `--format changelog` output,
//! one row a line with its change in `op` (`{"op":"-U","k":"a","n":1}`), so
//! one query's changelog can feed another. `'format' = 'changelog-csv'`: the
//! same in CSV, as `--format csv` prints an updating query (`op,k,n` then
//! `-U,a,1`), decoded by arrow's CSV decoder with `op` the first field.
//!
//! `'format' = 'debezium-json'`: Debezium's JSON envelope, one message a
//! line, `{"before": {...}, "after": {...}, "op": "c"}`, the row's columns
//! inside `before` and `after` (other fields, such as `source` and `ts_ms`,
//! are ignored). Decoded by arrow's JSON decoder into the envelope, then
//! unfolded into rows with their changes:
//!
//! | `op` | rows |
//! |---|---|
//! | `c` (create), `r` (snapshot read) | `after` as an insert (`+I`) |
//! | `u` (update) | `before` taken back (`-U`), then `after` (`+U`) |
//! | `d` (delete) | `before` taken back (`-D`) |
//!
//! The unfolded batch has the change first, as [`CHANGE_CODE_COLUMN`], an
//! Int8 code (the continuous executor's own encoding of `+I`, `-U`, `+U`,
//! `-D`: 0 to 3), then the table's columns. A message with no `op`, an
//! unknown one, or an update or delete without `before` is an error (the
//! line decoder names its line).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int8Array, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;

/// The column a changelog source's batches carry each row's change in,
/// before the table's columns.
pub const CHANGE_CODE_COLUMN: &str = "__sluice_change";

/// Change codes, as the continuous executor's `Change` numbers them.
const INSERT: i8 = 0;
const UPDATE_BEFORE: i8 = 1;
const UPDATE_AFTER: i8 = 2;
const DELETE: i8 = 3;

/// The envelope arrow decodes: `before` and `after` as structs of the
/// columns read, and `op`.
pub fn envelope_schema(columns: &Schema) -> SchemaRef {
    let row = DataType::Struct(nullable(columns.fields()));
    Arc::new(Schema::new(vec![
        Field::new("before", row.clone(), true),
        Field::new("after", row, true),
        Field::new("op", DataType::Utf8, true),
    ]))
}

/// What `'format' = 'changelog-json'` decodes: `op`, then the columns read.
pub fn op_row_schema(columns: &Schema) -> SchemaRef {
    let op = Arc::new(Field::new("op", DataType::Utf8, true));
    Arc::new(Schema::new(
        std::iter::once(op)
            .chain(nullable(columns.fields()).iter().cloned())
            .collect::<Vec<_>>(),
    ))
}

/// Rows decoded with their `op` (`+I`, `-U`, `+U`, `-D`) first, as batches
/// of `schema` (from [`changelog_schema`]).
pub fn with_change_codes(rows: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let op = rows.column(0).as_string::<i32>();
    let codes = (0..rows.num_rows())
        .map(|row| match op.is_valid(row).then(|| op.value(row)) {
            Some("+I") => Ok(INSERT),
            Some("-U") => Ok(UPDATE_BEFORE),
            Some("+U") => Ok(UPDATE_AFTER),
            Some("-D") => Ok(DELETE),
            Some(other) => Err(ArrowError::JsonError(format!(
                "a changelog row has 'op' = '{other}'; expected '+I', '-U', '+U' or '-D'"
            ))),
            None => Err(ArrowError::JsonError(
                "a changelog row has no 'op' ('+I', '-U', '+U' or '-D'): are these plain rows ('format' = 'json' or 'csv')?".into(),
            )),
        })
        .collect::<Result<Int8Array, ArrowError>>()?;
    let columns: Vec<ArrayRef> = std::iter::once(Arc::new(codes) as ArrayRef)
        .chain(rows.columns().iter().skip(1).cloned())
        .collect();
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// The unfolded batches' schema: the change code, then `columns`.
pub fn changelog_schema(columns: &Schema) -> SchemaRef {
    let change = Arc::new(Field::new(CHANGE_CODE_COLUMN, DataType::Int8, false));
    Arc::new(Schema::new(
        std::iter::once(change)
            .chain(columns.fields().iter().cloned())
            .collect::<Vec<_>>(),
    ))
}

/// The rows and changes of decoded `envelope` messages, as batches of
/// `schema` (from [`changelog_schema`]).
pub fn unfold(envelope: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let before = envelope.column(0).as_struct();
    let after = envelope.column(1).as_struct();
    let op = envelope.column(2).as_string::<i32>();
    // (0: before, 1: after, row) per output row, and its change.
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(envelope.num_rows());
    let mut codes: Vec<i8> = Vec::with_capacity(envelope.num_rows());
    let needs = |side: &StructArray, name: &str, row: usize, what: &str| {
        if side.is_valid(row) {
            Ok(())
        } else {
            Err(ArrowError::JsonError(format!(
                "a Debezium {what} message ('op' = '{}') needs '{name}', the row as it was",
                op.value(row)
            )))
        }
    };
    for row in 0..envelope.num_rows() {
        match op.is_valid(row).then(|| op.value(row)) {
            Some("c" | "r") => {
                if !after.is_valid(row) {
                    return Err(ArrowError::JsonError(format!(
                        "a Debezium insert ('op' = '{}') needs 'after', the new row",
                        op.value(row)
                    )));
                }
                picks.push((1, row));
                codes.push(INSERT);
            }
            Some("u") => {
                needs(before, "before", row, "update")?;
                needs(after, "after", row, "update")?;
                picks.extend([(0, row), (1, row)]);
                codes.extend([UPDATE_BEFORE, UPDATE_AFTER]);
            }
            Some("d") => {
                needs(before, "before", row, "delete")?;
                picks.push((0, row));
                codes.push(DELETE);
            }
            Some(other) => {
                return Err(ArrowError::JsonError(format!(
                    "a Debezium message has 'op' = '{other}'; expected 'c', 'r', 'u' or 'd'"
                )));
            }
            None => {
                return Err(ArrowError::JsonError(
                    "a Debezium message has no 'op' ('c', 'r', 'u' or 'd'): is the format 'json'?".into(),
                ));
            }
        }
    }
    let rows = arrow::compute::interleave(&[before as &dyn Array, after as &dyn Array], &picks)?;
    let rows = rows.as_struct();
    let columns: Vec<ArrayRef> = std::iter::once(Arc::new(Int8Array::from(codes)) as ArrayRef)
        .chain(rows.columns().iter().cloned())
        .collect();
    // The declared columns may be NOT NULL where the envelope's are not.
    RecordBatch::try_new(Arc::clone(schema), columns)
}

fn nullable(fields: &Fields) -> Fields {
    fields
        .iter()
        .map(|f| Arc::new(f.as_ref().clone().with_nullable(true)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Int64Type;

    fn decode(lines: &str) -> Result<RecordBatch, ArrowError> {
        let columns = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]);
        let mut decoder = arrow::json::ReaderBuilder::new(envelope_schema(&columns))
            .build_decoder()
            .expect("a decoder");
        decoder.decode(lines.as_bytes())?;
        let envelope = decoder.flush()?.expect("rows");
        unfold(&envelope, &changelog_schema(&columns))
    }

    #[test]
    fn messages_unfold_into_rows_with_their_changes() {
        let batch = decode(concat!(
            r#"{"before":null,"after":{"id":1,"name":"a"},"op":"c","source":{"db":"x"},"ts_ms":5}"#,
            "\n",
            r#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"},"op":"u"}"#,
            "\n",
            r#"{"before":{"id":1,"name":"b"},"after":null,"op":"d"}"#,
            "\n",
            r#"{"after":{"id":2,"name":"z"},"op":"r"}"#,
            "\n",
        ))
        .expect("decodes");
        let codes: Vec<i8> = batch
            .column(0)
            .as_primitive::<arrow::datatypes::Int8Type>()
            .values()
            .to_vec();
        assert_eq!(codes, [INSERT, UPDATE_BEFORE, UPDATE_AFTER, DELETE, INSERT]);
        let ids: Vec<i64> = batch.column(1).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(ids, [1, 1, 1, 1, 2]);
        let names: Vec<&str> = batch.column(2).as_string::<i32>().iter().flatten().collect();
        assert_eq!(names, ["a", "a", "b", "b", "z"]);
    }

    #[test]
    fn changelog_json_rows_keep_their_op_as_a_code() {
        let columns = Schema::new(vec![Field::new("k", DataType::Utf8, true)]);
        let mut decoder = arrow::json::ReaderBuilder::new(op_row_schema(&columns))
            .build_decoder()
            .expect("a decoder");
        decoder
            .decode(b"{\"op\":\"+I\",\"k\":\"a\"}\n{\"op\":\"-D\",\"k\":\"a\"}\n")
            .expect("decodes");
        let rows = decoder.flush().expect("flushes").expect("rows");
        let batch = with_change_codes(&rows, &changelog_schema(&columns)).expect("codes");
        let codes: Vec<i8> = batch
            .column(0)
            .as_primitive::<arrow::datatypes::Int8Type>()
            .values()
            .to_vec();
        assert_eq!(codes, [INSERT, DELETE]);
        decoder.decode(b"{\"op\":\"x\",\"k\":\"a\"}\n").expect("decodes");
        let bad = decoder.flush().expect("flushes").expect("rows");
        let error = with_change_codes(&bad, &changelog_schema(&columns)).expect_err("bad op");
        assert!(error.to_string().contains("'op' = 'x'"), "{error}");
    }

    #[test]
    fn a_message_without_op_or_before_is_an_error_that_says_so() {
        let missing = decode(r#"{"after":{"id":1,"name":"a"}}"#).expect_err("no op");
        assert!(missing.to_string().contains("no 'op'"), "{missing}");
        let unknown = decode(r#"{"after":{"id":1,"name":"a"},"op":"x"}"#).expect_err("bad op");
        assert!(unknown.to_string().contains("'op' = 'x'"), "{unknown}");
        let update = decode(r#"{"after":{"id":1,"name":"a"},"op":"u"}"#).expect_err("no before");
        assert!(update.to_string().contains("needs 'before'"), "{update}");
    }
}

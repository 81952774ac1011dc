//! JSON numbers read into integer columns, exactly.
//!
//! arrow-json reads a number with a fraction into an integer column by
//! parsing it as a float and truncating it (`5.7` becomes `5`, silently). To
//! refuse it instead without a JSON parser of our own, the decoder is given
//! the integer columns as `DECIMAL(38, 18)` (arrow-json parses the number's
//! text into it digit by digit, integers beyond 2^53 exactly), and
//! [`IntegerColumns::restore`] checks that each value has no fraction before
//! casting it to the declared type (a value out of the type's range is an
//! error too). Integers inside struct columns (a `ROW`, a Debezium message's
//! `before` and `after`) are decoded and checked the same way. Fractions below
//! 10^-18 are beyond the decimal's scale and are not seen.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StructArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Decimal128Type, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;

/// The decimal integer columns are decoded as: 20 digits before the point
/// (`u64::MAX` has 20), 18 after.
const DECODED: DataType = DataType::Decimal128(38, SCALE as i8);

/// Digits after the point in [`DECODED`].
const SCALE: u32 = 18;

/// The integer columns of a schema and how to decode them exactly.
#[derive(Debug, Clone)]
pub struct IntegerColumns {
    /// The schema to give arrow-json: integer columns as [`DECODED`].
    decode_schema: SchemaRef,
    /// The schema to return.
    schema: SchemaRef,
    /// The indices of the columns that are integers or hold some.
    columns: Vec<usize>,
}

impl IntegerColumns {
    /// The columns of `schema` that are integers or structs holding some,
    /// or `None` if it has none.
    pub fn new(schema: &SchemaRef) -> Option<Self> {
        let columns: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| holds_integers(f.data_type()))
            .map(|(i, _)| i)
            .collect();
        if columns.is_empty() {
            return None;
        }
        Some(Self {
            decode_schema: Arc::new(Schema::new_with_metadata(
                decoded_fields(schema.fields()),
                schema.metadata().clone(),
            )),
            schema: Arc::clone(schema),
            columns,
        })
    }

    /// The schema arrow-json decodes into.
    pub fn decode_schema(&self) -> &SchemaRef {
        &self.decode_schema
    }

    /// A decoded batch with its integer columns checked and cast back to
    /// their declared types. A value with a fraction, or out of its type's
    /// range, is an error naming the column (the caller names the line).
    pub fn restore(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for &i in &self.columns {
            columns[i] = restore_column(batch.column(i), self.schema.field(i))?;
        }
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
    }
}

/// Whether a column of type `t` is an integer or a struct holding one,
/// which arrow-json would truncate a fraction into.
pub fn holds_integers(t: &DataType) -> bool {
    match t {
        DataType::Struct(fields) => fields.iter().any(|f| holds_integers(f.data_type())),
        t => t.is_integer(),
    }
}

/// `fields` as decoded: integers as [`DECODED`], in structs too.
fn decoded_fields(fields: &Fields) -> Fields {
    fields
        .iter()
        .map(|f| {
            let decoded = match f.data_type() {
                DataType::Struct(inner) => DataType::Struct(decoded_fields(inner)),
                t if t.is_integer() => DECODED,
                t => t.clone(),
            };
            Arc::new(f.as_ref().clone().with_data_type(decoded))
        })
        .collect()
}

/// `decoded` (a column decoded as [`DECODED`], or a struct of such columns)
/// checked and cast to `field`'s type: a value with a fraction, or out of
/// the type's range, is an error naming the (innermost) column.
pub fn restore_column(decoded: &ArrayRef, field: &Field) -> Result<ArrayRef, ArrowError> {
    if let DataType::Struct(fields) = field.data_type() {
        let inner = decoded.as_struct_opt().ok_or_else(|| {
            ArrowError::JsonError(format!("column '{}' was not decoded as a struct", field.name()))
        })?;
        let columns = fields
            .iter()
            .zip(inner.columns())
            .map(|(f, c)| match holds_integers(f.data_type()) {
                true => restore_column(c, f),
                false => Ok(Arc::clone(c)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let restored = StructArray::try_new(fields.clone(), columns, inner.nulls().cloned())?;
        return Ok(Arc::new(restored));
    }
    let values = decoded.as_primitive_opt::<Decimal128Type>().ok_or_else(|| {
        ArrowError::JsonError(format!("column '{}' was not decoded as a decimal", field.name()))
    })?;
    let unit = 10i128.pow(SCALE);
    if let Some(row) = (0..values.len()).find(|&r| values.is_valid(r) && values.value(r) % unit != 0) {
        let text = values.value_as_string(row);
        let text = text.trim_end_matches('0');
        return Err(ArrowError::JsonError(format!(
            "column '{}' is {} but the value is {text}, a number with a fraction: declare the column DOUBLE or DECIMAL(p, s) to read fractions",
            field.name(),
            sql_name(field.data_type()),
        )));
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(decoded, field.data_type(), &options).map_err(|e| {
        ArrowError::JsonError(format!(
            "column '{}' is {}: {e}",
            field.name(),
            sql_name(field.data_type())
        ))
    })
}

/// The SQL name of an integer type, as the user declared it.
fn sql_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int8 => "TINYINT",
        DataType::Int16 => "SMALLINT",
        DataType::Int32 => "INT",
        DataType::Int64 => "BIGINT",
        DataType::UInt8 => "TINYINT UNSIGNED",
        DataType::UInt16 => "SMALLINT UNSIGNED",
        DataType::UInt32 => "INT UNSIGNED",
        DataType::UInt64 => "BIGINT UNSIGNED",
        _ => "an integer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Int8Type, Int64Type};

    fn decode(schema: &SchemaRef, text: &str) -> Result<RecordBatch, ArrowError> {
        let ints = IntegerColumns::new(schema).expect("integer columns");
        let mut decoder =
            arrow::json::ReaderBuilder::new(Arc::clone(ints.decode_schema())).build_decoder()?;
        decoder.decode(text.as_bytes())?;
        let batch = decoder.flush()?.expect("rows");
        ints.restore(&batch)
    }

    #[test]
    fn integers_are_exact_and_fractions_are_refused() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("t", DataType::Int8, true),
        ]));
        let batch = decode(
            &schema,
            "{\"a\": 9007199254740993, \"s\": \"x\", \"t\": 1}\n{\"a\": -5, \"t\": null}\n{\"a\": 5.0, \"t\": \"7\"}\n{\"a\": 2e3}\n",
        )
        .expect("integers");
        assert_eq!(batch.schema(), schema);
        let a = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(a.values(), &[9007199254740993, -5, 5, 2000]);
        assert_eq!(batch.column(2).as_primitive::<Int8Type>().value(2), 7);
        assert!(batch.column(2).is_null(1));

        let err = decode(&schema, "{\"a\": 1}\n{\"a\": 5.7}\n").expect_err("fraction");
        assert!(
            err.to_string().contains(
                "column 'a' is BIGINT but the value is 5.7, a number with a fraction: declare the column DOUBLE or DECIMAL"
            ),
            "{err}"
        );
        let nested = Arc::new(Schema::new(vec![Field::new(
            "r",
            DataType::Struct(
                vec![
                    Field::new("a", DataType::Int64, true),
                    Field::new("s", DataType::Utf8, true),
                ]
                .into(),
            ),
            true,
        )]));
        let batch = decode(
            &nested,
            "{\"r\": {\"a\": 9007199254740993, \"s\": \"x\"}}\n{\"r\": null}\n",
        )
        .expect("nested");
        assert_eq!(batch.schema(), nested);
        let r = batch.column(0).as_struct();
        assert_eq!(r.column(0).as_primitive::<Int64Type>().value(0), 9007199254740993);
        assert!(r.is_null(1));
        let err = decode(&nested, "{\"r\": {\"a\": 5.7}}\n").expect_err("nested fraction");
        assert!(
            err.to_string()
                .contains("column 'a' is BIGINT but the value is 5.7"),
            "{err}"
        );
        let err = decode(&schema, "{\"t\": 300}\n").expect_err("range");
        assert!(err.to_string().contains("column 't' is TINYINT: "), "{err}");
        assert!(
            IntegerColumns::new(&Arc::new(Schema::new(vec![Field::new(
                "s",
                DataType::Utf8,
                true
            )])))
            .is_none()
        );
    }
}

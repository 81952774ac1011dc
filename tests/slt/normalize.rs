//! Turning query results into sqllogictest text, the way DataFusion's own
//! sqllogictest runner does (the conformance files' expected output depends
//! on every rule here), and comparing them with the expected text.

use std::str::FromStr;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type, DecimalType, Fields,
};
use arrow::error::ArrowError;
use arrow::util::display::ArrayFormatter;
use bigdecimal::BigDecimal;
use sqllogictest::{ColumnType, Normalizer};

/// How a NULL cell is written.
const NULL: &str = "NULL";

/// A column's type letter in a `query <letters>` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SltColumnType {
    /// `B`
    Boolean,
    /// `D`: dates and times of day.
    DateTime,
    /// `I`: integers of any width and sign.
    Integer,
    /// `R`: floats and decimals.
    Float,
    /// `T`: strings (and dictionaries of strings).
    Text,
    /// `P`: timestamps.
    Timestamp,
    /// `?`: everything else.
    Another,
}

impl ColumnType for SltColumnType {
    fn from_char(value: char) -> Option<Self> {
        Some(match value {
            'B' => Self::Boolean,
            'D' => Self::DateTime,
            'I' => Self::Integer,
            'P' => Self::Timestamp,
            'R' => Self::Float,
            'T' => Self::Text,
            _ => Self::Another,
        })
    }

    fn to_char(&self) -> char {
        match self {
            Self::Boolean => 'B',
            Self::DateTime => 'D',
            Self::Integer => 'I',
            Self::Timestamp => 'P',
            Self::Float => 'R',
            Self::Text => 'T',
            Self::Another => '?',
        }
    }
}

/// The type letters of a result schema.
pub fn column_types(fields: &Fields) -> Vec<SltColumnType> {
    fields.iter().map(|f| column_type(f.data_type())).collect()
}

fn column_type(data_type: &DataType) -> SltColumnType {
    use DataType::*;
    match data_type {
        Boolean => SltColumnType::Boolean,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => SltColumnType::Integer,
        Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => {
            SltColumnType::Float
        }
        Utf8 | LargeUtf8 | Utf8View => SltColumnType::Text,
        Date32 | Date64 | Time32(_) | Time64(_) => SltColumnType::DateTime,
        Timestamp(..) => SltColumnType::Timestamp,
        Dictionary(key, value) if key.is_integer() && matches!(**value, Utf8 | LargeUtf8 | Utf8View) => {
            SltColumnType::Text
        }
        _ => SltColumnType::Another,
    }
}

/// Text replacements applied to every result cell (an absolute directory
/// shown as a stable token).
#[derive(Debug, Clone, Default)]
pub struct PathTokens {
    replacements: Vec<(String, String)>,
}

impl PathTokens {
    /// Show every occurrence of `text` as `token` (applied in the order added).
    pub fn add(&mut self, text: &str, token: &str) {
        if !text.is_empty() {
            self.replacements.push((text.to_string(), token.to_string()));
        }
    }

    fn apply(&self, cell: &mut String) {
        for (from, to) in &self.replacements {
            if cell.contains(from.as_str()) {
                *cell = cell.replace(from.as_str(), to);
            }
        }
    }
}

/// Rows of text from record batches: one cell per column, multi-line last
/// cells (EXPLAIN plans) expanded into numbered rows, paths tokenized.
pub fn convert_batches(
    batches: &[RecordBatch],
    schema: &arrow::datatypes::Schema,
    paths: &PathTokens,
) -> Result<Vec<Vec<String>>, ArrowError> {
    let mut rows = Vec::new();
    for batch in batches {
        if !schema.contains(&batch.schema()) {
            return Err(ArrowError::SchemaError(format!(
                "Schema mismatch. Previously had\n{schema:#?}\n\nGot:\n{:#?}",
                batch.schema()
            )));
        }
        for row in 0..batch.num_rows() {
            let cells = batch
                .columns()
                .iter()
                .map(|column| cell_to_string(column, row))
                .collect::<Result<Vec<_>, _>>()?;
            for mut cells in expand_row(cells) {
                cells.iter_mut().for_each(|cell| paths.apply(cell));
                rows.push(cells);
            }
        }
    }
    Ok(rows)
}

/// A last cell with several lines becomes extra one-cell rows `NN)line`, with
/// the line's leading spaces turned into `-` (sqllogictest compares rows
/// modulo surrounding whitespace, so indentation would otherwise be lost).
fn expand_row(mut row: Vec<String>) -> Vec<Vec<String>> {
    let Some(last) = row.pop() else {
        return vec![row];
    };
    if !last.contains('\n') {
        row.push(last);
        return vec![row];
    }
    let mut rows = vec![row];
    for (i, line) in last.split('\n').enumerate() {
        let content = line.trim_start();
        let indent = "-".repeat(line.len() - content.len());
        rows.push(vec![format!("{:02}){indent}{content}", i + 1)]);
    }
    rows
}

/// One cell as text.
pub fn cell_to_string(column: &ArrayRef, row: usize) -> Result<String, ArrowError> {
    if column.is_null(row) {
        return Ok(NULL.to_string());
    }
    Ok(match column.data_type() {
        DataType::Null => NULL.to_string(),
        DataType::Boolean => column.as_boolean().value(row).to_string(),
        DataType::Float16 => {
            let v = column.as_primitive::<arrow::datatypes::Float16Type>().value(row);
            float_to_string(v.to_f64().is_nan(), v.to_f64().is_infinite(), v.to_string())
        }
        DataType::Float32 => {
            let v = column.as_primitive::<arrow::datatypes::Float32Type>().value(row);
            float_to_string(v.is_nan(), v.is_infinite(), v.to_string())
        }
        DataType::Float64 => {
            let v = column.as_primitive::<arrow::datatypes::Float64Type>().value(row);
            float_to_string(v.is_nan(), v.is_infinite(), v.to_string())
        }
        DataType::Decimal32(_, scale) => decimal_to_string::<Decimal32Type>(column, row, *scale),
        DataType::Decimal64(_, scale) => decimal_to_string::<Decimal64Type>(column, row, *scale),
        DataType::Decimal128(_, scale) => decimal_to_string::<Decimal128Type>(column, row, *scale),
        DataType::Decimal256(_, scale) => decimal_to_string::<Decimal256Type>(column, row, *scale),
        DataType::Utf8 => varchar_to_string(column.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => varchar_to_string(column.as_string::<i64>().value(row)),
        DataType::Utf8View => varchar_to_string(column.as_string_view().value(row)),
        DataType::Dictionary(_, _) => {
            let dictionary = column.as_any_dictionary();
            let key = dictionary.normalized_keys()[row];
            cell_to_string(dictionary.values(), key)?
        }
        _ => {
            let options = datafusion::config::FormatOptions {
                null: NULL.to_string(),
                ..Default::default()
            };
            let options = arrow::util::display::FormatOptions::try_from(&options)
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            ArrayFormatter::try_new(column.as_ref(), &options)?
                .value(row)
                .to_string()
        }
    })
}

/// `(empty)` for the empty string; trailing newlines dropped; NUL as `\0`.
fn varchar_to_string(value: &str) -> String {
    if value.is_empty() {
        "(empty)".to_string()
    } else {
        value.trim_end_matches('\n').replace('\u{0}', "\\0")
    }
}

/// Floats go through their shortest decimal text, rounded to 12 places.
fn float_to_string(is_nan: bool, is_infinite: bool, text: String) -> String {
    if is_nan {
        // The sign of NaN differs between platforms.
        "NaN".to_string()
    } else if is_infinite {
        if text.starts_with('-') {
            "-Infinity"
        } else {
            "Infinity"
        }
        .to_string()
    } else {
        rounded(&text, 12)
    }
}

fn decimal_to_string<T: DecimalType>(column: &ArrayRef, row: usize, scale: i8) -> String {
    let value = column.as_primitive::<T>().value(row);
    rounded(&T::format_decimal(value, u8::MAX, scale), i64::from(scale))
}

/// `text` as a decimal rounded to `digits` places, trailing zeros dropped.
fn rounded(text: &str, digits: i64) -> String {
    match BigDecimal::from_str(text) {
        Ok(value) => value.round(digits).normalized().to_plain_string(),
        Err(_) => text.to_string(),
    }
}

/// Expected lines lose trailing whitespace only.
#[expect(clippy::ptr_arg, reason = "the signature sqllogictest's Normalizer requires")]
pub fn normalize_expected(line: &String) -> String {
    line.trim_end().to_string()
}

/// Rows match when each actual row, cells joined by one space and trailing
/// whitespace trimmed, equals the expected line. `<slt:ignore>` in the
/// expected text matches anything, except before the first fragment.
pub fn validate(normalizer: Normalizer, actual: &[Vec<String>], expected: &[String]) -> bool {
    const IGNORE: &str = "<slt:ignore>";
    let expected: Vec<String> = expected.iter().map(normalizer).collect();
    let actual: Vec<String> = actual
        .iter()
        .map(|cells| cells.join(" ").trim_end().to_string())
        .collect();
    if !expected.iter().any(|line| line.contains(IGNORE)) {
        return actual == expected;
    }
    let expected = expected.join("\n");
    let actual = actual.join("\n");
    let mut pos = 0;
    for (i, fragment) in expected.split(IGNORE).enumerate() {
        if fragment.is_empty() {
            continue;
        }
        match actual[pos..].find(fragment) {
            Some(at) if i > 0 || at == 0 => pos += at + fragment.len(),
            _ => return false,
        }
    }
    true
}

//! The `datagen` connector: rows for a declared schema, random or sequential
//! per column, with Flink's `datagen` option names.
//!
//! ```sql
//! CREATE TABLE orders (id BIGINT, amount DECIMAL(10, 2), note VARCHAR, ts TIMESTAMP(3))
//! WITH ('connector' = 'datagen', 'rows' = '1000000', 'seed' = '7',
//!       'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
//!       'fields.amount.min' = '0', 'fields.amount.max' = '500',
//!       'fields.note.length' = '20',
//!       'fields.ts.kind' = 'sequence', 'fields.ts.start' = '2024-01-01 00:00:00', 'fields.ts.step' = '1 s');
//! ```
//!
//! Without `'rows'` the table is unbounded, unless a sequence with an `end`
//! bounds it (as in Flink, the table ends with its shortest sequence).

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, PrimitiveArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray, make_array,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Int8Type, Int16Type, Int32Type, Int64Type, SchemaRef, TimeUnit, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use datafusion::common::plan_err;
use datafusion::error::Result;

use super::rng::Rng;
use super::views::{TextPool, ViewColumn};
use super::{
    GeneratorProvider, GeneratorTable, RowSource, parse_count, parse_duration_ms, parse_int,
    parse_timestamp_ms, take_parsed,
};
use crate::connectors::{Boundedness, Options};

/// The options the datagen connector accepts, for error messages.
pub const ACCEPTED_OPTIONS: &[&str] = &[
    "connector",
    "rows (or number-of-rows)",
    "seed",
    "rows-per-second",
    "fields.<column>.kind (random | sequence)",
    "fields.<column>.min",
    "fields.<column>.max",
    "fields.<column>.start",
    "fields.<column>.end",
    "fields.<column>.step",
    "fields.<column>.length",
    "fields.<column>.var-len",
    "fields.<column>.null-rate",
];

/// The per-column option names (after `fields.<column>.`).
const FIELD_OPTIONS: &[&str] = &[
    "kind",
    "min",
    "max",
    "start",
    "end",
    "step",
    "length",
    "var-len",
    "null-rate",
];

/// The default first and last time of random timestamps and the first of
/// sequences: 2015-07-15 00:00:00 UTC, as the Nexmark generator.
const DEFAULT_TIME_MS: i64 = 1_436_918_400_000;
const MS_PER_DAY: i64 = 86_400_000;
/// Bytes of random text that string columns slice.
const TEXT_POOL_BYTES: usize = 64 * 1024;
/// The default length of random strings (Flink's).
const DEFAULT_STRING_LENGTH: u64 = 100;

/// How a column's values are made. Integer-like values (integers, decimals
/// unscaled, timestamps in ms, dates in days) are `i128`.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    /// `start + row * step`.
    Sequence {
        /// The first value.
        start: i128,
        /// The increment per row.
        step: i128,
    },
    /// Uniform in `min..=max`.
    Uniform {
        /// The smallest value.
        min: i128,
        /// The largest value.
        max: i128,
    },
    /// Uniform floats in `[min, max)`.
    UniformFloat {
        /// The smallest value.
        min: f64,
        /// The bound.
        max: f64,
    },
    /// `true` or `false`, evenly.
    Bool,
    /// Random letters and digits, `length` long (or 1 to `length` with `var_len`).
    Text {
        /// The (maximum) length.
        length: u64,
        /// Whether the length varies.
        var_len: bool,
    },
}

/// One generated column.
#[derive(Debug, Clone)]
struct ColumnSpec {
    /// The declared type.
    data_type: DataType,
    /// How values are made.
    values: Values,
    /// The share of rows that are NULL.
    null_rate: f64,
    /// Seeds this column's draws apart from the others'.
    salt: u64,
}

/// Rows for a declared schema.
#[derive(Debug)]
pub struct DatagenSource {
    /// The declared schema.
    schema: SchemaRef,
    /// One spec per column.
    columns: Vec<ColumnSpec>,
    /// Seeds every random choice.
    seed: u64,
    /// Random text that string columns slice.
    text: TextPool,
    /// Wall-clock rows per second for unbounded runs; kept for the continuous executor.
    rows_per_second: Option<u64>,
}

impl DatagenSource {
    /// One column's values for rows `rows`.
    fn column(&self, spec: &ColumnSpec, rows: Range<u64>) -> Result<ArrayRef> {
        let (seed, salt) = (self.seed, spec.salt);
        let len = (rows.end - rows.start) as usize;
        let first = rows.start;
        let ints = |rows: Range<u64>| {
            let values = spec.values.clone();
            rows.map(move |r| int_value(&values, seed, salt, r))
        };
        let array: ArrayRef = match (&spec.values, &spec.data_type) {
            (Values::Bool, _) => Arc::new(
                rows.map(|r| Some(Rng::for_row(seed, r, salt).below(2) == 1))
                    .collect::<BooleanArray>(),
            ),
            (Values::UniformFloat { min, max }, t) => {
                let (min, max) = (*min, *max);
                let values = rows.map(move |r| min + Rng::for_row(seed, r, salt).unit() * (max - min));
                match t {
                    DataType::Float32 => Arc::new(Float32Array::from_iter_values(values.map(|v| v as f32))),
                    _ => Arc::new(Float64Array::from_iter_values(values)),
                }
            }
            (Values::Text { length, var_len }, _) => {
                let (length, var_len) = (*length, *var_len);
                let room = (self.text.len() as u64).saturating_sub(length);
                let mut column = ViewColumn::new(len, Some(self.text.buffer()));
                for r in rows {
                    let mut rng = Rng::for_row(seed, r, salt);
                    let n = if var_len { 1 + rng.below(length) } else { length };
                    column.push_view(self.text.slice(rng.below(room + 1) as usize, n as usize, false));
                }
                column.finish()
            }
            (_, DataType::Float32) => Arc::new(Float32Array::from_iter_values(ints(rows).map(|v| v as f32))),
            (_, DataType::Float64) => Arc::new(Float64Array::from_iter_values(ints(rows).map(|v| v as f64))),
            (_, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
                let mut column = ViewColumn::new(len, None);
                for v in ints(rows) {
                    column.push_str(&v.to_string());
                }
                column.finish()
            }
            (_, DataType::Int8) => primitive::<Int8Type>(ints(rows), |v| v as i8),
            (_, DataType::Int16) => primitive::<Int16Type>(ints(rows), |v| v as i16),
            (_, DataType::Int32) => primitive::<Int32Type>(ints(rows), |v| v as i32),
            (_, DataType::Int64) => primitive::<Int64Type>(ints(rows), |v| v as i64),
            (_, DataType::UInt8) => primitive::<UInt8Type>(ints(rows), |v| v as u8),
            (_, DataType::UInt16) => primitive::<UInt16Type>(ints(rows), |v| v as u16),
            (_, DataType::UInt32) => primitive::<UInt32Type>(ints(rows), |v| v as u32),
            (_, DataType::UInt64) => primitive::<UInt64Type>(ints(rows), |v| v as u64),
            (_, DataType::Date32) => Arc::new(Date32Array::from_iter_values(ints(rows).map(|v| v as i32))),
            (_, DataType::Decimal128(p, s)) => {
                Arc::new(Decimal128Array::from_iter_values(ints(rows)).with_precision_and_scale(*p, *s)?)
            }
            (_, DataType::Timestamp(unit, tz)) => {
                let ms = ints(rows).map(|v| v as i64);
                match unit {
                    TimeUnit::Second => Arc::new(
                        TimestampSecondArray::from_iter_values(ms.map(|v| v.div_euclid(1000)))
                            .with_timezone_opt(tz.clone()),
                    ),
                    TimeUnit::Millisecond => Arc::new(
                        TimestampMillisecondArray::from_iter_values(ms).with_timezone_opt(tz.clone()),
                    ),
                    TimeUnit::Microsecond => Arc::new(
                        TimestampMicrosecondArray::from_iter_values(ms.map(|v| v.saturating_mul(1_000)))
                            .with_timezone_opt(tz.clone()),
                    ),
                    TimeUnit::Nanosecond => Arc::new(
                        TimestampNanosecondArray::from_iter_values(ms.map(|v| v.saturating_mul(1_000_000)))
                            .with_timezone_opt(tz.clone()),
                    ),
                }
            }
            (_, other) => return datafusion::common::internal_err!("datagen cannot generate {other}"),
        };
        if spec.null_rate <= 0.0 {
            return Ok(array);
        }
        let valid: Vec<bool> = (first..first + len as u64)
            .map(|r| !Rng::for_row(seed, r, salt ^ NULL_SALT).chance(spec.null_rate))
            .collect();
        let data = array
            .to_data()
            .into_builder()
            .nulls(Some(NullBuffer::from(valid)))
            .build()?;
        Ok(make_array(data))
    }
}

/// Seeds the NULL draws apart from the values'.
const NULL_SALT: u64 = 0x5EED_0000_0000_0000;

/// An integer-like value of row `row`.
#[inline(always)]
fn int_value(values: &Values, seed: u64, salt: u64, row: u64) -> i128 {
    match *values {
        Values::Sequence { start, step } => start + i128::from(row) * step,
        Values::Uniform { min, max } => {
            let span = (max - min) as u128 + 1;
            let mut rng = Rng::for_row(seed, row, salt);
            let draw = if span <= u128::from(u64::MAX) {
                u128::from(rng.below(span as u64))
            } else {
                ((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())) % span
            };
            min + draw as i128
        }
        _ => 0,
    }
}

fn primitive<T: ArrowPrimitiveType>(
    values: impl Iterator<Item = i128>,
    convert: impl Fn(i128) -> T::Native,
) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::from_iter_values(values.map(convert)))
}

impl RowSource for DatagenSource {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn generate(&self, columns: &[usize], rows: Range<u64>) -> Result<Vec<ArrayRef>> {
        columns
            .iter()
            .map(|&i| match self.columns.get(i) {
                Some(spec) => self.column(spec, rows.clone()),
                None => datafusion::common::internal_err!("datagen has no column {i}"),
            })
            .collect()
    }

    fn rate(&self) -> Option<u64> {
        self.rows_per_second
    }
}

/// The range of values a type holds, as `i128` (decimals unscaled).
fn type_range(t: &DataType) -> Option<(i128, i128)> {
    Some(match t {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => (i64::MIN.into(), i64::MAX.into()),
        DataType::UInt8 => (0, u8::MAX.into()),
        DataType::UInt16 => (0, u16::MAX.into()),
        DataType::UInt32 => (0, u32::MAX.into()),
        DataType::UInt64 => (0, u64::MAX.into()),
        DataType::Decimal128(p, _) => {
            let max = 10i128.checked_pow(u32::from(*p))? - 1;
            (-max, max)
        }
        DataType::Date32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Timestamp(_, _) => (i128::from(i64::MIN / 1_000_000), i128::from(i64::MAX / 1_000_000)),
        DataType::Float32 | DataType::Float64 | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            (i64::MIN.into(), i64::MAX.into())
        }
        _ => return None,
    })
}

/// A decimal literal (`12.5`, `-3`) as an unscaled value of scale `scale`;
/// `None` if it has more fractional digits than the scale or is not a number.
fn parse_decimal(s: &str, scale: i8) -> Option<i128> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::try_from(scale).ok()?;
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    let all_digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let text = format!("{whole}{fraction:0<scale$}");
    let value: i128 = if text.is_empty() { 0 } else { text.parse().ok()? };
    Some(if negative { -value } else { value })
}

/// A column's option values, taken from `fields.<column>.*`.
#[derive(Debug, Default)]
struct FieldOptions {
    /// `(attribute, value)` pairs in key order.
    values: Vec<(String, String)>,
}

impl FieldOptions {
    fn take(&mut self, attribute: &str) -> Option<String> {
        let i = self.values.iter().position(|(a, _)| a == attribute)?;
        Some(self.values.remove(i).1)
    }
}

/// Parse a per-column option value of column `column`, attribute `attribute`.
fn field_value<T>(
    column: &str,
    attribute: &str,
    value: Option<String>,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>> {
    match value {
        None => Ok(None),
        Some(v) => match parse(v.trim()) {
            Some(parsed) => Ok(Some(parsed)),
            None => plan_err!("option 'fields.{column}.{attribute}' must be {what}, not '{v}'"),
        },
    }
}

/// Parses a bound (`min`, `max`, `start`, `end`) into a column's `i128` domain.
type BoundParser = Box<dyn Fn(&str) -> Option<i128>>;

/// The spec of column `name` of type `t` from its options; also how many
/// rows its sequence has, if it ends.
fn column_spec(
    name: &str,
    t: &DataType,
    mut o: FieldOptions,
    salt: u64,
) -> Result<(ColumnSpec, Option<u64>)> {
    let Some((type_min, type_max)) = type_range(t).or(matches!(t, DataType::Boolean).then_some((0, 1)))
    else {
        return plan_err!(
            "datagen cannot generate column '{name}' of type {t}; it makes integers, floats, booleans, strings, timestamps, dates and decimals"
        );
    };
    let kind = o.take("kind").map(|k| k.to_lowercase());
    let sequence = match kind.as_deref() {
        None | Some("random") => false,
        Some("sequence") => true,
        Some(other) => {
            return plan_err!("option 'fields.{name}.kind' must be 'random' or 'sequence', not '{other}'");
        }
    };
    let null_rate = field_value(
        name,
        "null-rate",
        o.take("null-rate"),
        "a number between 0 and 1",
        |v| v.parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)),
    )?
    .unwrap_or(0.0);
    // How a bound of this type is written, and parsed into the i128 domain.
    let (what, parse): (&str, BoundParser) = match t {
        DataType::Timestamp(_, _) => (
            "a timestamp such as '2024-01-01 00:00:00'",
            Box::new(|v| parse_timestamp_ms(v).map(i128::from)),
        ),
        DataType::Date32 => (
            "a date such as '2024-01-01'",
            Box::new(|v| parse_timestamp_ms(v).map(|ms| i128::from(ms.div_euclid(MS_PER_DAY)))),
        ),
        DataType::Decimal128(_, scale) => {
            let scale = *scale;
            ("a decimal number", Box::new(move |v| parse_decimal(v, scale)))
        }
        _ => ("an integer", Box::new(parse_int)),
    };
    let in_range = |attribute: &str, v: Option<i128>| -> Result<Option<i128>> {
        match v {
            Some(v) if v < type_min || v > type_max => {
                plan_err!(
                    "option 'fields.{name}.{attribute}' is out of range for {t} (from {type_min} to {type_max})"
                )
            }
            other => Ok(other),
        }
    };
    let is_string = matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    let is_float = matches!(t, DataType::Float32 | DataType::Float64);
    let mut rows = None;
    let values = if sequence {
        if matches!(t, DataType::Boolean) {
            return plan_err!(
                "column '{name}' is BOOLEAN, which has no sequence: use 'fields.{name}.kind' = 'random'"
            );
        }
        let bound = |attribute: &str, o: &mut FieldOptions| -> Result<Option<i128>> {
            let v = field_value(name, attribute, o.take(attribute), what, &parse)?;
            in_range(attribute, v)
        };
        let (default_start, default_step) = match t {
            DataType::Timestamp(_, _) => (i128::from(DEFAULT_TIME_MS), 1_000),
            DataType::Date32 => (i128::from(DEFAULT_TIME_MS / MS_PER_DAY), 1),
            _ => (1, 1),
        };
        let start = bound("start", &mut o)?.unwrap_or(default_start);
        let end = bound("end", &mut o)?;
        let step = match t {
            DataType::Timestamp(_, _) | DataType::Date32 => {
                let ms = field_value(
                    name,
                    "step",
                    o.take("step"),
                    "a duration such as '1 s' or '1 d'",
                    parse_duration_ms,
                )?;
                match (ms, t) {
                    (None, _) => default_step,
                    (Some(ms), DataType::Date32) if ms % MS_PER_DAY as u64 == 0 && ms > 0 => {
                        i128::from(ms / MS_PER_DAY as u64)
                    }
                    (Some(_), DataType::Date32) => {
                        return plan_err!(
                            "option 'fields.{name}.step' of a DATE must be whole days, such as '1 d'"
                        );
                    }
                    (Some(ms), _) => i128::from(ms),
                }
            }
            _ => field_value(name, "step", o.take("step"), "an integer", parse_int)?.unwrap_or(1),
        };
        if step <= 0 {
            return plan_err!("option 'fields.{name}.step' must be positive");
        }
        if let Some(end) = end {
            if end < start {
                return plan_err!(
                    "option 'fields.{name}.end' ({end}) is before 'fields.{name}.start' ({start})"
                );
            }
            rows = Some(u64::try_from((end - start) / step + 1).unwrap_or(u64::MAX));
        }
        Values::Sequence { start, step }
    } else if matches!(t, DataType::Boolean) {
        Values::Bool
    } else if is_string {
        let length = field_value(name, "length", o.take("length"), "a positive whole number", |v| {
            parse_count(v).filter(|&n| n > 0)
        })?
        .unwrap_or(DEFAULT_STRING_LENGTH);
        let var_len = field_value(name, "var-len", o.take("var-len"), "'true' or 'false'", |v| {
            v.to_lowercase().parse::<bool>().ok()
        })?
        .unwrap_or(false);
        if length > (TEXT_POOL_BYTES / 2) as u64 {
            return plan_err!(
                "option 'fields.{name}.length' must be at most {}",
                TEXT_POOL_BYTES / 2
            );
        }
        Values::Text { length, var_len }
    } else if is_float {
        let float = |attribute: &str, o: &mut FieldOptions| {
            field_value(name, attribute, o.take(attribute), "a number", |v| {
                v.parse::<f64>().ok().filter(|f| f.is_finite())
            })
        };
        let min = float("min", &mut o)?.unwrap_or(0.0);
        let max = float("max", &mut o)?.unwrap_or(1.0);
        if max < min {
            return plan_err!("option 'fields.{name}.max' ({max}) is below 'fields.{name}.min' ({min})");
        }
        Values::UniformFloat { min, max }
    } else {
        let (default_min, default_max) = match t {
            DataType::Timestamp(_, _) => (
                i128::from(DEFAULT_TIME_MS),
                i128::from(DEFAULT_TIME_MS + MS_PER_DAY - 1),
            ),
            DataType::Date32 => {
                let day = i128::from(DEFAULT_TIME_MS / MS_PER_DAY);
                (day, day + 364)
            }
            _ => (type_min, type_max),
        };
        let min =
            in_range("min", field_value(name, "min", o.take("min"), what, &parse)?)?.unwrap_or(default_min);
        let max =
            in_range("max", field_value(name, "max", o.take("max"), what, &parse)?)?.unwrap_or(default_max);
        if max < min {
            return plan_err!("option 'fields.{name}.max' ({max}) is below 'fields.{name}.min' ({min})");
        }
        Values::Uniform { min, max }
    };
    if let Some((attribute, _)) = o.values.first() {
        let kind = if sequence { "sequence" } else { "random" };
        let accepted = match (&values, is_float) {
            (Values::Sequence { .. }, _) => "start, end, step, null-rate",
            (Values::Bool, _) => "null-rate",
            (Values::Text { .. }, _) => "length, var-len, null-rate",
            _ => "min, max, null-rate",
        };
        return plan_err!(
            "option 'fields.{name}.{attribute}' does not apply to {kind} {t} column '{name}'; it takes: kind, {accepted}"
        );
    }
    let spec = ColumnSpec {
        data_type: t.clone(),
        values,
        null_rate,
        salt,
    };
    Ok((spec, rows))
}

/// Build a datagen table from its options (`'connector'` already taken).
pub fn create_table(declared: Option<SchemaRef>, mut options: Options) -> Result<GeneratorTable> {
    let Some(schema) = declared else {
        return plan_err!(
            "the datagen connector needs declared columns: CREATE TABLE t (id BIGINT, ...) WITH (...)"
        );
    };
    let count = "a whole number such as 1000";
    let mut rows = take_parsed(&mut options, "rows", count, parse_count)?;
    if let Some(n) = take_parsed(&mut options, "number-of-rows", count, parse_count)? {
        if rows.is_some() {
            return plan_err!("options 'rows' and 'number-of-rows' say the same thing: give one");
        }
        rows = Some(n);
    }
    let seed = take_parsed(&mut options, "seed", count, parse_count)?.unwrap_or(0);
    let rows_per_second = take_parsed(&mut options, "rows-per-second", count, parse_count)?;

    let mut fields: Vec<FieldOptions> = schema.fields().iter().map(|_| FieldOptions::default()).collect();
    for (key, value) in options.take_prefixed("fields.") {
        let Some((column, attribute)) = key.rsplit_once('.') else {
            return plan_err!(
                "option 'fields.{key}' needs a column and an attribute: 'fields.<column>.kind'"
            );
        };
        let Some(i) = schema
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(column))
        else {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return plan_err!(
                "option 'fields.{key}' names no column of the table; its columns are: {}",
                names.join(", ")
            );
        };
        if !FIELD_OPTIONS.contains(&attribute) {
            return plan_err!(
                "unknown option 'fields.{key}' for connector 'datagen'; per column it accepts: {}",
                FIELD_OPTIONS.join(", ")
            );
        }
        fields[i].values.push((attribute.to_string(), value));
    }
    options.finish("datagen", ACCEPTED_OPTIONS)?;

    let mut columns = Vec::with_capacity(fields.len());
    for (i, (field, o)) in schema.fields().iter().zip(fields).enumerate() {
        let (spec, sequence_rows) = column_spec(field.name(), field.data_type(), o, i as u64)?;
        if let Some(n) = sequence_rows {
            rows = Some(rows.map_or(n, |r| r.min(n)));
        }
        columns.push(spec);
    }
    let mut text_rng = Rng::new(seed, 1);
    const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let text = TextPool::new(TEXT_POOL_BYTES, || {
        ALPHANUMERIC[text_rng.below(ALPHANUMERIC.len() as u64) as usize]
    });
    let source = DatagenSource {
        schema: Arc::clone(&schema),
        columns,
        seed,
        text,
        rows_per_second,
    };
    let (description, boundedness) = match rows {
        Some(n) => (format!("{n} rows, seed {seed}"), Boundedness::Bounded),
        None => (format!("unbounded, seed {seed}"), Boundedness::Unbounded),
    };
    let all = (0..schema.fields().len()).collect();
    Ok(GeneratorTable {
        provider: Arc::new(GeneratorProvider::new(Arc::new(source), schema, all, rows)),
        description,
        boundedness,
    })
}

#[cfg(test)]
mod tests;

//! Generator connectors: `nexmark` (the Nexmark benchmark's person, auction
//! and bid streams) and `datagen` (random or sequential rows for a declared
//! schema, after Flink's `datagen`).
//!
//! Both generate straight into Arrow arrays, a batch at a time, and every
//! value is a pure function of the seed and the row's ordinal (see [`rng`]):
//! a table reads the same in every run, whatever the batch size, partitioning
//! or projection. With a row count (`'events'`, `'rows'`) a table is bounded;
//! without one it is unbounded and needs the continuous executor.

pub mod datagen;
pub mod nexmark;
mod rng;
mod table;
mod views;

pub(crate) use crate::connectors::options::{parse_count, parse_duration_ms};
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::common::plan_err;
use datafusion::error::Result;

pub use table::{GeneratorProvider, RowSource, batch_ranges};

use super::{Boundedness, Options};

/// A generated table ready to register.
#[derive(Debug)]
pub struct GeneratorTable {
    /// The provider whose scan generates the rows.
    pub provider: Arc<GeneratorProvider>,
    /// What it generates, for EXPLAIN after the connector's name
    /// (`bid, 1000000 events, seed 7`).
    pub description: String,
    /// Bounded with a row or event count, unbounded without.
    pub boundedness: Boundedness,
}

/// Build the table of generator `connector` (`nexmark` or `datagen`).
/// `table_name` is the SQL table's own name (a Nexmark table named `bid`
/// needs no `'table'` option); `declared` the columns written in `CREATE TABLE`.
pub fn create_table(
    connector: &str,
    table_name: &str,
    declared: Option<SchemaRef>,
    mut options: Options,
) -> Result<GeneratorTable> {
    options.take("connector");
    match connector {
        "nexmark" => nexmark::create_table(table_name, declared, options),
        "datagen" => datagen::create_table(declared, options),
        other => plan_err!("'{other}' is not a generator connector; use 'nexmark' or 'datagen'"),
    }
}

/// Take option `key` and parse it with `parse`; `what` describes a valid value.
fn take_parsed<T>(
    options: &mut Options,
    key: &str,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>> {
    match options.take(key) {
        None => Ok(None),
        Some(value) => match parse(value.trim()) {
            Some(v) => Ok(Some(v)),
            None => plan_err!("option '{key}' must be {what}, not '{value}'"),
        },
    }
}

/// A signed integer (`-5`, `1_000`).
fn parse_int(s: &str) -> Option<i128> {
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    parse_count(digits).map(|v| sign * i128::from(v))
}

/// A point in time as milliseconds since the epoch (UTC): `2015-07-15
/// 00:00:00[.fff]`, with `T` or a space, an optional zone (`Z`, `+02:00`), a
/// bare date, or a number of milliseconds.
fn parse_timestamp_ms(s: &str) -> Option<i64> {
    if let Some(ms) = parse_int(s) {
        return i64::try_from(ms).ok();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)) {
        return Some(t.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// Whether a column declared `declared` can be read from one generated as
/// `generated`: the same kind of value (integers of any width, strings of any
/// encoding, timestamps of any unit), so the only conversion is a cast.
fn compatible(generated: &DataType, declared: &DataType) -> bool {
    use DataType::*;
    let family = |t: &DataType| match t {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => 1,
        Utf8 | LargeUtf8 | Utf8View => 2,
        Timestamp(_, _) => 3,
        _ => 0,
    };
    generated == declared || (family(generated) != 0 && family(generated) == family(declared))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_parse() {
        assert_eq!(parse_count("1_000_000"), Some(1_000_000));
        assert_eq!(parse_count("-1"), None);
        assert_eq!(parse_int("-12"), Some(-12));
        assert_eq!(parse_timestamp_ms("2015-07-15 00:00:00"), Some(1_436_918_400_000));
        assert_eq!(
            parse_timestamp_ms("2015-07-15T00:00:01.5Z"),
            Some(1_436_918_401_500)
        );
        assert_eq!(
            parse_timestamp_ms("2015-07-15 02:00:00+02:00"),
            Some(1_436_918_400_000)
        );
        assert_eq!(parse_timestamp_ms("2015-07-15"), Some(1_436_918_400_000));
        assert_eq!(parse_timestamp_ms("1436918400000"), Some(1_436_918_400_000));
        assert_eq!(parse_timestamp_ms("yesterday"), None);
        assert_eq!(parse_duration_ms("4s"), Some(4_000));
        assert_eq!(parse_duration_ms("250 ms"), Some(250));
        assert_eq!(parse_duration_ms("2 minutes"), Some(120_000));
        assert_eq!(parse_duration_ms("7"), Some(7));
        assert_eq!(parse_duration_ms("4 fortnights"), None);
    }

    #[test]
    fn types_are_compatible_within_a_family() {
        use arrow::datatypes::TimeUnit;
        assert!(compatible(&DataType::Int64, &DataType::Int32));
        assert!(compatible(&DataType::Utf8View, &DataType::Utf8));
        assert!(compatible(
            &DataType::Timestamp(TimeUnit::Millisecond, None),
            &DataType::Timestamp(TimeUnit::Microsecond, None)
        ));
        assert!(!compatible(&DataType::Int64, &DataType::Utf8));
    }
}

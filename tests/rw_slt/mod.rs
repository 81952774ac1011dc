//! RisingWave's sqllogictest files as our runners read them
//! (`tests/nexmark_rw.rs`, `tests/risingwave_streaming.rs`): their records,
//! and rows compared as RisingWave prints them, after normalizing what is
//! formatting rather than value: runs of whitespace, numbers (`6221.50` =
//! `6221.5`; floats to 6 decimals), booleans (`t`/`f`), `NULL`, `(empty)`.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// One sqllogictest record of the files read.
#[derive(Debug)]
pub enum Record {
    /// `statement ok` and its SQL.
    Statement(String),
    /// `statement error ...` and its SQL.
    #[allow(dead_code)] // not every runner that shares this module checks them
    StatementError(String),
    /// `include <path>`, the path as written (relative to the file).
    #[allow(dead_code)] // not every runner that shares this module follows them
    Include(String),
    /// `query <types> [rowsort]`, its SQL and the expected rows.
    Query {
        sql: String,
        rowsort: bool,
        rows: Vec<String>,
    },
}

/// The records of an `.slt` or `.slt.part` file (`statement ok`,
/// `statement error`, `query`, `include`; comments and other records are
/// skipped).
pub fn records(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut records = Vec::new();
    let mut lines = text.lines().peekable();
    let body = |lines: &mut std::iter::Peekable<std::str::Lines>| {
        std::iter::from_fn(|| lines.next_if(|l| !l.trim().is_empty()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    while let Some(line) = lines.next() {
        let line = line.trim_end();
        if line.starts_with("statement ok") {
            records.push(Record::Statement(body(&mut lines)));
        } else if let Some(path) = line.strip_prefix("include ") {
            records.push(Record::Include(path.trim().to_string()));
        } else if line.starts_with("statement error") {
            records.push(Record::StatementError(body(&mut lines)));
        } else if let Some(header) = line.strip_prefix("query ") {
            let rowsort = header.split_whitespace().any(|w| w == "rowsort");
            let sql: Vec<&str> = std::iter::from_fn(|| lines.next_if(|l| l.trim() != "----")).collect();
            lines.next();
            let rows = std::iter::from_fn(|| lines.next_if(|l| !l.trim().is_empty()))
                .map(normalize_row)
                .collect();
            records.push(Record::Query {
                sql: sql.join("\n"),
                rowsort,
                rows,
            });
        }
    }
    records
}

/// A row as compared: its whitespace-separated tokens, each normalized.
pub fn normalize_row(row: &str) -> String {
    row.split_whitespace()
        .map(normalize_token)
        .collect::<Vec<_>>()
        .join(" ")
}

fn normalize_token(token: &str) -> String {
    match token {
        "true" => return "t".to_string(),
        "false" => return "f".to_string(),
        _ => {}
    }
    if token.contains('.')
        && let Ok(number) = token.parse::<f64>()
    {
        let fixed = format!("{number:.6}");
        return fixed.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    token.to_string()
}

/// Our rows as RisingWave prints them (timestamps with a space and no
/// trailing zeros, NULL, `(empty)`), normalized.
pub fn format_rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::new()
        .with_null("NULL")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"));
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formattable"))
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| match f.value(row).to_string() {
                    empty if empty.is_empty() => "(empty)".to_string(),
                    cell => cell,
                })
                .collect();
            rows.push(normalize_row(&cells.join(" ")));
        }
    }
    rows
}

//! Result output: a table for people, CSV and NDJSON for pipes.
//!
//! Rows are written as batches arrive, so `| head` and `| jq` see them early;
//! a closed pipe is reported as [`OutputError::Closed`] so the caller can end
//! quietly instead of failing.

use std::io::{self, Write};

use arrow::array::RecordBatch;

use crate::stream::CHANGE_COLUMN;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A boxed table, with a row count.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// Newline-delimited JSON: one object per row (NDJSON).
    Json,
    /// NDJSON with each row's change first, Flink-style: `"op"` is `+I`
    /// (insert), `-U`/`+U` (an update's old and new row) or `-D` (delete).
    /// Rows of append-only results are all `+I`.
    Changelog,
}

/// Why output stopped.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The reader went away (`| head`): not an error for the user.
    #[error("output closed")]
    Closed,
    /// Anything else.
    #[error("cannot write results: {0}")]
    Failed(String),
}

impl From<io::Error> for OutputError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            OutputError::Closed
        } else {
            OutputError::Failed(e.to_string())
        }
    }
}

impl From<ArrowError> for OutputError {
    fn from(e: ArrowError) -> Self {
        match e {
            ArrowError::IoError(_, io) => io.into(),
            other => OutputError::Failed(other.to_string()),
        }
    }
}

/// Writes one statement's results in a format.
pub struct ResultWriter<'a> {
    format: OutputFormat,
    out: &'a mut dyn Write,
    schema: SchemaRef,
    /// Table format: rows kept for display (a table needs all widths first).
    table_rows: Vec<Vec<String>>,
    /// Table format: how many rows to show at most.
    max_rows: usize,
    /// Rows seen so far.
    rows: usize,
    /// CSV: whether the header line is out.
    header_written: bool,
    /// Whether the terminal can show box-drawing characters.
    unicode: bool,
}

impl<'a> ResultWriter<'a> {
    /// A writer for results with `schema`. `max_rows` bounds the rows a table shows.
    pub fn new(
        format: OutputFormat,
        out: &'a mut dyn Write,
        schema: SchemaRef,
        max_rows: usize,
        unicode: bool,
    ) -> Self {
        Self {
            format,
            out,
            schema,
            table_rows: Vec::new(),
            max_rows,
            rows: 0,
            header_written: false,
            unicode,
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Write one batch (CSV and JSON go out at once and are flushed).
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        self.rows += batch.num_rows();
        match self.format {
            OutputFormat::Table => {
                let room = self.max_rows.saturating_sub(self.table_rows.len());
                if room > 0 {
                    self.table_rows
                        .extend(format_rows(&batch.slice(0, batch.num_rows().min(room)))?);
                }
                Ok(())
            }
            OutputFormat::Csv => {
                // Encode to memory first: arrow's CSV writer turns I/O errors
                // into text, and a closed pipe must stay recognisable.
                let mut buffer = Vec::new();
                arrow::csv::WriterBuilder::new()
                    .with_header(!self.header_written)
                    .with_timestamp_format("%Y-%m-%dT%H:%M:%S%.f".to_string())
                    .build(&mut buffer)
                    .write(batch)?;
                self.out.write_all(&buffer)?;
                self.header_written = true;
                self.out.flush()?;
                Ok(())
            }
            OutputFormat::Json | OutputFormat::Changelog => {
                let batch = match self.format {
                    OutputFormat::Changelog => with_change_column(batch)?,
                    _ => batch.clone(),
                };
                let batch = with_unique_names(batch)?;
                // One write per batch: stdout's line buffering would make a
                // system call per row.
                let mut buffer = Vec::new();
                {
                    let mut writer = arrow::json::WriterBuilder::new()
                        .with_explicit_nulls(true)
                        .build::<_, arrow::json::writer::LineDelimited>(&mut buffer);
                    writer.write(&batch)?;
                    writer.finish()?;
                }
                self.out.write_all(&buffer)?;
                self.out.flush()?;
                Ok(())
            }
        }
    }

    /// Finish: a table is drawn now; CSV of an empty result still gets its header.
    /// `footer` is appended under a table (row count, time).
    pub fn finish(self, footer: Option<&str>) -> Result<(), OutputError> {
        match self.format {
            OutputFormat::Table => {
                let mut table = Table::new();
                table
                    .load_preset(if self.unicode {
                        presets::UTF8_FULL_CONDENSED
                    } else {
                        presets::ASCII_FULL_CONDENSED
                    })
                    .set_content_arrangement(ContentArrangement::Disabled)
                    .set_header(self.schema.fields().iter().map(|f| Cell::new(f.name())));
                for (i, field) in self.schema.fields().iter().enumerate() {
                    if field.data_type().is_numeric()
                        && let Some(column) = table.column_mut(i)
                    {
                        column.set_cell_alignment(CellAlignment::Right);
                    }
                }
                for row in &self.table_rows {
                    table.add_row(row);
                }
                writeln!(self.out, "{table}")?;
                if self.rows > self.table_rows.len() {
                    writeln!(
                        self.out,
                        "({} more rows not shown; use --max-rows or another --format)",
                        self.rows - self.table_rows.len()
                    )?;
                }
                if let Some(footer) = footer {
                    writeln!(self.out, "{footer}")?;
                }
            }
            OutputFormat::Csv if !self.header_written => {
                let names: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(self.out, "{}", names.join(","))?;
            }
            OutputFormat::Csv | OutputFormat::Json | OutputFormat::Changelog => {}
        }
        self.out.flush()?;
        Ok(())
    }
}

/// A batch with its change column first: kept if the result has one (an
/// updating query), else every row is an insert (`+I`).
fn with_change_column(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if batch
        .schema()
        .fields()
        .first()
        .is_some_and(|f| f.name() == CHANGE_COLUMN)
    {
        return Ok(batch.clone());
    }
    crate::stream::with_changes(batch, None)
}

/// The batch with its column names made unique as DuckDB does (`a`, `a_1`,
/// `a_2`, skipping names taken): a JSON object with a key twice (`SELECT *`
/// over a join) loses one of them in most readers.
fn with_unique_names(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    let distinct: std::collections::HashSet<&String> = names.iter().copied().collect();
    if distinct.len() == names.len() {
        return Ok(batch);
    }
    let mut taken: std::collections::HashSet<String> = names.iter().map(|n| n.to_string()).collect();
    let mut seen = std::collections::HashSet::new();
    let fields: Vec<arrow::datatypes::FieldRef> = schema
        .fields()
        .iter()
        .map(|field| {
            if seen.insert(field.name().clone()) {
                return std::sync::Arc::clone(field);
            }
            let name = (1..)
                .map(|i| format!("{}_{i}", field.name()))
                .find(|candidate| !taken.contains(candidate))
                .unwrap_or_else(|| field.name().clone());
            taken.insert(name.clone());
            std::sync::Arc::new(field.as_ref().clone().with_name(name))
        })
        .collect();
    let schema = arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone());
    RecordBatch::try_new(std::sync::Arc::new(schema), batch.columns().to_vec())
}

/// Every cell of a batch as display text (NULL for nulls).
pub(super) fn format_rows(batch: &RecordBatch) -> Result<Vec<Vec<String>>, ArrowError> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|row| formatters.iter().map(|f| f.value(row).to_string()).collect())
        .collect())
}

/// An Arrow type by the SQL name a `CREATE TABLE` would give it
/// (`BIGINT`, `VARCHAR`, `TIMESTAMP(3)`), for `\d NAME`.
pub fn sql_type(data_type: &arrow::datatypes::DataType) -> String {
    use arrow::datatypes::{DataType, TimeUnit};
    let digits = |unit: &TimeUnit| match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    };
    match data_type {
        DataType::Null => "NULL".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "TINYINT UNSIGNED".into(),
        DataType::UInt16 => "SMALLINT UNSIGNED".into(),
        DataType::UInt32 => "INT UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "VARBINARY".into()
        }
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(unit) | DataType::Time64(unit) => format!("TIME({})", digits(unit)),
        DataType::Timestamp(unit, None) => format!("TIMESTAMP({})", digits(unit)),
        DataType::Timestamp(unit, Some(zone)) => {
            format!("TIMESTAMP({}) WITH TIME ZONE '{zone}'", digits(unit))
        }
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            format!("DECIMAL({p}, {s})")
        }
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::ListView(field)
        | DataType::LargeListView(field)
        | DataType::FixedSizeList(field, _) => format!("ARRAY<{}>", sql_type(field.data_type())),
        DataType::Struct(fields) => format!(
            "ROW<{}>",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), sql_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                sql_type(kv[0].data_type()),
                sql_type(kv[1].data_type())
            ),
            other => format!("MAP<{other}>"),
        },
        DataType::Dictionary(_, value) => sql_type(value),
        DataType::RunEndEncoded(_, value) => sql_type(value.data_type()),
        // Union: no SQL name; Arrow's.
        other => other.to_string(),
    }
}

/// `3 rows`, `1 row`: the row count under a table.
pub fn row_count(rows: usize) -> String {
    if rows == 1 {
        "1 row".to_string()
    } else {
        format!("{rows} rows")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a,b"), None])),
            ],
        )
        .expect("valid batch")
    }

    fn render(format: OutputFormat, max_rows: usize) -> String {
        let b = batch();
        let mut out = Vec::new();
        let mut w = ResultWriter::new(format, &mut out, b.schema(), max_rows, false);
        w.write_batch(&b).expect("write");
        w.write_batch(&b).expect("write");
        w.finish(Some("4 rows")).expect("finish");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn csv_has_one_header_and_quotes() {
        assert_eq!(
            render(OutputFormat::Csv, 0),
            "id,name\n1,\"a,b\"\n2,\n1,\"a,b\"\n2,\n"
        );
    }

    #[test]
    fn json_is_one_object_per_line_with_nulls() {
        let text = render(OutputFormat::Json, 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1], r#"{"id":2,"name":null}"#);
    }

    #[test]
    fn table_shows_null_and_truncates() {
        let text = render(OutputFormat::Table, 3);
        assert!(text.contains("| NULL |"), "{text}");
        assert!(text.contains("(1 more rows not shown"), "{text}");
        assert!(text.trim_end().ends_with("4 rows"), "{text}");
    }

    #[test]
    fn changelog_marks_appended_rows_as_inserts() {
        let text = render(OutputFormat::Changelog, 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], r#"{"op":"+I","id":1,"name":"a,b"}"#);
    }

    #[test]
    fn json_keys_are_unique() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("a_1", DataType::Int64, false),
            Field::new("a", DataType::Int64, false),
            Field::new("a", DataType::Int64, false),
        ]));
        let columns = (1..=4)
            .map(|v| Arc::new(Int64Array::from(vec![v])) as arrow::array::ArrayRef)
            .collect();
        let b = RecordBatch::try_new(schema, columns).expect("valid batch");
        let mut out = Vec::new();
        let mut w = ResultWriter::new(OutputFormat::Json, &mut out, b.schema(), 0, false);
        w.write_batch(&b).expect("write");
        w.finish(None).expect("finish");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "{\"a\":1,\"a_1\":2,\"a_2\":3,\"a_3\":4}\n"
        );
    }

    #[test]
    fn types_have_their_sql_names() {
        use arrow::datatypes::TimeUnit;
        assert_eq!(sql_type(&DataType::Int64), "BIGINT");
        assert_eq!(sql_type(&DataType::Utf8View), "VARCHAR");
        assert_eq!(
            sql_type(&DataType::Timestamp(TimeUnit::Millisecond, None)),
            "TIMESTAMP(3)"
        );
        assert_eq!(sql_type(&DataType::Decimal128(10, 2)), "DECIMAL(10, 2)");
        assert_eq!(
            sql_type(&DataType::List(Arc::new(Field::new(
                "item",
                DataType::Float64,
                true
            )))),
            "ARRAY<DOUBLE>"
        );
    }

    #[test]
    fn closed_pipe_is_not_a_failure() {
        let e: OutputError = io::Error::from(io::ErrorKind::BrokenPipe).into();
        assert!(matches!(e, OutputError::Closed));
    }
}

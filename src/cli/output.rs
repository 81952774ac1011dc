//! Result output: a table for people, CSV and NDJSON for pipes.
//!
//! Rows are written as batches arrive, so `| head` and `| jq` see them early;
//! a closed pipe is reported as [`OutputError::Closed`] so the caller can end
//! quietly instead of failing.

use std::io::{self, Write};

use arrow::array::RecordBatch;

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
    /// A Parquet file (for `--output x.parquet`, or stdout redirected).
    Parquet,
    /// An Arrow IPC file (for `--output x.arrow`).
    Arrow,
}

impl OutputFormat {
    /// The format a file's extension names; `None` for an extension this
    /// does not know (an error for the caller: not CSV under another name).
    pub fn from_extension(extension: &str) -> Option<Self> {
        match extension.to_ascii_lowercase().as_str() {
            "json" | "ndjson" | "jsonl" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            "txt" => Some(Self::Table),
            "parquet" => Some(Self::Parquet),
            "arrow" | "ipc" | "feather" => Some(Self::Arrow),
            _ => None,
        }
    }

    /// Whether people can read it (a shell may switch to it).
    pub fn is_text(self) -> bool {
        !matches!(self, Self::Parquet | Self::Arrow)
    }
}

/// A `Write + Send` buffer that Parquet's and Arrow's file writers fill and
/// [`ResultWriter`] empties into its output after each batch, so that a big
/// result is not held whole in memory.
#[derive(Clone, Default)]
struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.lock() {
            Ok(mut b) => {
                b.extend_from_slice(buf);
                Ok(buf.len())
            }
            Err(_) => Err(io::Error::other("the output buffer was poisoned")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A binary file being written.
enum FileWriter {
    Parquet(datafusion::parquet::arrow::ArrowWriter<SharedBuffer>),
    Arrow(arrow::ipc::writer::FileWriter<SharedBuffer>),
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

impl From<datafusion::parquet::errors::ParquetError> for OutputError {
    fn from(e: datafusion::parquet::errors::ParquetError) -> Self {
        OutputError::Failed(e.to_string())
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
    /// Table format with no row limit (a pipe, a file): rows go out as
    /// they come, in columns as wide as the first batch's.
    streamed: Option<StreamedTable>,
    /// Parquet and Arrow: the file writer, and the buffer it writes to.
    file: Option<(FileWriter, SharedBuffer)>,
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
            streamed: None,
            file: None,
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
            OutputFormat::Table if self.max_rows == usize::MAX => {
                if batch.num_rows() == 0 {
                    return Ok(());
                }
                let rows = format_rows(batch)?;
                let streamed = self
                    .streamed
                    .get_or_insert_with(|| StreamedTable::new(&self.schema, &rows, self.unicode));
                let mut text = String::new();
                if !self.header_written {
                    streamed.header(&mut text);
                    self.header_written = true;
                }
                for row in &rows {
                    streamed.row(row, &mut text);
                }
                self.out.write_all(text.as_bytes())?;
                self.out.flush()?;
                Ok(())
            }
            OutputFormat::Parquet | OutputFormat::Arrow => {
                if self.file.is_none() {
                    let buffer = SharedBuffer::default();
                    let writer = match self.format {
                        OutputFormat::Parquet => {
                            FileWriter::Parquet(datafusion::parquet::arrow::ArrowWriter::try_new(
                                buffer.clone(),
                                batch.schema(),
                                None,
                            )?)
                        }
                        _ => FileWriter::Arrow(arrow::ipc::writer::FileWriter::try_new(
                            buffer.clone(),
                            &batch.schema(),
                        )?),
                    };
                    self.file = Some((writer, buffer));
                }
                if let Some((writer, buffer)) = self.file.as_mut() {
                    match writer {
                        FileWriter::Parquet(w) => w.write(batch)?,
                        FileWriter::Arrow(w) => w.write(batch)?,
                    }
                    self.out.write_all(&buffer.take())?;
                }
                Ok(())
            }
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
    pub fn finish(mut self, footer: Option<&str>) -> Result<(), OutputError> {
        match self.format {
            OutputFormat::Table if self.max_rows == usize::MAX => {
                let streamed = self
                    .streamed
                    .get_or_insert_with(|| StreamedTable::new(&self.schema, &[], self.unicode));
                let mut text = String::new();
                if !self.header_written {
                    streamed.header(&mut text);
                }
                streamed.bottom(&mut text);
                self.out.write_all(text.as_bytes())?;
                if let Some(footer) = footer {
                    writeln!(self.out, "{footer}")?;
                }
            }
            OutputFormat::Parquet | OutputFormat::Arrow => {
                if self.file.is_none() {
                    // An empty result is still a file, with the schema.
                    self.write_batch(&RecordBatch::new_empty(std::sync::Arc::clone(&self.schema)))?;
                }
                if let Some((writer, buffer)) = self.file.take() {
                    match writer {
                        FileWriter::Parquet(w) => {
                            w.close()?;
                        }
                        FileWriter::Arrow(mut w) => w.finish()?,
                    }
                    self.out.write_all(&buffer.take())?;
                }
            }
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

/// A table written as its rows come (a pipe, a file): the columns are as
/// wide as the first batch needs, and a later, wider value widens only its
/// row rather than holding every row back to measure them all.
struct StreamedTable {
    widths: Vec<usize>,
    right: Vec<bool>,
    header: Vec<String>,
    /// Left border, column separator, right border, header rule pieces.
    glyphs: Glyphs,
}

struct Glyphs {
    left: &'static str,
    middle: &'static str,
    right: &'static str,
    line: char,
    top: [&'static str; 3],
    rule: [&'static str; 3],
    rule_line: char,
    bottom: [&'static str; 3],
    header_middle: &'static str,
}

const ASCII: Glyphs = Glyphs {
    left: "|",
    middle: "|",
    right: "|",
    line: '-',
    top: ["+", "+", "+"],
    rule: ["+", "=", "+"],
    rule_line: '=',
    bottom: ["+", "+", "+"],
    header_middle: "|",
};

// comfy-table's UTF8_FULL_CONDENSED, as the terminal's tables are drawn.
const UNICODE: Glyphs = Glyphs {
    left: "│",
    middle: "┆",
    right: "│",
    line: '─',
    top: ["┌", "┬", "┐"],
    rule: ["╞", "╪", "╡"],
    rule_line: '═',
    bottom: ["└", "┴", "┘"],
    header_middle: "┆",
};

impl StreamedTable {
    fn new(schema: &SchemaRef, first: &[Vec<String>], unicode: bool) -> Self {
        let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let widths = header
            .iter()
            .enumerate()
            .map(|(i, name)| {
                first
                    .iter()
                    .filter_map(|row| row.get(i))
                    .map(|cell| cell.chars().count())
                    .chain(std::iter::once(name.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        Self {
            widths,
            right: schema
                .fields()
                .iter()
                .map(|f| f.data_type().is_numeric())
                .collect(),
            header,
            glyphs: if unicode { UNICODE } else { ASCII },
        }
    }

    fn border(&self, ends: [&str; 3], line: char, text: &mut String) {
        text.push_str(ends[0]);
        for (i, width) in self.widths.iter().enumerate() {
            if i > 0 {
                text.push_str(ends[1]);
            }
            text.extend(std::iter::repeat_n(line, width + 2));
        }
        text.push_str(ends[2]);
        text.push('\n');
    }

    fn cells(&self, cells: &[String], middle: &str, align: bool, text: &mut String) {
        text.push_str(self.glyphs.left);
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str(middle);
            }
            let pad = self
                .widths
                .get(i)
                .map_or(0, |w| w.saturating_sub(cell.chars().count()));
            let right = align && self.right.get(i).copied().unwrap_or(false);
            text.push(' ');
            if right {
                text.extend(std::iter::repeat_n(' ', pad));
            }
            text.push_str(cell);
            if !right {
                text.extend(std::iter::repeat_n(' ', pad));
            }
            text.push(' ');
        }
        text.push_str(self.glyphs.right);
        text.push('\n');
    }

    fn header(&self, text: &mut String) {
        self.border(self.glyphs.top, self.glyphs.line, text);
        self.cells(&self.header, self.glyphs.header_middle, false, text);
        self.border(self.glyphs.rule, self.glyphs.rule_line, text);
    }

    fn row(&self, row: &[String], text: &mut String) {
        self.cells(row, self.glyphs.middle, true, text);
    }

    fn bottom(&self, text: &mut String) {
        self.border(self.glyphs.bottom, self.glyphs.line, text);
    }
}

/// A batch with its change column first: kept if the result has one (an
/// updating query), else every row is an insert (`+I`).
fn with_change_column(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if crate::stream::is_changelog(&batch.schema()) {
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
    fn an_unlimited_table_streams_in_the_first_batchs_widths() {
        let text = render(OutputFormat::Table, usize::MAX);
        assert_eq!(
            text,
            "+----+------+\n| id | name |\n+===========+\n|  1 | a,b  |\n|  2 | NULL |\n|  1 | a,b  |\n|  2 | NULL |\n+----+------+\n4 rows\n"
        );
        // The same look as a buffered table.
        let buffered = render(OutputFormat::Table, 100);
        assert_eq!(text, buffered);
    }

    #[test]
    fn parquet_and_arrow_files_read_back() {
        let b = batch();
        for format in [OutputFormat::Parquet, OutputFormat::Arrow] {
            let mut out = Vec::new();
            let mut w = ResultWriter::new(format, &mut out, b.schema(), usize::MAX, false);
            w.write_batch(&b).expect("write");
            w.write_batch(&b).expect("write");
            w.finish(None).expect("finish");
            let rows: usize = match format {
                OutputFormat::Parquet => {
                    let file = tempfile::tempfile().expect("a temp file");
                    (&file).write_all(&out).expect("write");
                    datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .expect("a parquet file")
                        .build()
                        .expect("a reader")
                        .map(|b| b.expect("a batch").num_rows())
                        .sum()
                }
                _ => arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(out), None)
                    .expect("an arrow file")
                    .map(|b| b.expect("a batch").num_rows())
                    .sum(),
            };
            assert_eq!(rows, 4, "{format:?}");
        }
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

//! Lines of text (NDJSON or CSV) arriving in pieces, decoded into Arrow
//! batches by arrow's own decoders, for the unbounded text sources (`stdin`,
//! a followed `file`).
//!
//! A [`LineDecoder`] reads from a source as bytes come, feeds arrow only whole
//! lines (a partial last line waits for its newline), and makes a batch of
//! whatever each read brought: a row is out as soon as its line is in, and a
//! read of much data (up to [`CHUNK`]) is one decoder pass. It counts lines,
//! so a bad row is an error naming the source and the line (`stdin line 3:
//! ...`), and checks a CSV header against the declared columns.
//!
//! [`thread_stream`] runs such a reader on a thread of its own, behind a small
//! channel: a slow query holds the reader back instead of buffering its input.

use std::io::{ErrorKind, Read};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use datafusion::common::{exec_datafusion_err, internal_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tokio::sync::mpsc;

use super::column_names;
use super::file::{CsvOptions, FileFormat};

/// The most bytes one read asks for: large enough that a backlog decodes in
/// big batches, small enough to keep a few in memory.
pub const CHUNK: usize = 1 << 20;

/// Batches a reader thread may have decoded ahead of the query.
const CHANNEL_CAPACITY: usize = 4;

/// How lines are encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextFormat {
    /// One JSON object per line.
    Json,
    /// One CSV record per line.
    Csv(CsvOptions),
    /// One Debezium JSON message per line: a changelog (see [`super::changelog`]).
    DebeziumJson,
    /// One JSON row per line with its change in `op`: a changelog.
    ChangelogJson,
}

impl TextFormat {
    /// The line format of a file format, if it has one.
    pub fn new(format: FileFormat, csv: CsvOptions) -> Option<Self> {
        match format {
            FileFormat::Json => Some(Self::Json),
            FileFormat::Csv => Some(Self::Csv(csv)),
            FileFormat::Parquet | FileFormat::Arrow => None,
        }
    }

    /// `json`, `csv` or `debezium-json`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv(_) => "csv",
            Self::DebeziumJson => "debezium-json",
            Self::ChangelogJson => "changelog-json",
        }
    }

    /// The changelog format `name` names (a `'format'` option), if it is one:
    /// `debezium-json` (Flink's name; also `debezium_json`, Arroyo's) or
    /// `changelog-json`.
    pub fn changelog(name: &str) -> Option<Self> {
        match name.to_lowercase().as_str() {
            "debezium-json" | "debezium_json" => Some(Self::DebeziumJson),
            "changelog-json" | "changelog_json" => Some(Self::ChangelogJson),
            _ => None,
        }
    }

    /// Whether its rows are changes (a changelog), not appended rows.
    pub fn is_changelog(&self) -> bool {
        matches!(self, Self::DebeziumJson | Self::ChangelogJson)
    }
}

/// What a [`LineDecoder`] decodes: the format, the table's declared columns
/// and the columns a scan reads. Checked once when the scan is planned.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    format: TextFormat,
    /// The declared columns, all of them (CSV fields are positional).
    table_schema: SchemaRef,
    /// The columns to output, as indices into `table_schema`.
    projection: Option<Vec<usize>>,
    /// The output schema.
    schema: SchemaRef,
}

impl DecoderConfig {
    /// A configuration that outputs `projection` of `table_schema`.
    pub fn try_new(
        format: TextFormat,
        table_schema: SchemaRef,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let schema = match &projection {
            Some(p) => Arc::new(table_schema.project(p)?),
            None => Arc::clone(&table_schema),
        };
        // A changelog's batches carry each row's change first.
        let schema = match format {
            TextFormat::DebeziumJson | TextFormat::ChangelogJson => {
                super::changelog::changelog_schema(&schema)
            }
            _ => schema,
        };
        let config = Self {
            format,
            table_schema,
            projection,
            schema,
        };
        // Arrow refuses some types (and a bad null literal) only when it builds a decoder.
        config.build(1)?;
        Ok(config)
    }

    /// The schema of the batches decoded (for a changelog, the change code
    /// first: [`super::changelog::CHANGE_CODE_COLUMN`]).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// A fresh arrow decoder that makes batches of up to `batch_size` rows.
    fn build(&self, batch_size: usize) -> Result<Inner> {
        match &self.format {
            TextFormat::Json => Ok(Inner::Json(
                arrow::json::ReaderBuilder::new(Arc::clone(&self.schema))
                    .with_batch_size(batch_size)
                    .build_decoder()?,
            )),
            TextFormat::Csv(csv) => {
                // The header is checked and skipped by `Core::header`.
                let mut builder = arrow::csv::ReaderBuilder::new(Arc::clone(&self.table_schema))
                    .with_header(false)
                    .with_batch_size(batch_size);
                if let Some(d) = csv.delimiter {
                    builder = builder.with_delimiter(d as u8);
                }
                if let Some(q) = csv.quote {
                    builder = builder.with_quote(q as u8);
                }
                if let Some(null) = &csv.null_literal {
                    let pattern = format!("^{}$", regex::escape(null));
                    let regex = regex::Regex::new(&pattern)
                        .map_err(|e| exec_datafusion_err!("option 'csv.null-literal': {e}"))?;
                    builder = builder.with_null_regex(regex);
                }
                if let Some(p) = &self.projection {
                    builder = builder.with_projection(p.clone());
                }
                Ok(Inner::Csv(Box::new(builder.build_decoder())))
            }
            TextFormat::DebeziumJson | TextFormat::ChangelogJson => {
                let columns = match &self.projection {
                    Some(p) => self.table_schema.project(p)?,
                    None => self.table_schema.as_ref().clone(),
                };
                let (decoded, debezium) = match self.format {
                    TextFormat::DebeziumJson => (super::changelog::envelope_schema(&columns), true),
                    _ => (super::changelog::op_row_schema(&columns), false),
                };
                Ok(Inner::Changelog {
                    decoder: arrow::json::ReaderBuilder::new(decoded)
                        .with_batch_size(batch_size)
                        .build_decoder()?,
                    debezium,
                    schema: Arc::clone(&self.schema),
                })
            }
        }
    }
}

/// Arrow's decoder for the format.
enum Inner {
    Json(arrow::json::reader::Decoder),
    Csv(Box<arrow::csv::reader::Decoder>),
    /// Changelog lines (Debezium messages, or rows with an `op`), turned
    /// into rows of `schema` with their change codes when flushed.
    Changelog {
        decoder: arrow::json::reader::Decoder,
        debezium: bool,
        schema: SchemaRef,
    },
}

impl Inner {
    fn decode(&mut self, buf: &[u8]) -> Result<usize, ArrowError> {
        match self {
            Self::Json(d) => d.decode(buf),
            Self::Csv(d) => d.decode(buf),
            Self::Changelog { decoder, .. } => decoder.decode(buf),
        }
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        match self {
            Self::Json(d) => d.flush(),
            Self::Csv(d) => d.flush(),
            Self::Changelog {
                decoder,
                debezium,
                schema,
            } => decoder
                .flush()?
                .map(|lines| match debezium {
                    true => super::changelog::unfold(&lines, schema),
                    false => super::changelog::with_change_codes(&lines, schema),
                })
                .transpose(),
        }
    }

    /// Decode `data` (whole lines) to the end, flushing a batch into `out`
    /// whenever the decoder is full, and the rest at the end.
    fn decode_all(&mut self, mut data: &[u8], out: &mut Vec<RecordBatch>) -> Result<(), ArrowError> {
        while !data.is_empty() {
            let used = self.decode(data)?;
            data = &data[used..];
            if !data.is_empty() {
                // Full: `batch_size` rows are waiting.
                match self.flush()? {
                    Some(batch) => out.push(batch),
                    None if used == 0 => {
                        return Err(ArrowError::ComputeError(
                            "the decoder takes no more input but holds no rows".into(),
                        ));
                    }
                    None => {}
                }
            }
        }
        if let Some(batch) = self.flush()? {
            out.push(batch);
        }
        Ok(())
    }
}

/// Lines from one source (`stdin`, one file) decoded into batches.
pub struct LineDecoder {
    /// Everything but the partial line.
    core: Core,
    /// The bytes after the last newline so far: a line still being written.
    partial: Vec<u8>,
}

/// The decoding state, apart from the partial line.
struct Core {
    /// The source as errors name it: `stdin`, `file events.ndjson`.
    source: String,
    config: DecoderConfig,
    batch_size: usize,
    inner: Inner,
    /// Lines decoded so far; the next line is number `lines + 1`.
    lines: u64,
    /// A CSV header is expected and not yet seen.
    header_pending: bool,
}

impl std::fmt::Debug for LineDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineDecoder")
            .field("source", &self.core.source)
            .field("lines", &self.core.lines)
            .field("partial", &self.partial.len())
            .finish()
    }
}

impl LineDecoder {
    /// A decoder for `source` (a name for errors) making batches of up to `batch_size` rows.
    pub fn new(source: impl Into<String>, config: DecoderConfig, batch_size: usize) -> Result<Self> {
        let batch_size = batch_size.max(1);
        let header_pending = matches!(&config.format, TextFormat::Csv(csv) if csv.has_header());
        Ok(Self {
            core: Core {
                source: source.into(),
                inner: config.build(batch_size)?,
                config,
                batch_size,
                lines: 0,
                header_pending,
            },
            partial: Vec::new(),
        })
    }

    /// Whole lines decoded so far (blank ones and a header included).
    pub fn lines(&self) -> u64 {
        self.core.lines
    }

    /// Read once from `reader` and decode the whole lines it completes,
    /// pushing the batches onto `out`. `buf` is scratch space, reused across
    /// calls (and decoders). Returns the bytes read: 0 at the end of input
    /// (for now: a followed file may grow).
    ///
    /// On an error, `out` holds the rows of the lines before the bad one.
    pub fn read_from(
        &mut self,
        reader: &mut dyn Read,
        buf: &mut Vec<u8>,
        out: &mut Vec<RecordBatch>,
    ) -> Result<usize> {
        let kept = self.partial.len();
        // Room for the partial line and a chunk; a line longer than a chunk grows it.
        let want = (kept + CHUNK / 2).max(CHUNK);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        buf[..kept].copy_from_slice(&self.partial);
        let read = loop {
            match reader.read(&mut buf[kept..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(exec_datafusion_err!("cannot read {}: {e}", self.core.source)),
            }
        };
        let end = kept + read;
        // The kept bytes hold no newline: only the new ones can end a line.
        let Some(last) = buf[kept..end].iter().rposition(|&b| b == b'\n') else {
            self.partial.extend_from_slice(&buf[kept..end]);
            return Ok(read);
        };
        let whole = kept + last + 1;
        self.partial.clear();
        self.partial.extend_from_slice(&buf[whole..end]);
        self.core.decode(&buf[..whole], out)?;
        Ok(read)
    }

    /// Decode `bytes` as if read: whole lines now, a partial one kept.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<RecordBatch>) -> Result<()> {
        let mut buf = Vec::new();
        while !bytes.is_empty() {
            self.read_from(&mut bytes, &mut buf, out)?;
        }
        Ok(())
    }

    /// The end of the input: a last line without a newline is a line too.
    pub fn finish(&mut self, out: &mut Vec<RecordBatch>) -> Result<()> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let mut line = std::mem::take(&mut self.partial);
        line.push(b'\n');
        self.core.decode(&line, out)
    }
}

impl Core {
    /// Decode `data`, whole lines, into `out`.
    fn decode(&mut self, mut data: &[u8], out: &mut Vec<RecordBatch>) -> Result<()> {
        let mut first = self.lines + 1;
        while self.header_pending && !data.is_empty() {
            let len = data
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |i| i + 1);
            let (line, rest) = data.split_at(len);
            if !is_blank(line) {
                self.check_header(line, first)?;
                self.header_pending = false;
            }
            data = rest;
            first += 1;
            self.lines += 1;
        }
        let before = out.len();
        if let Err(e) = self.inner.decode_all(data, out) {
            out.truncate(before);
            return Err(self.locate(data, first, e, out));
        }
        self.lines = first - 1 + count_lines(data);
        Ok(())
    }

    /// Find the line of `data` (whose first line is number `first`) that
    /// made arrow fail with `error`: decode line by line with a fresh decoder.
    /// Pushes the rows of the lines before it onto `out`.
    fn locate(
        &self,
        data: &[u8],
        first: u64,
        error: ArrowError,
        out: &mut Vec<RecordBatch>,
    ) -> DataFusionError {
        let mut inner = match self.config.build(self.batch_size) {
            Ok(inner) => inner,
            Err(e) => return e,
        };
        let mut start = 0;
        for (number, line) in (first..).zip(data.split_inclusive(|&b| b == b'\n')) {
            if !is_blank(line) {
                let mut ignored = Vec::new();
                if let Err(e) = inner.decode_all(line, &mut ignored) {
                    let mut good = match self.config.build(self.batch_size) {
                        Ok(good) => good,
                        Err(e) => return e,
                    };
                    // These lines decoded one by one, so they do together.
                    let _ = good.decode_all(&data[..start], out);
                    return exec_datafusion_err!("{} line {number}: {}", self.source, describe(&e));
                }
            }
            start += line.len();
        }
        let last = first + count_lines(data).saturating_sub(1);
        exec_datafusion_err!("{} lines {first}-{last}: {}", self.source, describe(&error))
    }

    /// Check a CSV header (line number `number`) against the declared columns:
    /// the same count, the same names in the same order (any case).
    fn check_header(&self, line: &[u8], number: u64) -> Result<()> {
        let TextFormat::Csv(csv) = &self.config.format else {
            return internal_err!("a header in a {} source", self.config.format.name());
        };
        let mut format = arrow::csv::reader::Format::default().with_header(true);
        if let Some(d) = csv.delimiter {
            format = format.with_delimiter(d as u8);
        }
        if let Some(q) = csv.quote {
            format = format.with_quote(q as u8);
        }
        let source = &self.source;
        let (header, _) = format
            .infer_schema(line, Some(0))
            .map_err(|e| exec_datafusion_err!("{source} line {number}: bad CSV header: {}", describe(&e)))?;
        let declared = &self.config.table_schema;
        let fix = "or set 'csv.header' = 'false' if the first line is data";
        if header.fields().len() != declared.fields().len() {
            return plan_err!(
                "{source} line {number}: the CSV header has {} columns ({}) but the table declares {} ({}): declare every column, in order, {fix}",
                header.fields().len(),
                column_names(&header),
                declared.fields().len(),
                column_names(declared)
            );
        }
        for (i, (h, d)) in header.fields().iter().zip(declared.fields()).enumerate() {
            if !h.name().trim().eq_ignore_ascii_case(d.name()) {
                return plan_err!(
                    "{source} line {number}: column {} is '{}' in the CSV header but the table declares '{}' there: declare columns in header order, {fix}",
                    i + 1,
                    h.name(),
                    d.name()
                );
            }
        }
        Ok(())
    }
}

/// Arrow's message without its kind prefix, and without arrow's own line
/// numbers (which count from where a decoder started, not from the source's
/// first line).
fn describe(e: &ArrowError) -> String {
    let text = match e {
        ArrowError::ParseError(s)
        | ArrowError::JsonError(s)
        | ArrowError::CsvError(s)
        | ArrowError::CastError(s)
        | ArrowError::InvalidArgumentError(s)
        | ArrowError::ComputeError(s) => s.clone(),
        other => other.to_string(),
    };
    static LINE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r" (at|for) line \d+").expect("a valid regex"));
    LINE.replace_all(&text, "").into_owned()
}

fn count_lines(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// The sending end given to a reader thread.
pub struct BatchSender(mpsc::Sender<Result<RecordBatch>>);

impl BatchSender {
    /// Send, waiting while the channel is full. False once the query has
    /// stopped reading (the stream was dropped): the thread should end.
    pub fn send(&self, item: Result<RecordBatch>) -> bool {
        self.0.blocking_send(item).is_ok()
    }

    /// Send every batch of `batches`, emptying it; false as for [`Self::send`].
    pub fn send_all(&self, batches: &mut Vec<RecordBatch>) -> bool {
        batches.drain(..).all(|b| self.send(Ok(b)))
    }

    /// Whether the query has stopped reading.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// A stream of the batches `produce` sends from a thread of its own (named
/// `name`). The stream ends when `produce` returns; `produce` should return
/// when a send fails. A plain thread, not tokio's blocking pool: a thread
/// blocked reading a terminal must not hold up the runtime's shutdown.
pub fn thread_stream(
    name: &str,
    schema: SchemaRef,
    produce: impl FnOnce(BatchSender) + Send + 'static,
) -> SendableRecordBatchStream {
    let (tx, mut rx) = mpsc::channel(CHANNEL_CAPACITY);
    let spawned = std::thread::Builder::new()
        .name(format!("sluice-{name}"))
        .spawn(move || produce(BatchSender(tx)));
    let failed = spawned
        .err()
        .map(|e| exec_datafusion_err!("cannot start a thread to read {name}: {e}"));
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let stream = futures::StreamExt::chain(futures::stream::iter(failed.map(Err)), stream);
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit, TimestampMillisecondType};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    fn json() -> LineDecoder {
        let config = DecoderConfig::try_new(TextFormat::Json, schema(), None).expect("config");
        LineDecoder::new("stdin", config, 1024).expect("decoder")
    }

    fn csv(options: CsvOptions) -> LineDecoder {
        let config = DecoderConfig::try_new(TextFormat::Csv(options), schema(), None).expect("config");
        LineDecoder::new("file a.csv", config, 1024).expect("decoder")
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect()
    }

    #[test]
    fn lines_split_across_reads_wait_for_their_newline() {
        let mut d = json();
        let mut out = Vec::new();
        d.push(
            br#"{"id": 1, "name": "a"}
{"id": 2, "na"#,
            &mut out,
        )
        .expect("ok");
        assert_eq!(ids(&out), [1], "the first line is out at once");
        assert_eq!(out.len(), 1);
        d.push(br#"me": "b"}"#, &mut out).expect("ok");
        assert_eq!(ids(&out), [1], "no newline yet");
        d.push(b"\n\n  \n{\"id\": 3}\n", &mut out).expect("ok");
        assert_eq!(ids(&out), [1, 2, 3]);
        assert_eq!(out.len(), 2, "one batch per read");
        assert_eq!(out[1].column(1).as_string::<i32>().value(0), "b");
        assert!(out[1].column(1).is_null(1));
        assert_eq!(d.lines(), 5);
    }

    #[test]
    fn a_partial_last_line_counts_at_the_end_of_input() {
        let mut d = json();
        let mut out = Vec::new();
        d.push(b"{\"id\": 1}\n{\"id\": 2}", &mut out).expect("ok");
        assert_eq!(ids(&out), [1]);
        d.finish(&mut out).expect("ok");
        assert_eq!(ids(&out), [1, 2]);
    }

    #[test]
    fn a_bad_line_is_named_by_number_and_earlier_rows_come_out() {
        let mut d = json();
        let mut out = Vec::new();
        d.push(b"{\"id\": 1}\n{\"id\": 2}\n", &mut out).expect("ok");
        let err = d
            .push(b"\n{\"id\": 3}\n{\"id\": \"x\"}\n{\"id\": 5}\n", &mut out)
            .expect_err("bad id");
        assert_eq!(ids(&out), [1, 2, 3]);
        let text = err.to_string();
        assert!(text.contains("stdin line 5: "), "{text}");
        assert!(text.contains("failed to parse \"x\" as Int64"), "{text}");

        let mut d = json();
        let err = d
            .push(b"{\"id\": 1}\n{\"id\": 2\n", &mut Vec::new())
            .expect_err("syntax");
        assert!(err.to_string().contains("stdin line 2: "), "{err}");
    }

    #[test]
    fn csv_header_is_checked_and_skipped() {
        let mut d = csv(CsvOptions::default());
        let mut out = Vec::new();
        d.push(b"\nID,name\n1,a\n", &mut out).expect("ok");
        d.push(b"\n2,\"b, c\"\n", &mut out).expect("ok");
        assert_eq!(ids(&out), [1, 2]);
        assert_eq!(out[1].column(1).as_string::<i32>().value(0), "b, c");

        let err = csv(CsvOptions::default())
            .push(b"name,id\n1,a\n", &mut Vec::new())
            .expect_err("order");
        assert!(
            err.to_string().contains(
                "file a.csv line 1: column 1 is 'name' in the CSV header but the table declares 'id' there"
            ),
            "{err}"
        );
        let err = csv(CsvOptions::default())
            .push(b"id\n1\n", &mut Vec::new())
            .expect_err("count");
        assert!(
            err.to_string()
                .contains("the CSV header has 1 columns (id) but the table declares 2 (id, name)"),
            "{err}"
        );
    }

    #[test]
    fn csv_without_header_with_options() {
        let mut d = csv(CsvOptions {
            header: Some(false),
            delimiter: Some(';'),
            null_literal: Some("N/A".into()),
            ..CsvOptions::default()
        });
        let mut out = Vec::new();
        d.push(b"1;a\n2;N/A\n3;", &mut out).expect("ok");
        assert_eq!(ids(&out), [1, 2]);
        assert!(out[0].column(1).is_null(1));
        let err = d.push(b"c\nx;d\n", &mut out).expect_err("bad id");
        assert_eq!(ids(&out), [1, 2, 3]);
        let text = err.to_string();
        assert!(
            text.contains("file a.csv line 4: Error while parsing value 'x' as type 'Int64' for column 0."),
            "{text}"
        );
        let err = csv(CsvOptions::default())
            .push(b"id,name\n1,a,b\n", &mut Vec::new())
            .expect_err("fields");
        assert!(
            err.to_string()
                .contains("file a.csv line 2: incorrect number of fields, expected 2 got 3"),
            "{err}"
        );
    }

    #[test]
    fn projections_and_timestamps() {
        let table = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let text = "1,2024-01-02T03:04:05.5\n2,2024-01-02 03:04:06\n3,2024-01-02T03:04:07Z\n";
        let json_text = text
            .lines()
            .map(|l| {
                let (id, ts) = l.split_once(',').expect("two fields");
                format!("{{\"id\": {id}, \"ts\": \"{ts}\"}}\n")
            })
            .collect::<String>();
        let csv_format = TextFormat::Csv(CsvOptions {
            header: Some(false),
            ..CsvOptions::default()
        });
        for (format, text) in [(csv_format, text.to_string()), (TextFormat::Json, json_text)] {
            let config = DecoderConfig::try_new(format, Arc::clone(&table), Some(vec![1])).expect("config");
            let mut d = LineDecoder::new("stdin", config, 2).expect("decoder");
            let mut out = Vec::new();
            d.push(text.as_bytes(), &mut out).expect("ok");
            assert_eq!(out.len(), 2, "batches of at most 2 rows");
            let ts: Vec<i64> = out
                .iter()
                .flat_map(|b| {
                    assert_eq!(b.num_columns(), 1);
                    b.column(0)
                        .as_primitive::<TimestampMillisecondType>()
                        .values()
                        .to_vec()
                })
                .collect();
            assert_eq!(ts, [1704164645500, 1704164646000, 1704164647000]);
        }
        // No columns at all (count(*)): the rows still count.
        let inputs = [
            (TextFormat::Json, "{\"id\": 1}\n\n{\"id\": 2}\n"),
            (
                TextFormat::Csv(CsvOptions::default()),
                "id,ts\n1,2024-01-01\n2,2024-01-01\n",
            ),
        ];
        for (format, text) in inputs {
            let config = DecoderConfig::try_new(format, Arc::clone(&table), Some(vec![])).expect("config");
            let mut d = LineDecoder::new("stdin", config, 1024).expect("decoder");
            let mut out = Vec::new();
            d.push(text.as_bytes(), &mut out).expect("ok");
            assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 2, "{text}");
        }
    }

    #[test]
    fn long_lines_and_big_reads() {
        let mut d = json();
        let mut out = Vec::new();
        let long = format!("{{\"id\": 7, \"name\": \"{}\"}}\n", "x".repeat(3 * CHUNK));
        d.push(long.as_bytes(), &mut out).expect("ok");
        assert_eq!(ids(&out), [7]);
        let many: String = (0..50_000).map(|i| format!("{{\"id\": {i}}}\n")).collect();
        out.clear();
        d.push(many.as_bytes(), &mut out).expect("ok");
        assert_eq!(ids(&out), (0..50_000).collect::<Vec<_>>());
        assert!(out.iter().all(|b| b.num_rows() <= 1024));
        assert_eq!(d.lines(), 50_001);
    }

    #[tokio::test]
    async fn thread_stream_ends_when_the_producer_returns() {
        use futures::StreamExt;
        let config = DecoderConfig::try_new(TextFormat::Json, schema(), None).expect("config");
        let schema = Arc::clone(config.schema());
        let stream = thread_stream("test", schema, move |tx| {
            let mut d = LineDecoder::new("test", config, 8).expect("decoder");
            let mut out = Vec::new();
            for i in 0..20 {
                d.push(format!("{{\"id\": {i}}}\n").as_bytes(), &mut out)
                    .expect("ok");
                if !tx.send_all(&mut out) {
                    return;
                }
            }
            tx.send(internal_err!("the end"));
        });
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 21);
        let batches: Vec<_> = items[..20]
            .iter()
            .map(|b| b.as_ref().expect("batch").clone())
            .collect();
        assert_eq!(ids(&batches), (0..20).collect::<Vec<_>>());
        assert!(items[20].is_err());
    }
}

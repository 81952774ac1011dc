//! Lines of text (NDJSON or CSV) arriving in pieces, decoded into Arrow
//! batches by arrow's own decoders, for the unbounded text sources (`stdin`,
//! a followed `file`).
//!
//! A [`LineDecoder`] reads from a source as bytes come, feeds arrow only whole
//! lines (a partial last line waits for its newline), and makes a batch of
//! whatever each read brought: a row is out as soon as its line is in, and a
//! read of much data (up to [`CHUNK`]) is one decoder pass. It counts lines,
//! so a bad row is an error naming the source and the line (`stdin line 3:
//! ...`), and checks a CSV header against the declared columns. With
//! `'csv.ignore-parse-errors'` / `'json.ignore-parse-errors'` ([`BadRows`]) a
//! bad line is skipped instead, counted, and written aside to
//! `'format.bad-rows.path'` if given; the rows around it go through.
//!
//! [`thread_stream`] runs such a reader on a thread of its own, behind a small
//! channel: a slow query holds the reader back instead of buffering its input.

use std::io::{ErrorKind, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use datafusion::common::{exec_datafusion_err, exec_err, internal_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tokio::sync::mpsc;

use super::file::{CsvOptions, FileFormat};
use super::json_integers::IntegerColumns;
use super::{Options, column_names};

/// The most bytes one read asks for: large enough that a backlog decodes in
/// big batches, small enough to keep a few in memory.
pub const CHUNK: usize = 1 << 20;

/// The longest line read by default (`'line.max-bytes'`): a longer one is an
/// error, not a buffer that grows until memory runs out.
pub const DEFAULT_MAX_LINE: usize = 8 << 20;

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
    /// One CSV record per line, its change (`op`) the first field: a
    /// changelog, as `--format csv` prints an updating query's.
    ChangelogCsv(CsvOptions),
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
            Self::ChangelogCsv(_) => "changelog-csv",
        }
    }

    /// The changelog format `name` names (a `'format'` option), if it is one:
    /// `debezium-json` (Flink's name; also `debezium_json`, Arroyo's),
    /// `changelog-json` or `changelog-csv` (taking the `'csv.*'` options).
    pub fn changelog(name: &str, options: &mut Options) -> Result<Option<Self>> {
        Ok(match name.to_lowercase().as_str() {
            "debezium-json" | "debezium_json" => Some(Self::DebeziumJson),
            "changelog-json" | "changelog_json" => Some(Self::ChangelogJson),
            "changelog-csv" | "changelog_csv" => {
                Some(Self::ChangelogCsv(CsvOptions::take(options, FileFormat::Csv)?))
            }
            _ => None,
        })
    }

    /// The file format its lines are in.
    pub fn file_format(&self) -> FileFormat {
        match self {
            Self::Csv(_) | Self::ChangelogCsv(_) => FileFormat::Csv,
            Self::Json | Self::DebeziumJson | Self::ChangelogJson => FileFormat::Json,
        }
    }

    /// Whether its rows are changes (a changelog), not appended rows.
    pub fn is_changelog(&self) -> bool {
        matches!(
            self,
            Self::DebeziumJson | Self::ChangelogJson | Self::ChangelogCsv(_)
        )
    }

    /// Its CSV options, if its lines are CSV.
    fn csv(&self) -> Option<&CsvOptions> {
        match self {
            Self::Csv(csv) | Self::ChangelogCsv(csv) => Some(csv),
            _ => None,
        }
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
    /// What a line that does not decode does.
    bad_rows: BadRows,
    /// The longest line, in bytes (`'line.max-bytes'`).
    max_line: usize,
}

/// What a line that does not decode does: end the query with an error naming
/// it (the default), or, with `'csv.ignore-parse-errors'` /
/// `'json.ignore-parse-errors'`, be skipped and counted (and appended to
/// `'format.bad-rows.path'` when given).
#[derive(Debug, Clone, Default)]
pub struct BadRows {
    /// Skip bad lines instead of failing.
    pub skip: bool,
    /// Where skipped lines are appended, as they were.
    pub path: Option<PathBuf>,
    /// How many were skipped and the first, for whoever reports them.
    pub stats: Arc<BadRowStats>,
}

/// The bad lines a source skipped.
#[derive(Debug, Default)]
pub struct BadRowStats {
    /// Lines skipped.
    pub count: AtomicU64,
    /// The first one: its place and what was wrong (`stdin line 4: ...`).
    pub first: Mutex<Option<String>>,
    /// Where they were written, if anywhere.
    pub path: Option<PathBuf>,
}

/// The options that set [`BadRows`], for the lists of accepted options.
pub const BAD_ROW_OPTIONS: &[&str] = &[
    "csv.ignore-parse-errors / json.ignore-parse-errors ('true': skip and count bad rows)",
    "format.bad-rows.path (a file skipped rows are appended to)",
];

impl BadRows {
    /// Take `'<format>.ignore-parse-errors'` and `'format.bad-rows.path'`.
    pub fn take(options: &mut Options, format: FileFormat) -> Result<Self> {
        let csv = options.take_bool("csv.ignore-parse-errors")?;
        let json = options.take_bool("json.ignore-parse-errors")?;
        let path = options.take("format.bad-rows.path").map(PathBuf::from);
        let skip = match format {
            FileFormat::Csv if json.is_some() => {
                return plan_err!(
                    "option 'json.ignore-parse-errors' is for 'format' = 'json'; use 'csv.ignore-parse-errors'"
                );
            }
            FileFormat::Json if csv.is_some() => {
                return plan_err!(
                    "option 'csv.ignore-parse-errors' is for 'format' = 'csv'; use 'json.ignore-parse-errors'"
                );
            }
            FileFormat::Csv => csv.unwrap_or(false),
            FileFormat::Json => json.unwrap_or(false),
            other if csv.is_some() || json.is_some() || path.is_some() => {
                return plan_err!(
                    "'*.ignore-parse-errors' and 'format.bad-rows.path' apply to json and csv, not '{other}'"
                );
            }
            _ => false,
        };
        if path.is_some() && !skip {
            let key = if format == FileFormat::Csv { "csv" } else { "json" };
            return plan_err!(
                "option 'format.bad-rows.path' holds skipped rows: add '{key}.ignore-parse-errors' = 'true'"
            );
        }
        Ok(Self {
            skip,
            stats: Arc::new(BadRowStats {
                path: path.clone(),
                ..Default::default()
            }),
            path,
        })
    }

    /// The same policy with fresh counts (for a new scan).
    pub fn fresh(&self) -> Self {
        Self {
            skip: self.skip,
            path: self.path.clone(),
            stats: Arc::new(BadRowStats {
                path: self.path.clone(),
                ..Default::default()
            }),
        }
    }
}

/// Take `'line.max-bytes'`, the longest line a text source reads.
pub fn take_max_line(options: &mut Options) -> Result<usize> {
    match options.take("line.max-bytes") {
        None => Ok(DEFAULT_MAX_LINE),
        Some(text) => match super::options::parse_count(&text) {
            Some(n) if n > 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => plan_err!("option 'line.max-bytes' is a positive number of bytes, not '{text}'"),
        },
    }
}

/// Fresh counts for a new scan of a table with policy `table`; the table
/// keeps them, so its counts are the latest scan's.
pub fn fresh_bad_rows(table: &Mutex<BadRows>) -> BadRows {
    match table.lock() {
        Ok(mut bad_rows) => {
            *bad_rows = bad_rows.fresh();
            bad_rows.clone()
        }
        Err(poisoned) => poisoned.into_inner().fresh(),
    }
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
        let schema = match format.is_changelog() {
            true => super::changelog::changelog_schema(&schema),
            false => schema,
        };
        let config = Self {
            format,
            table_schema,
            projection,
            schema,
            bad_rows: BadRows::default(),
            max_line: DEFAULT_MAX_LINE,
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

    /// Skip bad lines as `bad_rows` says.
    pub fn with_bad_rows(mut self, bad_rows: BadRows) -> Self {
        self.bad_rows = bad_rows;
        self
    }

    /// Refuse lines longer than `bytes`.
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// A fresh arrow decoder that makes batches of up to `batch_size` rows.
    fn build(&self, batch_size: usize) -> Result<Inner> {
        self.build_with(batch_size, true)
    }

    /// A decoder that reads JSON integer columns exactly (see
    /// [`IntegerColumns`]) when `exact`, or as arrow-json alone does.
    fn build_with(&self, batch_size: usize, exact: bool) -> Result<Inner> {
        match &self.format {
            TextFormat::Json => {
                let integers = IntegerColumns::new(&self.schema).filter(|_| exact);
                let decoded = integers.as_ref().map_or(&self.schema, |i| i.decode_schema());
                Ok(Inner::Json {
                    decoder: arrow::json::ReaderBuilder::new(Arc::clone(decoded))
                        .with_batch_size(batch_size)
                        .build_decoder()?,
                    integers,
                })
            }
            TextFormat::Csv(csv) => Ok(Inner::Csv(Box::new(csv_decoder(
                Arc::clone(&self.table_schema),
                csv,
                self.projection.clone(),
                batch_size,
            )?))),
            TextFormat::ChangelogCsv(csv) => {
                // Every declared column after `op`: CSV fields are positional.
                let fields = super::changelog::op_row_schema(&self.table_schema);
                let projection = self
                    .projection
                    .as_ref()
                    .map(|p| std::iter::once(0).chain(p.iter().map(|i| i + 1)).collect());
                Ok(Inner::Changelog {
                    decoder: Box::new(Inner::Csv(Box::new(csv_decoder(
                        fields, csv, projection, batch_size,
                    )?))),
                    debezium: false,
                    schema: Arc::clone(&self.schema),
                })
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
                // Debezium's rows are nested in its envelope's `before` and
                // `after`: their integers are checked there.
                let integers = exact.then(|| IntegerColumns::new(&decoded)).flatten();
                let decoded = integers
                    .as_ref()
                    .map_or(decoded, |i| Arc::clone(i.decode_schema()));
                let decoder = arrow::json::ReaderBuilder::new(decoded)
                    .with_batch_size(batch_size)
                    .build_decoder()?;
                Ok(Inner::Changelog {
                    decoder: Box::new(Inner::Json { decoder, integers }),
                    debezium,
                    schema: Arc::clone(&self.schema),
                })
            }
        }
    }

    /// The columns a CSV header must name, in order: the declared ones (after
    /// `op` in a changelog).
    fn header_schema(&self) -> SchemaRef {
        match self.format {
            TextFormat::ChangelogCsv(_) => super::changelog::op_row_schema(&self.table_schema),
            _ => Arc::clone(&self.table_schema),
        }
    }
}

/// Arrow's CSV decoder for records of `fields` (all of a line's, in order),
/// outputting `projection` of them. The header is checked and skipped by
/// `Core::header`, not here.
fn csv_decoder(
    fields: SchemaRef,
    csv: &CsvOptions,
    projection: Option<Vec<usize>>,
    batch_size: usize,
) -> Result<arrow::csv::reader::Decoder> {
    let mut builder = arrow::csv::ReaderBuilder::new(fields)
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
    if let Some(p) = projection {
        builder = builder.with_projection(p);
    }
    Ok(builder.build_decoder())
}

/// Arrow's decoder for the format.
enum Inner {
    /// NDJSON rows; integer columns decoded exactly when there are any.
    Json {
        decoder: arrow::json::reader::Decoder,
        integers: Option<IntegerColumns>,
    },
    Csv(Box<arrow::csv::reader::Decoder>),
    /// Changelog lines (Debezium messages, or JSON or CSV rows with an
    /// `op`), decoded by `decoder`, turned into rows of `schema` with their
    /// change codes when flushed.
    Changelog {
        decoder: Box<Inner>,
        debezium: bool,
        schema: SchemaRef,
    },
}

impl Inner {
    fn decode(&mut self, buf: &[u8]) -> Result<usize, ArrowError> {
        match self {
            Self::Json { decoder, .. } => decoder.decode(buf),
            Self::Csv(d) => d.decode(buf),
            Self::Changelog { decoder, .. } => decoder.decode(buf),
        }
    }

    fn flush(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        match self {
            Self::Json { decoder, integers } => decoder
                .flush()?
                .map(|batch| restore_integers(batch, integers.as_ref()))
                .transpose(),
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

/// `batch` with its integer columns checked and cast back (see
/// [`IntegerColumns`]), or as it is when it has none.
fn restore_integers(
    batch: RecordBatch,
    integers: Option<&IntegerColumns>,
) -> Result<RecordBatch, ArrowError> {
    match integers {
        Some(integers) => integers.restore(&batch),
        None => Ok(batch),
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
        let header_pending = config.format.csv().is_some_and(CsvOptions::has_header);
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

    /// Bytes read after the last whole line (a line still being written).
    pub fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// Whether a CSV header is still expected.
    pub fn header_pending(&self) -> bool {
        self.core.header_pending
    }

    /// Go on as if `lines` lines had been decoded, a header (if any) read
    /// unless `header_pending`: a source resumed at a byte offset.
    pub fn resume_at(&mut self, lines: u64, header_pending: bool) {
        self.core.lines = lines;
        self.core.header_pending &= header_pending;
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
            self.check_partial_length()?;
            return Ok(read);
        };
        let whole = kept + last + 1;
        self.partial.clear();
        self.partial.extend_from_slice(&buf[whole..end]);
        self.core.decode(&buf[..whole], out)?;
        self.check_partial_length()?;
        Ok(read)
    }

    /// A line still without its newline may not outgrow `'line.max-bytes'`.
    fn check_partial_length(&self) -> Result<()> {
        let max = self.core.config.max_line;
        if self.partial.len() <= max {
            return Ok(());
        }
        exec_err!(
            "{} line {}: longer than {max} bytes without a newline; raise 'line.max-bytes' on the table if lines are that long",
            self.core.source,
            self.core.lines + 1
        )
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
            if !self.config.bad_rows.skip {
                return Err(self.locate(data, first, e, out));
            }
            self.inner = self.config.build(self.batch_size)?;
            self.skip_bad_lines(data, first, out)?;
        }
        self.lines = first - 1 + count_lines(data);
        Ok(())
    }

    /// Decode the good lines of `data` (whose first line is number `first`)
    /// into `out`, skipping, counting and writing aside the bad ones.
    fn skip_bad_lines(&mut self, data: &[u8], first: u64, out: &mut Vec<RecordBatch>) -> Result<()> {
        let mut probe = self.config.build(self.batch_size)?;
        let mut good = Vec::with_capacity(data.len());
        let mut bad = Vec::new();
        let stats = Arc::clone(&self.config.bad_rows.stats);
        for (number, line) in (first..).zip(data.split_inclusive(|&b| b == b'\n')) {
            if is_blank(line) {
                continue;
            }
            let mut ignored = Vec::new();
            match probe.decode_all(line, &mut ignored) {
                Ok(()) => good.extend_from_slice(line),
                Err(e) => {
                    probe = self.config.build(self.batch_size)?;
                    bad.extend_from_slice(line);
                    stats.count.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = stats.first.lock()
                        && first.is_none()
                    {
                        *first = Some(format!(
                            "{} line {number}: {}",
                            self.source,
                            self.explain(line, &e)
                        ));
                    }
                }
            }
        }
        if let Some(path) = &self.config.bad_rows.path {
            append_bad_lines(path, &bad).map_err(|e| {
                exec_datafusion_err!(
                    "cannot write the bad rows of {} to '{}': {e}",
                    self.source,
                    path.display()
                )
            })?;
        }
        // Each of these lines decoded alone, so they do together.
        self.inner
            .decode_all(&good, out)
            .map_err(|e| exec_datafusion_err!("{}: {}", self.source, self.describe(&e)))
    }

    /// Arrow's message for `e`, with a CSV column named as a user counts
    /// it: from 1, and by its name (arrow counts from 0).
    fn describe(&self, e: &ArrowError) -> String {
        let text = describe(e);
        match self.config.format {
            TextFormat::Csv(_) => name_csv_columns(&text, &self.config.table_schema),
            _ => text,
        }
    }

    /// What is wrong with `line`, which failed with `error`. A value that
    /// is no number at all fails in the exact integer decoding without the
    /// column's name, so arrow-json's own decoding says it then.
    fn explain(&self, line: &[u8], error: &ArrowError) -> String {
        if let Ok(mut plain) = self.config.build_with(self.batch_size, false)
            && let Err(e) = plain.decode_all(line, &mut Vec::new())
        {
            return self.describe(&e);
        }
        self.describe(error)
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
                    return exec_datafusion_err!("{} line {number}: {}", self.source, self.explain(line, &e));
                }
            }
            start += line.len();
        }
        let last = first + count_lines(data).saturating_sub(1);
        exec_datafusion_err!("{} lines {first}-{last}: {}", self.source, self.describe(&error))
    }

    /// Check a CSV header (line number `number`) against the declared columns:
    /// the same count, the same names in the same order (any case).
    fn check_header(&self, line: &[u8], number: u64) -> Result<()> {
        let Some(csv) = self.config.format.csv() else {
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
        let declared = &self.config.header_schema();
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

/// `text` (arrow-csv's message) with its 0-based column numbers (`for
/// column 0`, `Error parsing column 0`) made 1-based and named from `schema`
/// (`in column 1 ('id')`).
pub fn name_csv_columns(text: &str, schema: &arrow::datatypes::Schema) -> String {
    static COLUMN: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(for|parsing) column (\d+)").expect("a valid regex"));
    COLUMN
        .replace_all(text, |c: &regex::Captures<'_>| {
            let verb = if &c[1] == "for" { "in" } else { "parsing" };
            match c[2]
                .parse::<usize>()
                .ok()
                .and_then(|i| Some((i, schema.fields().get(i)?)))
            {
                Some((i, field)) => format!("{verb} column {} ('{}')", i + 1, field.name()),
                None => c[0].to_string(),
            }
        })
        .into_owned()
}

/// Append `lines` (whole lines, as read) to the bad-rows file.
fn append_bad_lines(path: &std::path::Path, lines: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if lines.is_empty() {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(lines)
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
    fn a_csv_changelog_has_its_op_first_and_a_header_naming_it() {
        let config = DecoderConfig::try_new(
            TextFormat::ChangelogCsv(CsvOptions::default()),
            schema(),
            Some(vec![1]),
        )
        .expect("config");
        let mut d = LineDecoder::new("stdin", config, 1024).expect("decoder");
        let mut out = Vec::new();
        d.push(b"op,id,name\n+I,1,a\n-U,1,a\n+U,1,b\n-D,1,b\n", &mut out)
            .expect("decodes");
        let batch = arrow::compute::concat_batches(&out[0].schema(), &out).expect("one batch");
        assert_eq!(
            batch.schema().field(0).name(),
            crate::connectors::changelog::CHANGE_CODE_COLUMN
        );
        assert_eq!(
            batch
                .column(0)
                .as_primitive::<arrow::datatypes::Int8Type>()
                .values(),
            &[0, 1, 2, 3]
        );
        let names = batch.column(1).as_string::<i32>();
        assert_eq!(
            (0..4).map(|i| names.value(i)).collect::<Vec<_>>(),
            ["a", "a", "b", "b"]
        );
        // A header without `op`, and a row with an unknown op, say so.
        let config = DecoderConfig::try_new(TextFormat::ChangelogCsv(CsvOptions::default()), schema(), None)
            .expect("config");
        let mut d = LineDecoder::new("stdin", config.clone(), 1024).expect("decoder");
        let error = d.push(b"id,name\n", &mut Vec::new()).expect_err("no op column");
        assert!(
            error.to_string().contains("the table declares 3 (op, id, name)"),
            "{error}"
        );
        let mut d = LineDecoder::new("stdin", config, 1024).expect("decoder");
        let error = d
            .push(b"op,id,name\n+I,1,a\nX,2,b\n", &mut Vec::new())
            .expect_err("bad op");
        assert!(
            error.to_string().contains("stdin line 3") && error.to_string().contains("'X'"),
            "{error}"
        );
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
    fn a_json_fraction_in_an_integer_column_is_an_error_naming_line_and_column() {
        let mut d = json();
        let mut out = Vec::new();
        let err = d
            .push(
                b"{\"id\": 1}\n{\"id\": 2.0, \"name\": \"b\"}\n{\"id\": 5.7}\n",
                &mut out,
            )
            .expect_err("fraction");
        assert_eq!(ids(&out), [1, 2], "rows before the bad one come out");
        assert!(
            err.to_string().contains(
                "stdin line 3: column 'id' is BIGINT but the value is 5.7, a number with a fraction: declare the column DOUBLE or DECIMAL"
            ),
            "{err}"
        );
        // Integers beyond a float's 53 bits stay exact.
        let mut out = Vec::new();
        json()
            .push(b"{\"id\": 9007199254740993}\n", &mut out)
            .expect("ok");
        assert_eq!(ids(&out), [9007199254740993]);
    }

    #[test]
    fn bad_lines_are_skipped_counted_and_written_aside() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.ndjson");
        let bad_rows = BadRows {
            skip: true,
            path: Some(path.clone()),
            stats: Arc::new(BadRowStats::default()),
        };
        let config = DecoderConfig::try_new(TextFormat::Json, schema(), None)
            .expect("config")
            .with_bad_rows(bad_rows.clone());
        let mut d = LineDecoder::new("stdin", config, 2).expect("decoder");
        let mut out = Vec::new();
        d.push(b"{\"id\": 1}\n{\"id\": \"x\"}\n{\"id\": 3}\n", &mut out)
            .expect("skips");
        d.push(b"nonsense\n\n{\"id\": 5}\n{\"id\": 6}\n{\"id\": 7}\n", &mut out)
            .expect("skips");
        assert_eq!(ids(&out), [1, 3, 5, 6, 7]);
        assert_eq!(d.lines(), 8, "bad and blank lines count as lines");
        assert_eq!(bad_rows.stats.count.load(Ordering::Relaxed), 2);
        let first = bad_rows.stats.first.lock().expect("lock").clone().expect("first");
        assert!(first.starts_with("stdin line 2: "), "{first}");
        assert_eq!(
            std::fs::read_to_string(&path).expect("written"),
            "{\"id\": \"x\"}\nnonsense\n"
        );
        // Without the option the same input is an error naming the line.
        let err = json()
            .push(b"{\"id\": 1}\n{\"id\": \"x\"}\n", &mut Vec::new())
            .expect_err("fails");
        assert!(err.to_string().contains("stdin line 2"), "{err}");
    }

    #[test]
    fn bad_row_options_are_checked() {
        let opts = |pairs: &[(&str, &str)]| {
            Options::try_new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid")
        };
        let mut o = opts(&[("csv.ignore-parse-errors", "true")]);
        assert!(BadRows::take(&mut o, FileFormat::Csv).expect("csv").skip);
        let mut o = opts(&[("csv.ignore-parse-errors", "true")]);
        let err = BadRows::take(&mut o, FileFormat::Json).expect_err("wrong format");
        assert!(
            err.to_string().contains("use 'json.ignore-parse-errors'"),
            "{err}"
        );
        let mut o = opts(&[("format.bad-rows.path", "x")]);
        let err = BadRows::take(&mut o, FileFormat::Json).expect_err("no skip");
        assert!(
            err.to_string()
                .contains("add 'json.ignore-parse-errors' = 'true'"),
            "{err}"
        );
        let mut o = opts(&[]);
        assert!(!BadRows::take(&mut o, FileFormat::Csv).expect("default").skip);
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
            text.contains(
                "file a.csv line 4: Error while parsing value 'x' as type 'Int64' in column 1 ('id')."
            ),
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

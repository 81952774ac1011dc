//! The `stdin` connector: NDJSON or CSV lines piped into the process, as one
//! stream in arrival order. Unbounded unless `'bounded' = 'true'`, which says
//! the input ends (a file or a finished command piped in), so a query over it
//! can run in batch.
//!
//! ```sql
//! CREATE TABLE events (id BIGINT, ts TIMESTAMP(3))
//! WITH ('connector' = 'stdin', 'format' = 'json');
//! ```

use std::io::Read;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use super::file::{CsvOptions, FileFormat};
use super::line_decoder::{
    BadRowStats, BadRows, DecoderConfig, LineDecoder, TextFormat, fresh_bad_rows, take_max_line,
    thread_stream,
};
use super::{Boundedness, Options};

/// The options the stdin connector accepts, for error messages.
pub const ACCEPTED_OPTIONS: &[&str] = &[
    "connector",
    "format (json or csv)",
    "bounded ('true' when the input ends: the query may then run in batch)",
    "csv.header",
    "csv.field-delimiter",
    "csv.quote-character",
    "csv.null-literal",
    "csv.ignore-parse-errors / json.ignore-parse-errors ('true': skip and count bad rows)",
    "format.bad-rows.path (a file skipped rows are appended to)",
    "line.max-bytes (the longest line; 8 MiB)",
];

/// Opens the input each time a scan runs: the process's stdin, or bytes in tests.
pub type ReaderFactory = Arc<dyn Fn() -> Box<dyn Read + Send> + Send + Sync>;

/// A table whose rows are the lines of stdin.
pub struct StdinTable {
    /// The declared columns.
    schema: SchemaRef,
    format: TextFormat,
    boundedness: Boundedness,
    open: ReaderFactory,
    /// What a bad line does; its counts are those of the latest scan.
    bad_rows: Mutex<BadRows>,
    /// The longest line read (`'line.max-bytes'`).
    max_line: usize,
}

impl std::fmt::Debug for StdinTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdinTable")
            .field("schema", &self.schema)
            .field("format", &self.format)
            .field("boundedness", &self.boundedness)
            .finish_non_exhaustive()
    }
}

impl StdinTable {
    /// A stdin table from its declared columns and `WITH` options.
    pub fn try_new(declared: Option<SchemaRef>, mut options: Options) -> Result<Self> {
        options.take("connector");
        let format = options.take_required(
            "format",
            "'json', 'csv', 'changelog-json', 'changelog-csv' or 'debezium-json'",
        )?;
        let format = if let Some(changelog) = TextFormat::changelog(&format, &mut options)? {
            changelog
        } else {
            let format = FileFormat::parse(&format)?;
            let csv = CsvOptions::take(&mut options, format)?;
            let Some(text) = TextFormat::new(format, csv) else {
                return plan_err!(
                    "stdin reads 'format' = 'json', 'csv', 'changelog-json', 'changelog-csv' or 'debezium-json', not '{format}'"
                );
            };
            text
        };
        let bounded = options.take_bool("bounded")?.unwrap_or(false);
        let bad_rows = BadRows::take(&mut options, format.file_format())?;
        let max_line = take_max_line(&mut options)?;
        options.finish("stdin", ACCEPTED_OPTIONS)?;
        let Some(schema) = declared else {
            return plan_err!(
                "a 'stdin' table needs its columns: CREATE TABLE name (col TYPE, ...) WITH ('connector' = 'stdin', 'format' = '{}')",
                format.name()
            );
        };
        DecoderConfig::try_new(format.clone(), Arc::clone(&schema), None)?;
        Ok(Self {
            schema,
            format,
            boundedness: if bounded {
                Boundedness::Bounded
            } else {
                Boundedness::Unbounded
            },
            open: Arc::new(|| Box::new(std::io::stdin())),
            bad_rows: Mutex::new(bad_rows),
            max_line,
        })
    }

    /// Read from what `open` returns instead of stdin (for tests).
    pub fn with_reader(mut self, open: ReaderFactory) -> Self {
        self.open = open;
        self
    }

    /// The bad lines the latest scan skipped, if the table skips them.
    pub fn bad_rows(&self) -> Option<Arc<BadRowStats>> {
        let bad_rows = self.bad_rows.lock().ok()?;
        bad_rows.skip.then(|| Arc::clone(&bad_rows.stats))
    }

    /// Whether the input is declared to end.
    pub fn boundedness(&self) -> Boundedness {
        self.boundedness
    }

    /// Whether its rows are changes (`'format' = 'debezium-json'`).
    pub fn is_changelog(&self) -> bool {
        self.format.is_changelog()
    }

    /// What EXPLAIN shows after the connector's name: the format.
    pub fn description(&self) -> String {
        self.format.name().to_string()
    }
}

#[async_trait]
impl TableProvider for StdinTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let config =
            DecoderConfig::try_new(self.format.clone(), Arc::clone(&self.schema), projection.cloned())?
                .with_bad_rows(fresh_bad_rows(&self.bad_rows))
                .with_max_line(self.max_line);
        let schema = Arc::clone(config.schema());
        let partition = StdinPartition {
            config,
            open: Arc::clone(&self.open),
        };
        let infinite = self.boundedness == Boundedness::Unbounded;
        let exec = StreamingTableExec::try_new(schema, vec![Arc::new(partition)], None, [], infinite, limit)?;
        Ok(Arc::new(exec))
    }
}

/// The one partition of a stdin scan.
struct StdinPartition {
    config: DecoderConfig,
    open: ReaderFactory,
}

impl std::fmt::Debug for StdinPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdinPartition")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PartitionStream for StdinPartition {
    fn schema(&self) -> &SchemaRef {
        self.config.schema()
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let config = self.config.clone();
        let open = Arc::clone(&self.open);
        let batch_size = ctx.session_config().batch_size();
        thread_stream("stdin", Arc::clone(self.config.schema()), move |tx| {
            let mut decoder = match LineDecoder::new("stdin", config, batch_size) {
                Ok(d) => d,
                Err(e) => {
                    tx.send(Err(e));
                    return;
                }
            };
            let mut reader = open();
            let mut buf = Vec::new();
            let mut out = Vec::new();
            loop {
                let read = decoder.read_from(&mut reader, &mut buf, &mut out);
                let read = match read {
                    Ok(0) => decoder.finish(&mut out).map(|()| 0),
                    other => other,
                };
                if !tx.send_all(&mut out) {
                    return;
                }
                match read {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) => {
                        tx.send(Err(e));
                        return;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::physical_plan::ExecutionPlanProperties;
    use datafusion::prelude::SessionContext;
    use futures::StreamExt;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        Options::try_new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid")
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    /// A table reading `text` in reads of at most `piece` bytes.
    fn table(options: &[(&str, &str)], text: &'static str, piece: usize) -> StdinTable {
        StdinTable::try_new(Some(schema()), opts(options))
            .expect("valid options")
            .with_reader(Arc::new(move || Box::new(Pieces(text.as_bytes(), piece))))
    }

    /// A reader returning at most `.1` bytes a read, like a pipe.
    struct Pieces(&'static [u8], usize);

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn options_are_checked() {
        let err = StdinTable::try_new(None, opts(&[("format", "json")])).expect_err("no columns");
        assert!(
            err.to_string().contains(
                "a 'stdin' table needs its columns: CREATE TABLE name (col TYPE, ...) WITH ('connector' = 'stdin', 'format' = 'json')"
            ),
            "{err}"
        );
        let err = StdinTable::try_new(Some(schema()), opts(&[])).expect_err("no format");
        assert!(err.to_string().contains("missing option 'format'"), "{err}");
        let err = StdinTable::try_new(Some(schema()), opts(&[("format", "parquet")])).expect_err("parquet");
        assert!(err.to_string().contains("not 'parquet'"), "{err}");
        let err = StdinTable::try_new(
            Some(schema()),
            opts(&[("format", "json"), ("csv.header", "false")]),
        )
        .expect_err("csv option");
        assert!(
            err.to_string()
                .contains("'csv.*' options apply to 'format' = 'csv'"),
            "{err}"
        );
        let err = StdinTable::try_new(Some(schema()), opts(&[("format", "json"), ("path", "x")]))
            .expect_err("path");
        assert!(
            err.to_string()
                .contains("unknown option 'path' for connector 'stdin'"),
            "{err}"
        );
        let t =
            StdinTable::try_new(Some(schema()), opts(&[("format", "csv"), ("bounded", "true")])).expect("ok");
        assert_eq!(t.boundedness(), Boundedness::Bounded);
        assert_eq!(t.description(), "csv");
        let t = StdinTable::try_new(Some(schema()), opts(&[("format", "json")])).expect("ok");
        assert_eq!(t.boundedness(), Boundedness::Unbounded);
    }

    async fn collect(table: StdinTable) -> (Vec<RecordBatch>, Option<String>) {
        let ctx = SessionContext::new();
        let plan = table.scan(&ctx.state(), None, &[], None).await.expect("scan");
        assert_eq!(plan.output_partitioning().partition_count(), 1);
        let mut stream = plan.execute(0, ctx.task_ctx()).expect("stream");
        let mut batches = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(b) => batches.push(b),
                Err(e) => return (batches, Some(e.to_string())),
            }
        }
        (batches, None)
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect()
    }

    #[tokio::test]
    async fn reads_every_line_in_order() {
        let text = "{\"id\": 1, \"name\": \"a\"}\n{\"id\": 2}\n\n{\"id\": 3, \"name\": \"c\"}";
        let (batches, err) = collect(table(&[("format", "json")], text, 7)).await;
        assert_eq!(err, None);
        assert_eq!(ids(&batches), [1, 2, 3]);
        let (batches, err) = collect(table(&[("format", "csv")], "id,name\n1,a\n2,b\n", 4096)).await;
        assert_eq!(err, None);
        assert_eq!(ids(&batches), [1, 2]);
        assert_eq!(batches[0].column(1).as_string::<i32>().value(1), "b");
    }

    #[tokio::test]
    async fn a_bad_line_ends_the_stream_with_its_number() {
        let text = "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3, \"name\": [1]}\n{\"id\": 4}\n";
        let (batches, err) = collect(table(&[("format", "json")], text, 4096)).await;
        assert_eq!(ids(&batches), [1, 2]);
        let err = err.expect("an error");
        assert!(err.contains("stdin line 3: "), "{err}");
    }

    #[tokio::test]
    async fn each_line_is_out_as_soon_as_it_is_written() {
        let (reader, mut writer) = std::io::pipe().expect("a pipe");
        let reader = std::sync::Mutex::new(Some(reader));
        let table = StdinTable::try_new(Some(schema()), opts(&[("format", "json")]))
            .expect("valid options")
            .with_reader(Arc::new(move || {
                let reader = reader.lock().expect("lock").take().expect("opened once");
                Box::new(reader)
            }));
        let ctx = SessionContext::new();
        let plan = table.scan(&ctx.state(), None, &[], None).await.expect("scan");
        let mut stream = plan.execute(0, ctx.task_ctx()).expect("stream");
        let mut next = async || {
            let item = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await;
            item.expect("within 5 s").map(|b| ids(&[b.expect("a batch")]))
        };
        use std::io::Write;
        writer.write_all(b"{\"id\": 1}\n{\"id\": 2").expect("write");
        assert_eq!(next().await, Some(vec![1]));
        writer.write_all(b"}\n").expect("write");
        assert_eq!(next().await, Some(vec![2]));
        drop(writer);
        assert_eq!(next().await, None, "the end of input ends the stream");
    }
}

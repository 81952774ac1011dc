//! `'connector' = 'file'` with `'follow' = 'true'`: a local NDJSON or CSV
//! file, or every file of a directory, read to the end and then followed like
//! `tail -F`: lines appended to a file, and new files in the directory, are
//! read as they come (polled every [`POLL`]). A line is read once its newline
//! is written. A file truncated, or replaced under its name (rotated), is read
//! again from its start. Unbounded.
//!
//! Files of a directory are read in path order, each to its current end, then
//! each again for what was appended; names starting with `.` (editors' and
//! writers' temporary files) are skipped, and so are subdirectories.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{TableReference, exec_datafusion_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use super::Options;
use super::file::{self, CsvOptions, FileFormat};
use super::line_decoder::{
    BadRowStats, BadRows, BatchSender, DEFAULT_MAX_LINE, DecoderConfig, LineDecoder, TextFormat,
    fresh_bad_rows, take_max_line, thread_stream,
};

/// How often files are checked for new lines, and a directory for new files.
pub const POLL: Duration = Duration::from_millis(100);

/// A followed file or directory.
#[derive(Debug)]
pub struct FollowTable {
    /// The declared (or inferred) columns.
    schema: SchemaRef,
    format: TextFormat,
    /// The path as written, for EXPLAIN and errors.
    path: String,
    /// The local path.
    local: PathBuf,
    /// What a bad line does; its counts are those of the latest scan.
    bad_rows: Mutex<BadRows>,
    /// The longest line read (`'line.max-bytes'`).
    max_line: usize,
}

/// Build a followed file table from the file connector's options (without
/// `'follow'`). `declared` is the schema written in `CREATE TABLE`, or `None`
/// to take it from the files there now.
pub async fn create_table(
    state: &dyn Session,
    name: &TableReference,
    declared: Option<SchemaRef>,
    options: Options,
) -> Result<FollowTable> {
    let mut mine = options.clone();
    mine.take("connector");
    let path = mine.take_required("path", "the file or directory to follow")?;
    let format = FileFormat::take(&mut mine, &path)?;
    let csv = CsvOptions::take(&mut mine, format)?;
    let bad_rows = BadRows::take(&mut mine, format)?;
    let max_line = take_max_line(&mut mine)?;
    if !mine.take_prefixed("s3.").is_empty() {
        return plan_err!("'follow' needs a local path; 's3.*' options are for remote ones");
    }
    mine.finish("file", file::ACCEPTED_OPTIONS)?;
    let Some(text) = TextFormat::new(format, csv) else {
        return plan_err!("'follow' = 'true' reads 'json' or 'csv' files, not '{format}'");
    };
    let local = local_path(&path)?;
    if path.contains(['*', '?', '[']) {
        return plan_err!("'follow' reads a file or a directory, not a glob: '{path}'");
    }
    file::check_local_path_exists(&local.display().to_string())?;
    let schema = match declared {
        Some(schema) => schema,
        None => {
            let mut options = options;
            // Reading once to infer the columns does not skip bad rows.
            BadRows::take(&mut options, format)?;
            take_max_line(&mut options)?;
            let inferred = file::create_table(state, name, None, options)
                .await?
                .provider
                .schema();
            if inferred.fields().is_empty() {
                return plan_err!(
                    "'{path}' holds no rows to take the columns from: declare them, CREATE TABLE name (col TYPE, ...) WITH (...)"
                );
            }
            inferred
        }
    };
    Ok(FollowTable {
        max_line,
        ..FollowTable::try_new(schema, text, path, local)?.with_bad_rows(bad_rows)
    })
}

/// The local path of `path`, a plain path or a `file://` URL; an error for
/// remote ones.
fn local_path(path: &str) -> Result<PathBuf> {
    match url::Url::parse(path) {
        Ok(url) if url.scheme() == "file" => url
            .to_file_path()
            .map_err(|()| exec_datafusion_err!("'{path}' is not a local file path")),
        // `C:\...` parses as a URL with scheme `c`.
        Ok(url) if url.scheme().len() > 1 => plan_err!(
            "'follow' needs a local path, not '{path}': it reads the file as it grows; remove 'follow' to read a remote file once"
        ),
        _ => Ok(PathBuf::from(path)),
    }
}

impl FollowTable {
    /// Follow `local` (written `path`), decoding lines of `format` into `schema`.
    pub fn try_new(schema: SchemaRef, format: TextFormat, path: String, local: PathBuf) -> Result<Self> {
        DecoderConfig::try_new(format.clone(), Arc::clone(&schema), None)?;
        Ok(Self {
            schema,
            format,
            path,
            local,
            bad_rows: Mutex::new(BadRows::default()),
            max_line: DEFAULT_MAX_LINE,
        })
    }

    /// Skip bad lines as `bad_rows` says.
    pub fn with_bad_rows(self, bad_rows: BadRows) -> Self {
        Self {
            bad_rows: Mutex::new(bad_rows),
            ..self
        }
    }

    /// The bad lines the latest scan skipped, if the table skips them.
    pub fn bad_rows(&self) -> Option<Arc<BadRowStats>> {
        let bad_rows = self.bad_rows.lock().ok()?;
        bad_rows.skip.then(|| Arc::clone(&bad_rows.stats))
    }

    /// What EXPLAIN shows after the connector's name: `json events.ndjson (follow)`.
    pub fn description(&self) -> String {
        format!("{} {} (follow)", self.format.name(), self.path)
    }
}

#[async_trait]
impl TableProvider for FollowTable {
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
        let partition = FollowPartition {
            config,
            path: self.path.clone(),
            local: self.local.clone(),
        };
        let exec = StreamingTableExec::try_new(schema, vec![Arc::new(partition)], None, [], true, limit)?;
        Ok(Arc::new(exec))
    }
}

/// The one partition of a followed scan.
#[derive(Debug)]
struct FollowPartition {
    config: DecoderConfig,
    path: String,
    local: PathBuf,
}

impl PartitionStream for FollowPartition {
    fn schema(&self) -> &SchemaRef {
        self.config.schema()
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let follower = Follower {
            config: self.config.clone(),
            batch_size: ctx.session_config().batch_size(),
            path: self.path.clone(),
            local: self.local.clone(),
            files: BTreeMap::new(),
            buf: Vec::new(),
        };
        thread_stream(
            &format!("follow {}", self.path),
            Arc::clone(self.config.schema()),
            move |tx| follower.run(tx),
        )
    }
}

/// The state of a followed scan, on its thread.
struct Follower {
    config: DecoderConfig,
    batch_size: usize,
    /// The path as written.
    path: String,
    local: PathBuf,
    /// Every file read so far, in path order.
    files: BTreeMap<PathBuf, Followed>,
    /// Read buffer, shared by the files.
    buf: Vec<u8>,
}

/// One file being followed.
struct Followed {
    file: File,
    /// Which file the handle is (device and inode), to notice a new file under the name.
    id: Option<(u64, u64)>,
    /// Bytes read so far, to notice truncation.
    offset: u64,
    decoder: LineDecoder,
}

impl Follower {
    /// Read and poll until the query stops reading or an error.
    fn run(mut self, tx: BatchSender) {
        let mut out = Vec::new();
        let mut first = true;
        loop {
            let result = self.poll(first, &tx, &mut out);
            first = false;
            match result {
                Ok(Some(read_any)) => {
                    if tx.is_closed() {
                        return;
                    }
                    if !read_any {
                        std::thread::sleep(POLL);
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    if tx.send_all(&mut out) {
                        tx.send(Err(e));
                    }
                    return;
                }
            }
        }
    }

    /// One round: look for new files, then read every file to its end.
    /// `Some(whether anything was read)`, or `None` when the query stopped.
    fn poll(&mut self, first: bool, tx: &BatchSender, out: &mut Vec<RecordBatch>) -> Result<Option<bool>> {
        for path in self.list(first)? {
            if self.files.contains_key(&path) {
                continue;
            }
            match self.open(&path) {
                Ok(followed) => {
                    self.files.insert(path, followed);
                }
                // Gone between listing and opening: nothing to read.
                Err(e) if e.kind() == ErrorKind::NotFound && !first => {}
                Err(e) => return Err(exec_datafusion_err!("cannot open '{}': {e}", path.display())),
            }
        }
        let mut read_any = false;
        let paths: Vec<PathBuf> = self.files.keys().cloned().collect();
        for path in paths {
            // The file under the name now, if the name is still there.
            let now = std::fs::metadata(&path).ok();
            let replaced = now.as_ref().is_some_and(|m| file_id(m) != self.files[&path].id);
            let truncated = now.as_ref().is_some_and(|m| m.len() < self.files[&path].offset);
            // What was appended to a replaced file before it was replaced is
            // read first.
            match self.read_to_end(&path, tx, out)? {
                None => return Ok(None),
                Some(read) => read_any |= read,
            }
            if replaced || truncated {
                match self.open(&path) {
                    Ok(followed) => {
                        self.files.insert(path.clone(), followed);
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(exec_datafusion_err!("cannot open '{}': {e}", path.display())),
                }
                match self.read_to_end(&path, tx, out)? {
                    None => return Ok(None),
                    Some(read) => read_any |= read,
                }
            }
        }
        Ok(Some(read_any))
    }

    /// Read `path`'s followed file to its current end, sending batches as
    /// they come. `Some(whether anything was read)`, `None` if the query stopped.
    fn read_to_end(
        &mut self,
        path: &Path,
        tx: &BatchSender,
        out: &mut Vec<RecordBatch>,
    ) -> Result<Option<bool>> {
        let Some(followed) = self.files.get_mut(path) else {
            return Ok(Some(false));
        };
        let mut read_any = false;
        loop {
            let read = followed
                .decoder
                .read_from(&mut followed.file, &mut self.buf, out)?;
            if read == 0 {
                return Ok(Some(read_any));
            }
            read_any = true;
            followed.offset += read as u64;
            if !tx.send_all(out) {
                return Ok(None);
            }
        }
    }

    /// The files to follow: the path itself, or the files of the directory.
    fn list(&self, first: bool) -> Result<Vec<PathBuf>> {
        if !self.local.is_dir() {
            return Ok(vec![self.local.clone()]);
        }
        let entries = match std::fs::read_dir(&self.local) {
            Ok(entries) => entries,
            // The directory went away: keep reading the files already open.
            Err(e) if e.kind() == ErrorKind::NotFound && !first => return Ok(Vec::new()),
            Err(e) => return Err(exec_datafusion_err!("cannot list '{}': {e}", self.path)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let Ok(entry) = entry else { continue };
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths)
    }

    /// Open `path` to read it from its start.
    fn open(&self, path: &Path) -> std::io::Result<Followed> {
        let file = File::open(path)?;
        let id = file_id(&file.metadata()?);
        let name = if path == self.local {
            self.path.clone()
        } else {
            path.display().to_string()
        };
        let decoder = LineDecoder::new(format!("file {name}"), self.config.clone(), self.batch_size)
            .map_err(std::io::Error::other)?;
        Ok(Followed {
            file,
            id,
            offset: 0,
            decoder,
        })
    }
}

/// The device and inode of a file, where the platform has them.
fn file_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::physical_plan::ExecutionPlanProperties;
    use datafusion::prelude::SessionContext;
    use futures::StreamExt;
    use std::io::Write;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    fn opts(pairs: &[(&str, &str)]) -> Options {
        Options::try_new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid")
    }

    async fn stream(path: &Path, format: TextFormat) -> SendableRecordBatchStream {
        let table = FollowTable::try_new(schema(), format, path.display().to_string(), path.to_path_buf())
            .expect("table");
        let ctx = SessionContext::new();
        let plan = table.scan(&ctx.state(), None, &[], None).await.expect("scan");
        assert_eq!(plan.output_partitioning().partition_count(), 1);
        plan.execute(0, ctx.task_ctx()).expect("stream")
    }

    /// The ids of the next `n` rows, failing after a few seconds.
    async fn next_ids(stream: &mut SendableRecordBatchStream, n: usize) -> Vec<i64> {
        let mut ids = Vec::new();
        while ids.len() < n {
            let batch = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("rows within 5 s")
                .expect("the stream goes on")
                .expect("a batch");
            ids.extend(batch.column(0).as_primitive::<Int64Type>().values().iter());
        }
        ids
    }

    /// Whether the stream stays quiet for a while.
    async fn quiet(stream: &mut SendableRecordBatchStream) -> bool {
        tokio::time::timeout(POLL * 4, stream.next()).await.is_err()
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .expect("open to append");
        f.write_all(text.as_bytes()).expect("append");
    }

    #[tokio::test]
    async fn appended_lines_are_read_once_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.ndjson");
        append(&path, "{\"id\": 1}\n{\"id\": 2}\n");
        let mut s = stream(&path, TextFormat::Json).await;
        assert_eq!(next_ids(&mut s, 2).await, [1, 2]);
        assert!(quiet(&mut s).await);
        append(&path, "{\"id\": 3}\n{\"id\"");
        assert_eq!(next_ids(&mut s, 1).await, [3]);
        assert!(quiet(&mut s).await, "a partial line waits");
        append(&path, ": 4, \"name\": \"d\"}\n");
        assert_eq!(next_ids(&mut s, 1).await, [4]);
        // Truncated and rewritten: read again from the start.
        std::fs::write(&path, "{\"id\": 5}\n").expect("rewrite");
        assert_eq!(next_ids(&mut s, 1).await, [5]);
    }

    #[tokio::test]
    async fn new_files_in_a_directory_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        append(&dir.path().join("b.csv"), "id,name\n2,b\n");
        append(&dir.path().join("a.csv"), "id,name\n1,a\n");
        append(&dir.path().join(".a.csv.swp"), "junk\n");
        let format = TextFormat::Csv(CsvOptions::default());
        let mut s = stream(dir.path(), format).await;
        assert_eq!(next_ids(&mut s, 2).await, [1, 2], "in path order");
        append(&dir.path().join("c.csv"), "id,name\n3,c\n4,d\n");
        assert_eq!(next_ids(&mut s, 2).await, [3, 4]);
        append(&dir.path().join("a.csv"), "5,e\n");
        assert_eq!(next_ids(&mut s, 1).await, [5]);
        append(&dir.path().join("d.csv"), "id,name\nx,e\n");
        let d = dir.path().join("d.csv").display().to_string();
        let err = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("within 5 s")
            .expect("an item")
            .expect_err("a bad id");
        assert!(err.to_string().contains(&format!("file {d} line 2: ")), "{err}");
    }

    #[tokio::test]
    async fn options_are_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.parquet");
        append(&path, "");
        let state = SessionContext::new().state();
        let name = TableReference::bare("t");
        let create = |pairs: &[(&str, &str)]| create_table(&state, &name, Some(schema()), opts(pairs));
        let p = path.display().to_string();
        let err = create(&[("path", &p)]).await.expect_err("parquet");
        assert!(
            err.to_string()
                .contains("'follow' = 'true' reads 'json' or 'csv' files, not 'parquet'"),
            "{err}"
        );
        let err = create(&[("path", "s3://bucket/x.ndjson")])
            .await
            .expect_err("remote");
        assert!(err.to_string().contains("'follow' needs a local path"), "{err}");
        let err = create(&[("path", "logs/*.ndjson")]).await.expect_err("glob");
        assert!(err.to_string().contains("not a glob"), "{err}");
        let missing = dir.path().join("missing.ndjson").display().to_string();
        let err = create(&[("path", &missing)]).await.expect_err("missing");
        assert!(err.to_string().contains("file not found"), "{err}");

        let json = dir.path().join("a.ndjson");
        append(&json, "{\"id\": 1, \"x\": 2.5}\n");
        let j = json.display().to_string();
        let table = create(&[("path", &j)]).await.expect("declared");
        assert_eq!(table.description(), format!("json {j} (follow)"));
        let table = create_table(&state, &name, None, opts(&[("path", &j)]))
            .await
            .expect("inferred");
        assert_eq!(crate::connectors::column_names(&table.schema()), "id, x");
        let empty = dir.path().join("empty.ndjson");
        append(&empty, "");
        let e = empty.display().to_string();
        let err = create_table(&state, &name, None, opts(&[("path", &e)]))
            .await
            .expect_err("nothing to infer from");
        assert!(err.to_string().contains("declare them"), "{err}");
    }
}

//! `'connector' = 'file'` with `'follow' = 'true'`: a local NDJSON or CSV
//! file, or every file of a directory, read to the end and then followed like
//! `tail -F`: lines appended to a file, and new files in the directory, are
//! read as they come (polled every [`POLL`]). A line is read once its newline
//! is written. Unbounded.
//!
//! Nothing is skipped silently. A file truncated, or rewritten in place (its
//! first bytes changed: they are compared at every poll, as `cp new file`
//! keeps the inode and may keep the size), is read again from its start. A
//! file replaced under its name (rotated) is read to its end first, and then
//! still for [`DRAIN`] after its last new byte (a writer that reopens late),
//! its partial last line included, while the new file is read. A followed
//! path that is gone for [`GONE_AFTER`] ends the query with an error saying so.
//!
//! With checkpoints the scan keeps, per file, where it is ([`FilePosition`]:
//! the bytes of whole lines handed over, the rows after them, which file it
//! is), and a resumed scan seeks there ([`FollowTable::resume_from`]); a file
//! rotated, truncated or rewritten while the query was down is read from its
//! start, and said so.
//!
//! Files of a directory are read in path order, each to its current end, then
//! each again for what was appended; names starting with `.` (editors' and
//! writers' temporary files) are skipped, and so are subdirectories.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{TableReference, exec_datafusion_err, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use super::Options;
use super::file::{self, CsvOptions, FileFormat};
use crate::stream::checkpoint::manifest::{FilePosition, fingerprint_bytes};

use super::line_decoder::{
    BadRowStats, BadRows, BatchSender, DEFAULT_MAX_LINE, DecoderConfig, LineDecoder, TextFormat,
    fresh_bad_rows, take_max_line, thread_stream,
};

/// How often files are checked for new lines, and a directory for new files.
pub const POLL: Duration = Duration::from_millis(100);

/// How long a rotated file is still read after its last new byte.
pub const DRAIN: Duration = Duration::from_secs(1);

/// How long a followed path may be missing (a rotation recreating it) before
/// the query stops with an error.
pub const GONE_AFTER: Duration = Duration::from_secs(3);

/// How many of a file's first bytes are compared at each poll to notice it
/// was rewritten in place.
const HEAD: usize = 4096;

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
    /// Bytes of the followed files not read yet by the latest scan.
    unread: Mutex<Arc<AtomicU64>>,
    /// Where the next scan starts in each file (a resumed query), by path.
    resume: Mutex<BTreeMap<PathBuf, FilePosition>>,
    /// Where the latest scan is in its files, as it hands rows over.
    positions: Mutex<Arc<PositionLog>>,
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
    let named = mine.take("format");
    let text = match named.as_deref() {
        Some(name) if let Some(changelog) = TextFormat::changelog(name, &mut mine)? => {
            if declared.is_none() {
                return plan_err!(
                    "a '{name}' table needs its columns (the row's, without 'op'): CREATE TABLE name (col TYPE, ...) WITH (...)"
                );
            }
            changelog
        }
        _ => {
            let format = match named {
                Some(name) => FileFormat::parse(&name)?,
                None => FileFormat::take(&mut mine, &path)?,
            };
            let csv = CsvOptions::take(&mut mine, format)?;
            let Some(text) = TextFormat::new(format, csv) else {
                return plan_err!(
                    "'follow' = 'true' reads 'json', 'csv', 'changelog-json', 'changelog-csv' or 'debezium-json' files, not '{format}'"
                );
            };
            text
        }
    };
    let format = text.file_format();
    let bad_rows = BadRows::take(&mut mine, format)?;
    let max_line = take_max_line(&mut mine)?;
    if !mine.take_prefixed("s3.").is_empty() {
        return plan_err!("'follow' needs a local path; 's3.*' options are for remote ones");
    }
    mine.finish("file", file::ACCEPTED_OPTIONS)?;
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
            unread: Mutex::new(Arc::default()),
            resume: Mutex::new(BTreeMap::new()),
            positions: Mutex::new(Arc::default()),
        })
    }

    /// Whether its rows are changes (`'format' = 'debezium-json'`).
    pub fn is_changelog(&self) -> bool {
        self.format.is_changelog()
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

    /// Bytes of the followed files that the latest scan has not read yet
    /// (their sizes less what was read), updated as it reads.
    pub fn unread_bytes(&self) -> Arc<AtomicU64> {
        match self.unread.lock() {
            Ok(unread) => Arc::clone(&unread),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Start the next scan at `files` (a checkpoint's positions): each file
    /// that is still the one the checkpoint read goes on from its position;
    /// one rotated, truncated or rewritten since then is read from its start.
    /// Returns the positions kept, and a sentence for each file that is not.
    pub fn resume_from(&self, files: &[FilePosition]) -> (Vec<FilePosition>, Vec<String>) {
        let mut kept = Vec::new();
        let mut notices = Vec::new();
        for position in files {
            let path = PathBuf::from(&position.path);
            match changed_since(&path, position) {
                None => kept.push(position.clone()),
                Some(change) => notices.push(format!("'{}' {change}", position.path)),
            }
        }
        if let Ok(mut resume) = self.resume.lock() {
            // A path read twice at the checkpoint (a rotated file still read)
            // goes on with the file under the name now.
            *resume = kept.iter().map(|p| (PathBuf::from(&p.path), p.clone())).collect();
        }
        (kept, notices)
    }

    /// Where the latest scan is in its files (see [`FilePositions`]).
    pub fn positions(&self) -> Arc<PositionLog> {
        match self.positions.lock() {
            Ok(positions) => Arc::clone(&positions),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
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
        // Fresh counts for a new scan, which the table keeps (as bad rows').
        let unread = Arc::new(AtomicU64::new(0));
        if let Ok(mut current) = self.unread.lock() {
            *current = Arc::clone(&unread);
        }
        let positions = Arc::new(PositionLog::default());
        if let Ok(mut current) = self.positions.lock() {
            *current = Arc::clone(&positions);
        }
        let resume = match self.resume.lock() {
            Ok(mut resume) => std::mem::take(&mut *resume),
            Err(_) => BTreeMap::new(),
        };
        let partition = FollowPartition {
            config,
            path: self.path.clone(),
            local: self.local.clone(),
            unread,
            resume,
            positions,
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
    unread: Arc<AtomicU64>,
    resume: BTreeMap<PathBuf, FilePosition>,
    positions: Arc<PositionLog>,
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
            rotated: Vec::new(),
            missing_since: None,
            buf: Vec::new(),
            unread: Arc::clone(&self.unread),
            resume: self.resume.clone(),
            marks: Marks {
                log: Arc::clone(&self.positions),
                sent: 0,
                last: None,
            },
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
    /// Files replaced under their names, still read for what a writer adds,
    /// with when they last grew.
    rotated: Vec<(Followed, Instant)>,
    /// Since when the followed path has been missing.
    missing_since: Option<Instant>,
    /// Read buffer, shared by the files.
    buf: Vec<u8>,
    /// Bytes of the files not read yet: counted at each poll, less what
    /// each read takes, so a long backlog shows it shrinking.
    unread: Arc<AtomicU64>,
    /// Where files start (a resumed scan), taken as each is first opened.
    resume: BTreeMap<PathBuf, FilePosition>,
    /// The positions of the rows sent, for checkpoints.
    marks: Marks,
}

/// One file being followed.
struct Followed {
    /// Its path, as positions name it.
    name: String,
    file: File,
    /// Which file the handle is (device and inode), to notice a new file under the name.
    id: Option<(u64, u64)>,
    /// Bytes read so far, to notice truncation.
    offset: u64,
    /// Its first bytes (up to [`HEAD`]) as last read, to notice a rewrite.
    head: Vec<u8>,
    decoder: LineDecoder,
    /// Rows still to pass over: a resumed file's rows after its position
    /// that the query had taken before the checkpoint.
    skip: u64,
}

impl Followed {
    /// Where it is: after the whole lines read, with the rows still to pass over.
    fn position(&self) -> FilePosition {
        let offset = self.whole_offset();
        let head = &self.head[..self.head.len().min(offset as usize)];
        FilePosition {
            path: self.name.clone(),
            inode: self.id,
            offset,
            lines: self.decoder.lines(),
            header_pending: self.decoder.header_pending(),
            skip: self.skip,
            head_hash: fingerprint_bytes(head),
            head_len: head.len() as u64,
        }
    }

    /// The bytes of the whole lines read.
    fn whole_offset(&self) -> u64 {
        self.offset.saturating_sub(self.decoder.partial_len() as u64)
    }

    /// Pass over the first rows of `out` still to skip.
    fn drop_skipped(&mut self, out: &mut Vec<RecordBatch>) {
        while self.skip > 0 && !out.is_empty() {
            let rows = out[0].num_rows() as u64;
            if rows <= self.skip {
                self.skip -= rows;
                out.remove(0);
            } else {
                out[0] = out[0].slice(self.skip as usize, (rows - self.skip) as usize);
                self.skip = 0;
            }
        }
    }
}

/// Where a followed scan is in its files, as the reader thread hands rows
/// over: marks, each saying where one file is once the scan has sent so
/// many rows. The reader pushes a mark before the rows it covers; whoever
/// counts the rows the query took ([`FilePositions`]) applies it once they
/// are all taken.
#[derive(Debug, Default)]
pub struct PositionLog {
    marks: Mutex<VecDeque<Mark>>,
}

#[derive(Debug)]
struct Mark {
    /// Rows the scan had sent when it holds.
    rows: u64,
    file: FilePosition,
    /// The file was read to its end and closed (a rotated one).
    closed: bool,
}

/// The reader's side of a [`PositionLog`].
struct Marks {
    log: Arc<PositionLog>,
    /// Rows sent so far.
    sent: u64,
    /// The last mark pushed: its file and where it was.
    last: Option<(FileKey, u64, u64)>,
}

impl Marks {
    fn push(&mut self, rows: u64, file: FilePosition, closed: bool) {
        self.last = Some((key_of(&file), file.offset, file.skip));
        if let Ok(mut marks) = self.log.marks.lock() {
            marks.push_back(Mark { rows, file, closed });
        }
    }

    /// `followed` is about to be read: rows sent from now on are its own
    /// (unless the last mark already says where it is).
    fn reading(&mut self, followed: &Followed) {
        // Compared before the position is made: a poll finds most files unchanged.
        let same = self.last.as_ref().is_some_and(|((path, inode), offset, skip)| {
            *path == followed.name
                && *inode == followed.id
                && (*offset, *skip) == (followed.whole_offset(), followed.skip)
        });
        if !same {
            self.push(self.sent, followed.position(), false);
        }
    }

    /// `out`, read from `followed`, is about to be sent.
    fn read(&mut self, followed: &Followed, out: &[RecordBatch], closed: bool) {
        self.sent += out.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        self.push(self.sent, followed.position(), closed);
    }
}

/// The positions of a followed scan's files after the rows a query took
/// from it, for its checkpoints.
#[derive(Debug)]
pub struct FilePositions {
    log: Arc<PositionLog>,
    /// Each file's position, by path and inode (a rotated file still read
    /// shares its path with the new one).
    files: BTreeMap<FileKey, FilePosition>,
    /// The last mark applied: its file, and the rows sent then. Rows taken
    /// after it are that file's.
    latest: Option<(FileKey, u64)>,
}

/// A file as positions tell files apart: its path and inode.
type FileKey = (String, Option<(u64, u64)>);

fn key_of(file: &FilePosition) -> FileKey {
    (file.path.clone(), file.inode)
}

impl FilePositions {
    /// The positions of the scan `log` reports on, which started at `start`.
    pub fn new(log: Arc<PositionLog>, start: Vec<FilePosition>) -> Self {
        Self {
            log,
            files: start.into_iter().map(|f| (key_of(&f), f)).collect(),
            latest: None,
        }
    }

    /// The query has taken the scan's first `rows` rows.
    pub fn advance(&mut self, rows: u64) {
        let Ok(mut marks) = self.log.marks.lock() else {
            return;
        };
        while marks.front().is_some_and(|m| m.rows <= rows) {
            let Some(mark) = marks.pop_front() else { break };
            let key = key_of(&mark.file);
            match mark.closed {
                true => {
                    self.files.remove(&key);
                    self.latest = None;
                }
                false => {
                    self.latest = Some((key.clone(), mark.rows));
                    self.files.insert(key, mark.file);
                }
            }
        }
    }

    /// Each file's position once the scan's first `rows` rows are taken.
    pub fn at(&mut self, rows: u64) -> Vec<FilePosition> {
        self.advance(rows);
        let mut files: Vec<FilePosition> = self.files.values().cloned().collect();
        if let Some((key, since)) = &self.latest
            && let Some(file) = files.iter_mut().find(|f| key_of(f) == *key)
        {
            file.skip += rows.saturating_sub(*since);
        }
        files
    }
}

/// What changed in the file at `path` since `position` was taken (a
/// sentence), or `None` if it is still that file, at least that long.
fn changed_since(path: &Path, position: &FilePosition) -> Option<String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            return Some(format!(
                "cannot be opened ({e}): it is read from its start if it comes back"
            ));
        }
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return Some(format!("cannot be read ({e})")),
    };
    let id = file_id(&meta);
    if position.inode.is_some() && id != position.inode {
        return Some(format!(
            "is another file than at the checkpoint (its inode changed: rotated or replaced while the query was down): read from its start; what the old file got after byte {} is not read",
            position.offset
        ));
    }
    if meta.len() < position.offset {
        return Some(format!(
            "is shorter than at the checkpoint ({} bytes, {} were read then: truncated or rewritten while the query was down): read from its start",
            meta.len(),
            position.offset
        ));
    }
    let head = read_head(&file, position.head_len as usize);
    if fingerprint_bytes(&head) != position.head_hash {
        return Some(format!(
            "changed in its first {} bytes since the checkpoint (rewritten while the query was down): read from its start",
            position.head_len
        ));
    }
    None
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
        self.check_present()?;
        self.count_unread();
        let mut read_any = false;
        let paths: Vec<PathBuf> = self.files.keys().cloned().collect();
        for path in paths {
            // The file under the name now, if the name is still there.
            let now = std::fs::metadata(&path).ok();
            let Some(followed) = self.files.get_mut(&path) else {
                continue;
            };
            let replaced = now.as_ref().is_some_and(|m| file_id(m) != followed.id);
            let truncated = now.as_ref().is_some_and(|m| m.len() < followed.offset);
            let mut rewritten = !replaced && !truncated && head_changed(followed);
            // What was appended to a replaced file before it was replaced is
            // read first (a rewritten one is not the file it was).
            if !rewritten {
                match read_file(followed, &mut self.buf, tx, out, &self.unread, &mut self.marks)? {
                    Outcome::Stopped => return Ok(None),
                    Outcome::Read(read) => read_any |= read,
                    Outcome::Rewritten => rewritten = !replaced,
                }
            }
            if replaced || truncated || rewritten {
                let fresh = match self.open(&path) {
                    Ok(fresh) => fresh,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(exec_datafusion_err!("cannot open '{}': {e}", path.display())),
                };
                if let Some(old) = self.files.insert(path.clone(), fresh)
                    && replaced
                {
                    // A writer may still add to the renamed file.
                    self.rotated.push((old, Instant::now()));
                }
                let Some(followed) = self.files.get_mut(&path) else {
                    continue;
                };
                match read_file(followed, &mut self.buf, tx, out, &self.unread, &mut self.marks)? {
                    Outcome::Stopped => return Ok(None),
                    // Rewritten again: the next poll reads it from its start.
                    Outcome::Read(_) | Outcome::Rewritten => read_any = true,
                }
            }
        }
        match self.drain_rotated(tx, out)? {
            None => return Ok(None),
            Some(read) => read_any |= read,
        }
        self.count_unread();
        Ok(Some(read_any))
    }

    /// Count the bytes of the files (rotated ones too) beyond what was read.
    fn count_unread(&self) {
        let rotated = self.rotated.iter().map(|(followed, _)| followed);
        let unread = self
            .files
            .values()
            .chain(rotated)
            .filter_map(|f| Some(f.file.metadata().ok()?.len().saturating_sub(f.offset)))
            .sum();
        self.unread.store(unread, Ordering::Relaxed);
    }

    /// Read what writers added to rotated files; a file quiet for [`DRAIN`]
    /// is read to its end, its partial last line as a line, and closed.
    fn drain_rotated(&mut self, tx: &BatchSender, out: &mut Vec<RecordBatch>) -> Result<Option<bool>> {
        let mut read_any = false;
        let mut still = Vec::with_capacity(self.rotated.len());
        for (mut followed, mut last) in std::mem::take(&mut self.rotated) {
            match read_file(
                &mut followed,
                &mut self.buf,
                tx,
                out,
                &self.unread,
                &mut self.marks,
            )? {
                Outcome::Stopped => return Ok(None),
                Outcome::Read(true) => {
                    read_any = true;
                    last = Instant::now();
                }
                // A renamed file rewritten: nothing more of it to read.
                Outcome::Read(false) | Outcome::Rewritten => {}
            }
            if last.elapsed() < DRAIN {
                still.push((followed, last));
                continue;
            }
            self.marks.reading(&followed);
            followed.decoder.finish(out)?;
            self.marks.read(&followed, out, true);
            if !tx.send_all(out) {
                return Ok(None);
            }
        }
        self.rotated = still;
        Ok(Some(read_any))
    }

    /// A followed path that is gone (deleted, or moved away and not
    /// recreated) for [`GONE_AFTER`] is an error, not a query that waits
    /// for ever without a word.
    fn check_present(&mut self) -> Result<()> {
        if self.local.exists() {
            self.missing_since = None;
            return Ok(());
        }
        let since = *self.missing_since.get_or_insert_with(Instant::now);
        if since.elapsed() < GONE_AFTER {
            return Ok(());
        }
        exec_err!(
            "followed path '{}' is gone: deleted or moved away over {} s ago and not recreated",
            self.path,
            GONE_AFTER.as_secs()
        )
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

    /// Open `path` to read it from its start, or from where a resumed scan
    /// starts it if it is still the file the checkpoint read.
    fn open(&mut self, path: &Path) -> std::io::Result<Followed> {
        let mut file = File::open(path)?;
        let id = file_id(&file.metadata()?);
        let name = if path == self.local {
            self.path.clone()
        } else {
            path.display().to_string()
        };
        let mut decoder = LineDecoder::new(format!("file {name}"), self.config.clone(), self.batch_size)
            .map_err(std::io::Error::other)?;
        let (mut offset, mut head, mut skip) = (0, Vec::new(), 0);
        // Checked again now it is open: it may have changed since the resume was planned.
        if let Some(start) = self.resume.remove(path)
            && changed_since(path, &start).is_none()
        {
            file.seek(SeekFrom::Start(start.offset))?;
            head = read_head(&file, HEAD.min(start.offset as usize));
            decoder.resume_at(start.lines, start.header_pending);
            (offset, skip) = (start.offset, start.skip);
        }
        Ok(Followed {
            name: path.display().to_string(),
            file,
            id,
            offset,
            head,
            decoder,
            skip,
        })
    }
}

/// What reading a file to its end did.
enum Outcome {
    /// Read (or found nothing new, `false`).
    Read(bool),
    /// Its first bytes changed while it was read: what was read is dropped,
    /// and the file must be read again from its start.
    Rewritten,
    /// The query stopped reading.
    Stopped,
}

/// Read `followed` to its current end, sending batches as they come; each
/// read's rows go only if the file's head is still what was read first.
/// What is read comes off the `unread` count.
/// Each read is marked in `marks` with where the file is after it.
fn read_file(
    followed: &mut Followed,
    buf: &mut Vec<u8>,
    tx: &BatchSender,
    out: &mut Vec<RecordBatch>,
    unread: &AtomicU64,
    marks: &mut Marks,
) -> Result<Outcome> {
    let mut read_any = false;
    loop {
        marks.reading(followed);
        let mut reader = KeepHead {
            file: &mut followed.file,
            head: &mut followed.head,
        };
        let read = followed.decoder.read_from(&mut reader, buf, out);
        // The rows before a bad line go out with its error: not those taken before.
        followed.drop_skipped(out);
        let read = read?;
        if read == 0 {
            return Ok(Outcome::Read(read_any));
        }
        if head_changed(followed) {
            out.clear();
            return Ok(Outcome::Rewritten);
        }
        read_any = true;
        followed.offset += read as u64;
        let _ = unread.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(read as u64))
        });
        marks.read(followed, out, false);
        if !tx.send_all(out) {
            return Ok(Outcome::Stopped);
        }
    }
}

/// The first bytes (up to 4 KB) of the file at `path`; none if it cannot be read.
pub fn head_of(path: &Path) -> Vec<u8> {
    File::open(path).map(|f| read_head(&f, HEAD)).unwrap_or_default()
}

/// The first `len` bytes of `file` (fewer if it is shorter).
fn read_head(file: &File, len: usize) -> Vec<u8> {
    let mut head = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match read_at(file, &mut head[filled..], filled as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    head.truncate(filled);
    head
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Whether the bytes `followed` read at its start are no longer there (the
/// file was rewritten in place).
fn head_changed(followed: &Followed) -> bool {
    !followed.head.is_empty() && read_head(&followed.file, followed.head.len()) != followed.head
}

/// A file read that keeps a copy of the file's first bytes (up to [`HEAD`])
/// as they are read, to compare at later polls.
struct KeepHead<'a> {
    file: &'a mut File,
    head: &'a mut Vec<u8>,
}

impl std::io::Read for KeepHead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        let room = HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
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
    async fn the_bytes_not_read_yet_are_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("backlog.ndjson");
        let line = format!("{{\"id\": 1, \"name\": \"{}\"}}\n", "x".repeat(1000));
        let lines = 20_000;
        append(&path, &line.repeat(lines));
        let total = (line.len() * lines) as u64;
        let table = FollowTable::try_new(
            schema(),
            TextFormat::Json,
            path.display().to_string(),
            path.clone(),
        )
        .expect("table");
        let ctx = SessionContext::new();
        let plan = table.scan(&ctx.state(), None, &[], None).await.expect("scan");
        let unread = table.unread_bytes();
        let mut s = plan.execute(0, ctx.task_ctx()).expect("stream");
        let mut rows = next_ids(&mut s, 1).await.len();
        // The reader waits on the query (a few batches ahead): most is unread.
        tokio::time::sleep(POLL * 2).await;
        let behind = unread.load(Ordering::Relaxed);
        assert!(behind > 0 && behind < total, "{behind} of {total}");
        while rows < lines {
            let batch = s.next().await.expect("more rows").expect("a batch");
            rows += batch.num_rows();
        }
        tokio::time::sleep(POLL * 3).await;
        assert_eq!(unread.load(Ordering::Relaxed), 0, "all read");
        append(&path, &line);
        assert_eq!(next_ids(&mut s, 1).await, [1]);
        tokio::time::sleep(POLL * 3).await;
        assert_eq!(unread.load(Ordering::Relaxed), 0, "the appended line read too");
    }

    #[tokio::test]
    async fn a_file_rewritten_in_place_with_more_bytes_is_read_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.ndjson");
        append(&path, "{\"id\": 10}\n{\"id\": 11}\n");
        let mut s = stream(&path, TextFormat::Json).await;
        assert_eq!(next_ids(&mut s, 2).await, [10, 11]);
        // Same inode, more bytes, within one poll: `cp new a.ndjson`.
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
        f.write_all(b"{\"id\": 20}\n{\"id\": 21}\n{\"id\": 22}\n")
            .expect("rewrite");
        drop(f);
        assert_eq!(
            next_ids(&mut s, 3).await,
            [20, 21, 22],
            "nothing of the new content skipped"
        );
        assert!(quiet(&mut s).await);
    }

    #[tokio::test]
    async fn a_rotated_file_is_read_to_its_end_and_its_partial_last_line_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("app.log");
        append(&path, "{\"id\": 1}\n");
        let mut s = stream(&path, TextFormat::Json).await;
        assert_eq!(next_ids(&mut s, 1).await, [1]);
        let rotated = dir.path().join("app.log.1");
        std::fs::rename(&path, &rotated).expect("rotate");
        append(&path, "{\"id\": 20}\n");
        assert_eq!(next_ids(&mut s, 1).await, [20]);
        // The writer still had the old file open: what it adds is read.
        append(&rotated, "{\"id\": 2}\n{\"id\": 3");
        assert_eq!(next_ids(&mut s, 1).await, [2]);
        // Once the rotated file is quiet its partial last line is a line
        // (here a bad one, named), never dropped without a word.
        let err = tokio::time::timeout(DRAIN * 5, s.next())
            .await
            .expect("within the drain time")
            .expect("an item")
            .expect_err("a truncated line");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[tokio::test]
    async fn a_deleted_file_ends_the_stream_with_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("gone.ndjson");
        append(&path, "{\"id\": 1}\n");
        let mut s = stream(&path, TextFormat::Json).await;
        assert_eq!(next_ids(&mut s, 1).await, [1]);
        std::fs::remove_file(&path).expect("delete");
        let err = tokio::time::timeout(GONE_AFTER * 3, s.next())
            .await
            .expect("within the grace time")
            .expect("an item")
            .expect_err("gone");
        assert!(
            err.to_string().contains("is gone: deleted or moved away"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn positions_follow_the_rows_taken_and_a_resumed_scan_starts_there() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.ndjson");
        append(
            &path,
            "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3}\n{\"id\": 4}\n{\"id\": 5}\n{\"id\"",
        );
        let whole = std::fs::metadata(&path).expect("the file").len() - "{\"id\"".len() as u64;
        let shown = path.display().to_string();
        let table =
            FollowTable::try_new(schema(), TextFormat::Json, shown.clone(), path.clone()).expect("table");
        let ctx = SessionContext::new();
        let plan = table.scan(&ctx.state(), None, &[], None).await.expect("scan");
        let mut positions = FilePositions::new(table.positions(), Vec::new());
        let mut s = plan.execute(0, ctx.task_ctx()).expect("stream");
        assert_eq!(next_ids(&mut s, 5).await, [1, 2, 3, 4, 5]);
        // Three rows of the read taken: its start, and three rows to pass over.
        let at = positions.at(3);
        assert_eq!(at.len(), 1);
        assert_eq!(
            (at[0].path.as_str(), at[0].offset, at[0].skip),
            (shown.as_str(), 0, 3)
        );
        // All taken: after the whole lines (not the partial one), nothing to pass over.
        let at = positions.at(5);
        assert_eq!((at[0].offset, at[0].skip, at[0].lines), (whole, 0, 5));
        drop(s);

        // Resumed at three rows taken: the other two, then what comes.
        let resumed =
            FollowTable::try_new(schema(), TextFormat::Json, shown.clone(), path.clone()).expect("table");
        let (kept, notices) = resumed.resume_from(&positions_at(&table, &path, 3).await);
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(kept.len(), 1);
        let plan = resumed.scan(&ctx.state(), None, &[], None).await.expect("scan");
        let mut s = plan.execute(0, ctx.task_ctx()).expect("stream");
        assert_eq!(next_ids(&mut s, 2).await, [4, 5]);
        append(&path, ": 6}\n");
        assert_eq!(next_ids(&mut s, 1).await, [6]);
        drop(s);

        // A file cut shorter than the position is read from its start, said so.
        let cut =
            FollowTable::try_new(schema(), TextFormat::Json, shown.clone(), path.clone()).expect("table");
        std::fs::write(&path, "{\"id\": 9}\n").expect("truncate");
        let (kept, notices) = cut.resume_from(&at);
        assert!(kept.is_empty());
        assert!(
            notices[0].contains("is shorter than at the checkpoint"),
            "{notices:?}"
        );
        let plan = cut.scan(&ctx.state(), None, &[], None).await.expect("scan");
        let mut s = plan.execute(0, ctx.task_ctx()).expect("stream");
        assert_eq!(next_ids(&mut s, 1).await, [9]);
    }

    /// The positions of a fresh scan of `path` once `rows` rows are taken.
    async fn positions_at(table: &FollowTable, path: &Path, rows: u64) -> Vec<FilePosition> {
        let ctx = SessionContext::new();
        let plan = table.scan(&ctx.state(), None, &[], None).await.expect("scan");
        let mut positions = FilePositions::new(table.positions(), Vec::new());
        let mut s = plan.execute(0, ctx.task_ctx()).expect("stream");
        next_ids(&mut s, rows as usize).await;
        let at = positions.at(rows);
        assert!(at.iter().all(|f| f.path == path.display().to_string()));
        at
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
                .contains("'follow' = 'true' reads 'json', 'csv', 'changelog-json', 'changelog-csv' or 'debezium-json' files, not 'parquet'"),
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

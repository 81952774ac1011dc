//! Writing files so that readers never see half of one.
//!
//! Every write to a file table or a `COPY ... TO` target goes to a staging
//! directory first, named `.sluice-staging-...` beside a single-file target or
//! inside a directory target (DataFusion's listing tables skip hidden
//! subdirectories, so readers of the directory do not see it). Only when a
//! part is complete are its files renamed into place ([`Staging::commit`]);
//! a failed or killed run leaves the old output as it was. A run's staging is
//! deleted when it ends, and staging left by a killed run is deleted when the
//! next run writing the same target starts ([`Staging::begin`]).
//!
//! All of it goes through object_store, so it works for `s3://` too (where a
//! rename is a copy and a delete, and each object appears whole anyway). On a
//! local disk a single file is replaced by one `rename(2)`; a directory's
//! contents are swapped file by file, so a crash in the middle of a commit
//! can leave part of the new files beside the old ones, never a half file.
//!
//! The files themselves are written by DataFusion's own writers
//! ([`write_plan`], `FileFormat::create_writer_physical_plan`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{exec_datafusion_err, plan_err};
use datafusion::datasource::file_format::FileFormat as DfFileFormat;
use datafusion::datasource::listing::{ListingTable, ListingTableUrl};
use datafusion::datasource::physical_plan::{FileOutputMode, FileSinkConfig};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, collect};
use futures::{StreamExt, TryStreamExt};
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt};

use super::write_errors::{Recorder, recorder_for};
use crate::stream::checkpoint::manifest::PendingCommit;

/// The name every staging directory starts with.
pub const STAGING_PREFIX: &str = ".sluice-staging-";

/// Where one run writes before its files are made visible.
#[derive(Debug, Clone)]
pub struct Staging {
    store: Arc<dyn ObjectStore>,
    /// The store's URL (`file:///`, `s3://bucket/`).
    store_url: ObjectStoreUrl,
    /// The file, or the directory, that committed files go to.
    target: Path,
    /// Whether `target` is one file (replaced whole) or a directory.
    single_file: bool,
    /// This run's staging directory.
    root: Path,
    /// The target as the user wrote it, for messages.
    shown: String,
    /// The errors of the store the writes go to.
    recorder: Recorder,
}

impl Staging {
    /// Start writing to `url`: delete staging that killed runs left for this
    /// target, and pick this run's staging directory.
    pub async fn begin(state: &dyn Session, url: &ListingTableUrl, single_file: bool) -> Result<Self> {
        let recorder = recorder_for(state.runtime_env(), url)?;
        recorder.clear();
        let store = state.runtime_env().object_store(url)?;
        let target = url.prefix().clone();
        let (parent, name) = if single_file {
            let name = target.filename().unwrap_or("output").to_string();
            (parent_of(&target), format!("{STAGING_PREFIX}{name}-"))
        } else {
            (target.clone(), STAGING_PREFIX.to_string())
        };
        let run = run_id();
        let staging = Self {
            root: parent.clone().join(format!("{name}{run}")),
            store_url: url.object_store(),
            store,
            target,
            single_file,
            shown: url.as_str().to_string(),
            recorder,
        };
        staging.clean_stale(&parent, &name).await?;
        Ok(staging)
    }

    /// The URL a writer writes part `part` to: a directory, or for a single
    /// file target a file of the target's name in it.
    pub fn part_url(&self, part: &str) -> Result<ListingTableUrl> {
        let dir = self.root.clone().join(part);
        let path = if self.single_file {
            dir.join(self.target.filename().unwrap_or("output")).to_string()
        } else {
            format!("{dir}/")
        };
        ListingTableUrl::parse(format!("{}{path}", self.store_url.as_str()))
    }

    /// `error` of a write with the store's error that caused it, which
    /// DataFusion's writers leave out ("No space left on device").
    pub fn explain(&self, error: DataFusionError) -> DataFusionError {
        self.recorder.explain(error, &self.shown)
    }

    /// Whether the target is one file.
    pub fn single_file(&self) -> bool {
        self.single_file
    }

    /// Make part `part`'s files visible: rename the single file over the
    /// target, or move each file into the target directory (after deleting
    /// the directory's files of `extension` when `replace`), each file's
    /// name led by `order` when given (see [`Self::renames`]).
    pub async fn commit(&self, part: &str, replace: Option<&str>, order: Option<&str>) -> Result<()> {
        if let Some(extension) = replace.filter(|_| !self.single_file) {
            self.delete_outputs(extension).await?;
        }
        for (from, to) in self.renames(part, order).await? {
            self.store
                .rename(&from, &to)
                .await
                .map_err(|e| self.error("commit", e))?;
        }
        Ok(())
    }

    /// The renames that make part `part` visible: the single file over the
    /// target, or each staged file to its place in the target directory.
    /// DataFusion's writers name files at random (`<16 random
    /// characters>_0.csv`), so the parts of a continuous query, committed
    /// one after the other, would list in no order, and a changelog read
    /// back in path order would apply its changes out of order; with
    /// `order` (the same width in every part, counting up), a file's name
    /// starts with it and path order is commit order.
    async fn renames(&self, part: &str, order: Option<&str>) -> Result<Vec<(Path, Path)>> {
        let dir = self.root.clone().join(part);
        if self.single_file {
            let from = dir.join(self.target.filename().unwrap_or("output"));
            return Ok(vec![(from, self.target.clone())]);
        }
        let staged: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| self.error("list the staged files of", e))?;
        Ok(staged
            .into_iter()
            .filter_map(|object| {
                let mut relative: Vec<PathPart> = object.location.prefix_match(&dir)?.collect();
                // The name is DataFusion's (letters, digits, `_`, `.`): led
                // by `order`, it is still a part as it is.
                if let (Some(order), Some(name)) = (order, relative.last_mut()) {
                    *name = PathPart::from(format!("{order}-{}", name.as_ref()));
                }
                let to = relative
                    .into_iter()
                    .fold(self.target.clone(), |p, part| p.join(part));
                Some((object.location, to))
            })
            .collect())
    }

    /// Part `part`'s renames as a checkpoint records them, to be done once
    /// the checkpoint is complete (by this run, or by the next after a crash);
    /// `order` as for [`Self::commit`].
    pub async fn pending_commits(&self, part: &str, order: Option<&str>) -> Result<Vec<PendingCommit>> {
        Ok(self
            .renames(part, order)
            .await?
            .into_iter()
            .map(|(from, to)| PendingCommit::new(self.store_url.as_str(), &from, &to))
            .collect())
    }

    /// Delete this run's staging directory (after a commit, or to give up).
    pub async fn finish(&self) -> Result<()> {
        delete_all(self.store.as_ref(), &self.root)
            .await
            .map_err(|e| self.error("clean up the staging of", e))
    }

    /// Delete the target directory's files of `extension`, at any depth
    /// (partition directories included), but not staging directories.
    async fn delete_outputs(&self, extension: &str) -> Result<()> {
        let existing: Vec<_> = self
            .store
            .list(Some(&self.target))
            .try_collect()
            .await
            .map_err(|e| self.error("list", e))?;
        for object in existing {
            let staged = object
                .location
                .prefix_match(&self.target)
                .is_some_and(|mut parts| parts.any(|p| p.as_ref().starts_with(STAGING_PREFIX)));
            let matches = object
                .location
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case(extension));
            if matches && !staged {
                self.store
                    .delete(&object.location)
                    .await
                    .map_err(|e| self.error("replace the files of", e))?;
            }
        }
        Ok(())
    }

    /// Delete the staging directories named `name...` under `parent` left
    /// by runs that were killed: on a local disk, those of processes that no
    /// longer run (another live process may be writing there); elsewhere,
    /// those untouched for [`STALE_REMOTE`].
    async fn clean_stale(&self, parent: &Path, name: &str) -> Result<()> {
        let listing = match self.store.list_with_delimiter(Some(parent)).await {
            Ok(listing) => listing,
            // A directory that does not exist yet has no staging in it.
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(self.error("list", e)),
        };
        let local = local_path(self.store.as_ref(), parent).is_some();
        for dir in listing.common_prefixes {
            let Some(run) = dir.filename().and_then(|f| f.strip_prefix(name)) else {
                continue;
            };
            if dir == self.root {
                continue;
            }
            let stale = if local {
                // Not a run's name (the staging of another file whose name
                // starts alike): not ours to delete.
                let Some(alive) = run_is_alive(run) else {
                    continue;
                };
                !alive
            } else {
                self.untouched_for(&dir, STALE_REMOTE).await?
            };
            if stale {
                delete_all(self.store.as_ref(), &dir)
                    .await
                    .map_err(|e| self.error("clean up old staging of", e))?;
            }
        }
        Ok(())
    }

    /// Whether nothing under `dir` changed for `age`.
    async fn untouched_for(&self, dir: &Path, age: std::time::Duration) -> Result<bool> {
        let objects: Vec<_> = self
            .store
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| self.error("list", e))?;
        let Ok(age) = chrono::Duration::from_std(age) else {
            return Ok(false);
        };
        let cutoff = chrono::Utc::now() - age;
        Ok(objects.iter().all(|o| o.last_modified < cutoff))
    }

    fn error(&self, doing: &str, e: object_store::Error) -> DataFusionError {
        exec_datafusion_err!("cannot {doing} '{}': {}", self.shown, io_cause(&e))
    }
}

/// Delete every object under `dir`, and the directory.
pub(crate) async fn delete_all(store: &dyn ObjectStore, dir: &Path) -> object_store::Result<()> {
    let objects: Vec<_> = store.list(Some(dir)).try_collect().await?;
    for object in objects {
        match store.delete(&object.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // object_store deletes files, not the directories they were in.
    if let Some(local) = local_path(store, dir) {
        let _ = std::fs::remove_dir_all(local);
    }
    Ok(())
}

/// The local directory of `dir`, when `store` is the local file system.
fn local_path(store: &dyn ObjectStore, dir: &Path) -> Option<std::path::PathBuf> {
    let is_local = store.to_string().starts_with("LocalFileSystem");
    is_local.then(|| std::path::PathBuf::from(format!("/{dir}")))
}

/// How long a remote staging directory must be untouched before another run
/// takes it for a killed run's and deletes it.
pub const STALE_REMOTE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Whether the process of run `run` (`<pid>-<time>`) still runs, other than
/// this one (whose earlier statements' staging is done with); `None` when
/// `run` is not a run's name.
fn run_is_alive(run: &str) -> Option<bool> {
    let (pid, time) = run.split_once('-')?;
    let pid = pid.parse::<u32>().ok()?;
    if time.is_empty() || !time.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(pid != std::process::id() && std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// A name no other run uses: the process id and the time.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}

fn parent_of(path: &Path) -> Path {
    let parts: Vec<_> = path.parts().collect();
    let n = parts.len().saturating_sub(1);
    parts.into_iter().take(n).collect()
}

/// The OS error under an object store error, which says what went wrong
/// ("No space left on device") where the wrapper only says where.
pub fn io_cause(e: &object_store::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let cause = s.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = s.source();
    }
    text
}

/// A DataFusion writer of `input` into `url` in `format`: a single file, or
/// files in a directory (partitioned by `partition_cols`).
pub async fn write_plan(
    state: &dyn Session,
    format: &Arc<dyn DfFileFormat>,
    input: Arc<dyn ExecutionPlan>,
    url: &ListingTableUrl,
    single_file: bool,
    partition_cols: Vec<(String, DataType)>,
    output_schema: SchemaRef,
) -> Result<Arc<dyn ExecutionPlan>> {
    let config = FileSinkConfig {
        original_url: url.as_str().to_string(),
        object_store_url: url.object_store(),
        file_group: Default::default(),
        table_paths: vec![url.clone()],
        output_schema,
        table_partition_cols: partition_cols,
        insert_op: InsertOp::Append,
        keep_partition_by_columns: state.config_options().execution.keep_partition_by_columns,
        file_extension: format.get_ext(),
        file_output_mode: if single_file {
            FileOutputMode::SingleFile
        } else {
            FileOutputMode::Directory
        },
    };
    format
        .create_writer_physical_plan(input, state, config, None)
        .await
}

/// What a file table writes to: its path, whether that is one file, and how.
#[derive(Debug, Clone)]
pub struct FileTarget {
    /// The table's path.
    pub url: ListingTableUrl,
    /// Whether the path is one file (rewritten whole on each commit) rather
    /// than a directory (new files added).
    pub single_file: bool,
    /// The table's format, its extension and partition columns.
    pub table: Arc<ListingTable>,
}

impl FileTarget {
    /// The write target of a listing table, `None` for any other table.
    pub fn of(provider: &Arc<dyn TableProvider>) -> Option<Self> {
        let table = match provider.downcast_ref::<super::exact_json::ExactJsonTable>() {
            Some(exact) => exact.listing_table().as_ref(),
            None => provider.downcast_ref::<ListingTable>()?,
        };
        let url = table.table_paths().first()?.clone();
        Some(Self {
            single_file: !url.is_collection(),
            url,
            table: Arc::new(table.clone()),
        })
    }

    /// Refuse what cannot be written: a glob, several paths.
    pub fn check(&self) -> Result<()> {
        if self.url.get_glob().is_some() || self.table.table_paths().len() != 1 {
            return plan_err!(
                "cannot INSERT INTO a file table over a glob or several paths ('{}'): give it one directory or one file",
                self.url
            );
        }
        Ok(())
    }

    /// Write `input` (rows of the table's schema) as part `part` of
    /// `staging` and, when `commit`, commit it (else it stays staged, for a
    /// checkpoint to commit). For a single file the part is the file's old
    /// rows followed by the new ones (or the new ones alone when `replace`);
    /// for a directory, new files (after deleting the old ones when
    /// `replace`). Returns the new rows written.
    pub async fn write_part(
        &self,
        state: &SessionState,
        staging: &Staging,
        part: &str,
        input: SendableRecordBatchStream,
        replace: bool,
        commit: bool,
    ) -> Result<u64> {
        let options = self.table.options();
        let schema = self.table.schema();
        let counted = Arc::new(AtomicU64::new(0));
        let input = counting(input, Arc::clone(&schema), Arc::clone(&counted));
        let input = if self.single_file && !replace && staging.store.head(&staging.target).await.is_ok() {
            // Old rows first, in file order: one partition, no byte ranges.
            let mut one = state.clone();
            one.config_mut().options_mut().execution.target_partitions = 1;
            let scan = self.table.scan(&one, None, &[], None).await?;
            let old = execute_stream(scan, one.task_ctx())?;
            Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&schema),
                old.chain(input),
            ))
        } else {
            input
        };
        let partition: Arc<dyn PartitionStream> = Arc::new(OnceStream::new(input));
        let input = Arc::new(StreamingTableExec::try_new(
            Arc::clone(&schema),
            vec![partition],
            None,
            [],
            false,
            None,
        )?);
        let url = staging.part_url(part)?;
        let partition_cols = if self.single_file {
            vec![]
        } else {
            options.table_partition_cols.clone()
        };
        let plan = write_plan(
            state,
            &options.format,
            input,
            &url,
            self.single_file,
            partition_cols,
            schema,
        )
        .await?;
        collect(plan, state.task_ctx())
            .await
            .map_err(|e| staging.explain(e))?;
        if !commit {
            return Ok(counted.load(Ordering::Relaxed));
        }
        // A table's own extension may be empty (it reads every file); its
        // format's is what its writer names files with.
        let extension = options.format.get_ext();
        let replace = (replace && !self.single_file).then_some(extension.as_str());
        staging.commit(part, replace, None).await?;
        Ok(counted.load(Ordering::Relaxed))
    }
}

/// `input` with its batches counted into `rows`, and given the table's
/// schema (a query's columns may differ from the table's in nullability).
fn counting(
    input: SendableRecordBatchStream,
    schema: SchemaRef,
    rows: Arc<AtomicU64>,
) -> SendableRecordBatchStream {
    let out = Arc::clone(&schema);
    let stream = input.map(move |batch| {
        let batch = batch?;
        rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(RecordBatch::try_new(Arc::clone(&out), batch.columns().to_vec()).unwrap_or(batch))
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// A stream handed to DataFusion as the one partition of a plan.
pub struct OnceStream {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl OnceStream {
    /// A partition that yields `stream`, once.
    pub fn new(stream: SendableRecordBatchStream) -> Self {
        Self {
            schema: stream.schema(),
            stream: Mutex::new(Some(stream)),
        }
    }
}

impl std::fmt::Debug for OnceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rows of a continuous query or a write")
    }
}

impl PartitionStream for OnceStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        match self.stream.lock().ok().and_then(|mut s| s.take()) {
            Some(stream) => stream,
            None => Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::once(async {
                    Err(DataFusionError::Internal(
                        "a stream of rows can be read once".into(),
                    ))
                }),
            )),
        }
    }
}

/// The row count a DataFusion writer returns (one `count` row).
pub fn count(batches: Vec<RecordBatch>) -> Result<u64> {
    let mut total = 0;
    for batch in batches {
        let Some(column) = batch.columns().first() else {
            continue;
        };
        let counts = column
            .as_any()
            .downcast_ref::<arrow::array::UInt64Array>()
            .ok_or_else(|| {
                exec_datafusion_err!("a file writer returned {} instead of a count", column.data_type())
            })?;
        total += counts.iter().flatten().sum::<u64>();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn url(path: &std::path::Path, dir: bool) -> ListingTableUrl {
        let mut s = path.display().to_string();
        if dir {
            s.push('/');
        }
        ListingTableUrl::parse(s).expect("a local path")
    }

    #[tokio::test]
    async fn a_single_file_is_replaced_by_its_staged_copy_and_staging_is_cleaned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "old\n").expect("write");
        // A killed run's staging (no such process), a live process's (pid 1)
        // and another file's whose name starts alike.
        let stale = dir.path().join(format!("{STAGING_PREFIX}out.csv-999999999-1f"));
        let live = dir.path().join(format!("{STAGING_PREFIX}out.csv-1-1f"));
        let other = dir.path().join(format!("{STAGING_PREFIX}out.csv-x-999999999-1f"));
        for d in [&stale, &live, &other] {
            std::fs::create_dir_all(d).expect("mkdir");
            std::fs::write(d.join("out.csv"), "half").expect("write");
        }
        let ctx = SessionContext::new();
        let state = ctx.state();
        let staging = Staging::begin(&state, &url(&target, false), true)
            .await
            .expect("begin");
        assert!(!stale.exists(), "stale staging is deleted");
        assert!(
            live.exists() && other.exists(),
            "a live run's and another file's are kept"
        );
        std::fs::remove_dir_all(&live).expect("rm");
        std::fs::remove_dir_all(&other).expect("rm");
        let part = staging.part_url("0").expect("url");
        let local = std::path::PathBuf::from(part.get_url().path());
        std::fs::create_dir_all(local.parent().expect("parent")).expect("mkdir");
        std::fs::write(&local, "new\n").expect("write");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "old\n");
        staging.commit("0", None, None).await.expect("commit");
        staging.finish().await.expect("finish");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec!["out.csv"]);
    }

    #[tokio::test]
    async fn a_directory_commit_replaces_files_of_the_extension_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("a.csv"), "old\n").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "keep\n").expect("write");
        let ctx = SessionContext::new();
        let state = ctx.state();
        let staging = Staging::begin(&state, &url(dir.path(), true), false)
            .await
            .expect("begin");
        let part = staging.part_url("0").expect("url");
        let local = std::path::PathBuf::from(part.get_url().path());
        std::fs::create_dir_all(local.join("k=1")).expect("mkdir");
        std::fs::write(local.join("k=1").join("b.csv"), "new\n").expect("write");
        staging.commit("0", Some("csv"), None).await.expect("commit");
        staging.finish().await.expect("finish");
        let mut names: Vec<_> = walk(dir.path());
        names.sort();
        assert_eq!(names, vec!["k=1/b.csv", "notes.txt"]);
    }

    #[tokio::test]
    async fn parts_committed_in_order_list_in_that_order() {
        // DataFusion names a part's files at random: without the order in
        // front, parts committed one after the other list in any order.
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = SessionContext::new();
        let state = ctx.state();
        let staging = Staging::begin(&state, &url(dir.path(), true), false)
            .await
            .expect("begin");
        for (part, random) in [("0", "zz9_0.csv"), ("1", "Ab1_0.csv"), ("2", "mm5_0.csv")] {
            let local = std::path::PathBuf::from(staging.part_url(part).expect("url").get_url().path());
            std::fs::create_dir_all(local.join("k=1")).expect("mkdir");
            std::fs::write(local.join("k=1").join(random), part).expect("write");
        }
        // A checkpoint records its renames, done later (here, by a restart).
        let pending = staging
            .pending_commits("1", Some("part-0000000009"))
            .await
            .expect("pending");
        assert_eq!(pending.len(), 1);
        assert!(
            pending[0].to.ends_with("k=1/part-0000000009-Ab1_0.csv"),
            "{pending:?}"
        );
        staging
            .commit("0", None, Some("part-0000000008"))
            .await
            .expect("commit");
        staging
            .commit("1", None, Some("part-0000000009"))
            .await
            .expect("commit");
        staging
            .commit("2", None, Some("part-0000000010"))
            .await
            .expect("commit");
        staging.finish().await.expect("finish");
        let mut names = walk(dir.path());
        names.sort();
        assert_eq!(
            names,
            [
                "k=1/part-0000000008-zz9_0.csv",
                "k=1/part-0000000009-Ab1_0.csv",
                "k=1/part-0000000010-mm5_0.csv"
            ]
        );
        let contents: Vec<String> = names
            .iter()
            .map(|n| std::fs::read_to_string(dir.path().join(n)).expect("read"))
            .collect();
        assert_eq!(contents, ["0", "1", "2"], "path order is commit order");
    }

    fn walk(dir: &std::path::Path) -> Vec<String> {
        let mut out = vec![];
        for entry in std::fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                let name = path.file_name().expect("name").to_string_lossy().to_string();
                out.extend(walk(&path).into_iter().map(|p| format!("{name}/{p}")));
            } else {
                out.push(path.file_name().expect("name").to_string_lossy().to_string());
            }
        }
        out
    }

    #[test]
    fn io_causes_are_kept() {
        let e = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from_raw_os_error(28)),
        };
        assert!(
            io_cause(&e).contains("No space left on device"),
            "{}",
            io_cause(&e)
        );
    }
}

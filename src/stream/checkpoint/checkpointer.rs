//! Taking checkpoints while a query runs, and resuming from the last one.
//!
//! The query pauses only to copy its operators' state (changed pieces only,
//! see [`super::StateSnapshot`]) and to send its sink a barrier; encoding,
//! writing, the manifest, the sink's renames and pruning run on a task of
//! their own while the query goes on. One checkpoint is written at a time:
//! the next is not due until the last is durable, and a query that stops
//! waits for it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::common::{exec_datafusion_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::session_state::SessionState;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::manifest::{Manifest, PendingCommit, SourcePosition, fingerprint};
use super::store::{CheckpointStore, KEEP, Restored};
use super::{CheckpointOptions, SinkBarrier, StateSnapshot};
use crate::stream::graph::Graph;
use crate::stream::metrics::StreamMetrics;
use crate::stream::source::Source;

/// Where a sink gets the query's rows and, between them, its barriers.
pub enum Output {
    /// Rows of the result.
    Rows(arrow::array::RecordBatch),
    /// A checkpoint: the rows before it are covered by it.
    Barrier(SinkBarrier),
}

/// The checkpoints of one running query.
pub struct Checkpointer {
    store: CheckpointStore,
    state: SessionState,
    fingerprint: String,
    interval: Duration,
    /// The number the next checkpoint takes.
    next_id: u64,
    last: Instant,
    metrics: Arc<StreamMetrics>,
    /// Which checkpoint holds each node's state pieces as last snapshot.
    pieces: BTreeMap<usize, BTreeMap<String, u64>>,
    /// The last [`KEEP`] checkpoints, each with those it reads pieces from.
    recent: VecDeque<(u64, BTreeSet<u64>)>,
    /// The checkpoint being written, if one is.
    writing: Option<JoinHandle<Result<()>>>,
    /// Over this run: the longest pause, and the bytes written.
    totals: Arc<Totals>,
}

/// What this run's checkpoints cost, for the report of the last one.
#[derive(Default)]
struct Totals {
    longest_pause_ms: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl Checkpointer {
    /// Checkpoints for `graph` (planned, not yet run) under `options`; when
    /// the directory holds a checkpoint of this query, the graph's state is
    /// restored from it and its sources' positions are returned (in source
    /// order). `None` without a checkpoint directory.
    pub async fn open(
        state: &SessionState,
        options: &CheckpointOptions,
        graph: &mut Graph,
        schema: &arrow::datatypes::Schema,
        metrics: &Arc<StreamMetrics>,
    ) -> Result<Option<(Self, Option<Vec<SourcePosition>>)>> {
        let Some(dir) = &options.dir else {
            return Ok(None);
        };
        // stdin cannot be read again: a restart restores the state and goes
        // on with what stdin gives then, and the user is told so.
        let mut notices: Vec<String> = graph
            .sources
            .iter()
            .filter(|s| !Source::replayable(s))
            .map(|stdin| format!(
                "checkpoints: table '{}' reads stdin, which cannot be read again: a restart restores the state \
                 and the other sources' positions from the last checkpoint, then reads stdin from what it gives \
                 then; rows stdin gave after the last checkpoint are in no checkpoint, so give them again (or \
                 read a file: 'connector' = 'file', with 'follow' = 'true' for one that grows)",
                stdin.table
            ))
            .collect();
        // An operator that cannot save its state says so now, not at the
        // first checkpoint.
        graph.snapshot()?;
        let plan_text = format!("{}\n{schema:?}", graph.explain().join("\n"));
        let fingerprint = fingerprint(&plan_text);
        let store = CheckpointStore::open(state, dir).await?;
        let (latest, unusable) = store.latest().await?;
        notices.extend(unusable);
        let mut checkpointer = Self {
            store,
            state: state.clone(),
            fingerprint,
            interval: options.interval,
            next_id: 1,
            last: Instant::now(),
            metrics: Arc::clone(metrics),
            pieces: BTreeMap::new(),
            recent: VecDeque::new(),
            writing: None,
            totals: Arc::default(),
        };
        let positions = match latest {
            None => None,
            Some(restored) => Some(checkpointer.resume(graph, restored, &mut notices).await?),
        };
        if let Ok(mut shown) = metrics.notices.lock() {
            shown.extend(notices);
        }
        Ok(Some((checkpointer, positions)))
    }

    async fn resume(
        &mut self,
        graph: &mut Graph,
        restored: Restored,
        notices: &mut Vec<String>,
    ) -> Result<Vec<SourcePosition>> {
        let Restored {
            manifest,
            states,
            pieces,
        } = restored;
        let dir = self.store.shown().to_string();
        if manifest.fingerprint != self.fingerprint {
            return plan_err!(
                "the checkpoint directory '{dir}' holds checkpoint {} of another query (its plan differs from this one's): give this query a directory of its own, or delete '{dir}' to start it afresh",
                manifest.id
            );
        }
        let tables: Vec<&str> = graph.sources.iter().map(|s| s.table.as_str()).collect();
        let saved: Vec<&str> = manifest.sources.iter().map(|s| s.table.as_str()).collect();
        if tables != saved {
            return plan_err!(
                "checkpoint {} in '{dir}' read tables {saved:?}, this query reads {tables:?}: delete '{dir}' to start afresh",
                manifest.id
            );
        }
        graph.restore(&states)?;
        // A crash between the manifest and the renames it lists.
        CheckpointStore::commit(&self.state, &manifest.commits).await?;
        self.metrics
            .late_rows
            .fetch_add(manifest.late_rows, std::sync::atomic::Ordering::Relaxed);
        self.next_id = manifest.id + 1;
        // The restored pieces stay where they are: the next checkpoint
        // refers to them while they are unchanged.
        self.pieces = pieces;
        let reads_from = manifest.reads_from.iter().copied().collect();
        self.recent.push_back((manifest.id, reads_from));
        let age = chrono::Utc::now().timestamp_millis() - manifest.taken_at_ms;
        let positions: Vec<String> = manifest
            .sources
            .iter()
            .zip(&graph.sources)
            .map(|(s, spec)| match s.ended {
                true => format!("{}: read to its end", s.table),
                false if !Source::replayable(spec) => {
                    format!(
                        "{}: stdin, from what it gives now ({} rows read before)",
                        s.table, s.rows
                    )
                }
                false => format!("{}: from row {}{}", s.table, s.rows + 1, file_offsets(&s.files)),
            })
            .collect();
        notices.push(match manifest.finished {
            true => format!(
                "the query had finished at checkpoint {} in '{dir}' ({} ago): nothing more to do; delete '{dir}' to run it again",
                manifest.id,
                age_text(age)
            ),
            false => format!(
                "resumed from checkpoint {} in '{dir}', taken {} ago ({})",
                manifest.id,
                age_text(age),
                positions.join(", ")
            ),
        });
        Ok(manifest.sources)
    }

    /// Whether a checkpoint is due: the interval since the last one has
    /// passed and it is written (or failed, which the next one reports).
    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.interval && self.last_written()
    }

    /// The last checkpoint's background write is over (or there is none).
    fn last_written(&self) -> bool {
        self.writing.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// How long until [`Self::due`] may turn true, for a driver waiting on
    /// quiet sources (a checkpoint falls due without rows too: the rows
    /// before a lull are then committed and checkpointed). While the last
    /// checkpoint is still written, a short while: it is polled.
    pub fn due_in(&self) -> std::time::Duration {
        const WHILE_WRITING: std::time::Duration = std::time::Duration::from_millis(10);
        let left = self.interval.saturating_sub(self.last.elapsed());
        match self.last_written() {
            true => left,
            false => left.max(WHILE_WRITING),
        }
    }

    /// Take a checkpoint of `graph` with its sources at `positions`: a
    /// barrier to the sink after the rows sent so far, and the operators'
    /// states; the rest (the sink's staged files, the state files, the
    /// manifest, then the sink's renames) is written in the background. A
    /// checkpoint still being written is waited for first, and its error is
    /// this one's. `finished`: the query has emitted everything. `last`: the
    /// query stops after it, so it is waited for.
    pub async fn take(
        &mut self,
        graph: &mut Graph,
        positions: Vec<SourcePosition>,
        finished: bool,
        last: bool,
        sink: &mpsc::Sender<Result<Output>>,
    ) -> Result<()> {
        self.settle().await?;
        let id = self.next_id;
        let started = Instant::now();
        // The barrier first: when the reader is gone there is nothing to
        // checkpoint for, and no operator has marked its state as saved.
        let (staged, commits) = oneshot::channel::<Result<Vec<PendingCommit>>>();
        let (done, written) = oneshot::channel();
        let barrier = SinkBarrier { id, staged, written };
        if sink.send(Ok(Output::Barrier(barrier))).await.is_err() {
            return Ok(());
        }
        let mut states = graph.snapshot()?;
        let mut pieces = BTreeMap::new();
        let mut reads_from = BTreeSet::new();
        let none = BTreeMap::new();
        for (node, state) in &mut states {
            pieces.insert(*node, state.locate(id, self.pieces.get(node).unwrap_or(&none))?);
            reads_from.extend(state.stored_in());
        }
        self.pieces = pieces;
        self.recent.push_back((id, reads_from.clone()));
        while self.recent.len() > KEEP as usize {
            self.recent.pop_front();
        }
        let job = Write {
            store: self.store.clone(),
            state: self.state.clone(),
            manifest: Manifest {
                id,
                fingerprint: self.fingerprint.clone(),
                taken_at_ms: chrono::Utc::now().timestamp_millis(),
                finished,
                nodes: states.iter().map(|(node, _)| *node).collect(),
                reads_from: reads_from.into_iter().collect(),
                sources: positions,
                commits: vec![],
                late_rows: self.metrics.late_rows.load(std::sync::atomic::Ordering::Relaxed),
            },
            states,
            commits,
            keep: self.recent.iter().flat_map(|(_, r)| r.iter().copied()).collect(),
            metrics: Arc::clone(&self.metrics),
            pause: started.elapsed(),
            totals: Arc::clone(&self.totals),
            rows_at: self.metrics.rows_in.load(std::sync::atomic::Ordering::Relaxed),
            done,
        };
        self.writing = Some(tokio::spawn(job.run()));
        self.next_id += 1;
        self.last = Instant::now();
        if last {
            self.settle().await?;
        }
        Ok(())
    }

    /// Wait for the checkpoint being written, if one is; its error if it
    /// failed.
    pub async fn settle(&mut self) -> Result<()> {
        match self.writing.take() {
            None => Ok(()),
            Some(job) => job
                .await
                .map_err(|e| exec_datafusion_err!("the checkpoint writer stopped: {e}"))?,
        }
    }
}

/// A checkpoint being written in the background.
struct Write {
    store: CheckpointStore,
    state: SessionState,
    /// Its manifest, but for the sink's staged files.
    manifest: Manifest,
    states: Vec<(usize, StateSnapshot)>,
    /// The sink's answer to the barrier.
    commits: oneshot::Receiver<Result<Vec<PendingCommit>>>,
    /// Checkpoints pruning must keep: kept ones read pieces from them.
    keep: BTreeSet<u64>,
    metrics: Arc<StreamMetrics>,
    /// How long the query paused for it.
    pause: Duration,
    totals: Arc<Totals>,
    /// Rows the query had read when it paused.
    rows_at: u64,
    /// Dropped when it is over, so the sink may clean up its staging.
    done: oneshot::Sender<()>,
}

impl Write {
    async fn run(self) -> Result<()> {
        let Self {
            store,
            state,
            mut manifest,
            states,
            commits,
            keep,
            metrics,
            pause,
            totals,
            rows_at,
            done,
        } = self;
        let started = Instant::now();
        manifest.commits = match commits.await {
            Ok(commits) => commits?,
            Err(_) => return Ok(()), // the reader is gone: nothing to checkpoint for
        };
        // Encoding is CPU work: off the runtime's workers.
        let states = tokio::task::spawn_blocking(move || {
            states
                .into_iter()
                .map(|(node, state)| Ok((node, state.encode()?)))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| exec_datafusion_err!("encoding a checkpoint stopped: {e}"))??;
        let bytes: usize = states.iter().map(|(_, s)| s.len()).sum();
        let id = manifest.id;
        store.write_states(id, states).await?;
        crash_while_the_query_goes_on(id, &metrics, rows_at).await;
        crash_point("before-manifest", id);
        store.write_manifest(&manifest).await?;
        crash_point("after-manifest", id);
        CheckpointStore::commit(&state, &manifest.commits).await?;
        store.prune(id, &keep).await?;
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        let longest = totals
            .longest_pause_ms
            .fetch_max(pause.as_millis() as u64, relaxed)
            .max(pause.as_millis() as u64);
        let all = totals.bytes.fetch_add(bytes as u64, relaxed) + bytes as u64;
        if let Ok(mut last) = metrics.last_checkpoint.lock() {
            let unchanged = match manifest.reads_from.len() {
                0 => String::new(),
                n => format!(", the unchanged rest in {n} earlier"),
            };
            *last = Some(format!(
                "checkpoint {id} in '{}' ({} written{unchanged}; the query paused {} ms, written in {} ms); \
                 this run's checkpoints wrote {} and paused the query {longest} ms at most",
                store.shown(),
                bytes_text(bytes),
                pause.as_millis(),
                started.elapsed().as_millis(),
                bytes_text(all as usize),
            ));
        }
        drop(done);
        Ok(())
    }
}

/// The environment variable that makes a run die at a point of a
/// checkpoint (`before-manifest:3`, `after-manifest:5`), as a crash there
/// would: the tests use it to hit the two moments that matter to
/// exactly-once, which a `kill -9` at a random time rarely hits.
pub const CRASH_VARIABLE: &str = "SLUICE_TEST_CRASH";

/// Die without cleaning up when [`CRASH_VARIABLE`] names this point.
fn crash_point(point: &str, id: u64) {
    if std::env::var(CRASH_VARIABLE).is_ok_and(|v| v == format!("{point}:{id}")) {
        std::process::abort();
    }
}

/// Where a followed source goes on in its files: ` at byte 4500 of
/// 'events.ndjson'` (the first few of a directory's, and how many more).
fn file_offsets(files: &[super::manifest::FilePosition]) -> String {
    const SHOWN: usize = 3;
    let mut places: Vec<String> = files
        .iter()
        .take(SHOWN)
        .map(|f| format!("byte {} of '{}'", f.offset, f.path))
        .collect();
    if files.len() > SHOWN {
        places.push(format!("{} more files", files.len() - SHOWN));
    }
    match places.is_empty() {
        true => String::new(),
        false => format!(", at {}", places.join(", ")),
    }
}

/// Die at `writing:N` ([`CRASH_VARIABLE`]) once the query has read rows
/// after checkpoint N's cut, its state files written and its manifest not:
/// a crash while a checkpoint is written in the background. If the query
/// does not go on within 10 s (it waits for the write), exit with code 3
/// instead, which the test tells apart from the abort.
async fn crash_while_the_query_goes_on(id: u64, metrics: &StreamMetrics, rows_at: u64) {
    if !std::env::var(CRASH_VARIABLE).is_ok_and(|v| v == format!("writing:{id}")) {
        return;
    }
    let start = Instant::now();
    while metrics.rows_in.load(std::sync::atomic::Ordering::Relaxed) <= rows_at {
        if start.elapsed() > Duration::from_secs(10) {
            std::process::exit(3);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::process::abort();
}

/// A size: `850 B`, `12 KB`, `3.4 MB`.
fn bytes_text(bytes: usize) -> String {
    match bytes {
        b if b < 10_000 => format!("{b} B"),
        b if b < 10_000_000 => format!("{} KB", b / 1_000),
        b => format!("{:.1} MB", b as f64 / 1e6),
    }
}

/// A short age: `850 ms`, `12 s`, `3 min`, `2 h`.
fn age_text(ms: i64) -> String {
    match ms.max(0) {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 120_000 => format!("{} s", ms / 1_000),
        ms if ms < 7_200_000 => format!("{} min", ms / 60_000),
        ms => format!("{} h", ms / 3_600_000),
    }
}

/// Acknowledge a barrier for a sink that stages nothing (stdout).
pub fn acknowledge(barrier: SinkBarrier) {
    let _ = barrier.staged.send(Ok(vec![]));
}

/// The error of a checkpoint that could not be taken, naming it.
pub fn failed(e: datafusion::error::DataFusionError) -> datafusion::error::DataFusionError {
    exec_datafusion_err!("a checkpoint failed, so the query stopped: {e}")
}

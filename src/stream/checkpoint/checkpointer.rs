//! Taking checkpoints while a query runs, and resuming from the last one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::common::{exec_datafusion_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::session_state::SessionState;
use tokio::sync::{mpsc, oneshot};

use super::manifest::{Manifest, PendingCommit, SourcePosition, fingerprint};
use super::store::{CheckpointStore, Restored};
use super::{CheckpointOptions, SinkBarrier};
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
        if let Some(stdin) = graph.sources.iter().find(|s| !Source::replayable(s)) {
            return plan_err!(
                "checkpoints: table '{}' reads stdin, which cannot be read again after a restart; read a file ('connector' = 'file', or 'follow' = 'true' for one that grows) or run without --checkpoint-dir",
                stdin.table
            );
        }
        // An operator that cannot save its state says so now, not at the
        // first checkpoint.
        graph.snapshot()?;
        let plan_text = format!("{}\n{schema:?}", graph.explain().join("\n"));
        let fingerprint = fingerprint(&plan_text);
        let store = CheckpointStore::open(state, dir).await?;
        let (latest, unusable) = store.latest().await?;
        let mut notices: Vec<String> = unusable;
        let mut checkpointer = Self {
            store,
            state: state.clone(),
            fingerprint,
            interval: options.interval,
            next_id: 1,
            last: Instant::now(),
            metrics: Arc::clone(metrics),
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
        let Restored { manifest, states } = restored;
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
        let age = chrono::Utc::now().timestamp_millis() - manifest.taken_at_ms;
        let positions: Vec<String> = manifest
            .sources
            .iter()
            .map(|s| match s.ended {
                true => format!("{}: read to its end", s.table),
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

    /// Whether the interval since the last checkpoint has passed.
    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.interval
    }

    /// Take a checkpoint of `graph` with its sources at `positions`: the
    /// operators' states, then the sink's staged files (through a barrier
    /// after the rows sent so far), then the manifest; then the sink's files
    /// are made visible. `finished`: the query has emitted everything.
    pub async fn take(
        &mut self,
        graph: &mut Graph,
        positions: Vec<SourcePosition>,
        finished: bool,
        sink: &mpsc::Sender<Result<Output>>,
    ) -> Result<()> {
        let id = self.next_id;
        let started = Instant::now();
        let states = graph
            .snapshot()?
            .into_iter()
            .map(|(node, state)| Ok((node, state.encode()?)))
            .collect::<Result<Vec<_>>>()?;
        let (staged, commits) = oneshot::channel::<Result<Vec<PendingCommit>>>();
        if sink
            .send(Ok(Output::Barrier(SinkBarrier { id, staged })))
            .await
            .is_err()
        {
            return Ok(()); // the reader is gone: nothing to checkpoint for
        }
        let commits = match commits.await {
            Ok(commits) => commits?,
            Err(_) => return Ok(()),
        };
        let bytes: usize = states.iter().map(|(_, s)| s.len()).sum();
        let manifest = Manifest {
            id,
            fingerprint: self.fingerprint.clone(),
            taken_at_ms: chrono::Utc::now().timestamp_millis(),
            finished,
            nodes: states.iter().map(|(node, _)| *node).collect(),
            sources: positions,
            commits,
            late_rows: self.metrics.late_rows.load(std::sync::atomic::Ordering::Relaxed),
        };
        crash_point("before-manifest", id);
        self.store.write(&manifest, states).await?;
        crash_point("after-manifest", id);
        CheckpointStore::commit(&self.state, &manifest.commits).await?;
        self.store.prune(id).await?;
        self.next_id += 1;
        self.last = Instant::now();
        if let Ok(mut last) = self.metrics.last_checkpoint.lock() {
            *last = Some(format!(
                "checkpoint {id} in '{}' ({} of state, taken in {} ms)",
                self.store.shown(),
                bytes_text(bytes),
                started.elapsed().as_millis()
            ));
        }
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

//! A continuous `INSERT INTO` a `file` table: rows are written while the
//! query runs, into part files that roll over every
//! `'sink.rolling-policy.rollover-interval'` (10 s by default) and at the end.
//!
//! Each part is written by DataFusion's own writer for the table's format into
//! a staging directory (`connectors::file_sink`) as rows come, and renamed
//! into the table's directory when it rolls over, so readers of the directory
//! see whole files only. A single-file table is rewritten with its old rows
//! and the new part at each roll-over (its cost grows with the file). A
//! SIGINT or SIGTERM stops the query after committing the open part; so does
//! an error in the query (a bad row), after the rows before it.
//!
//! Without checkpoints a restart reads its sources again, so rows committed
//! before a crash are written again: the guarantee is at-least-once.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, UInt64Array};
use arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigNonZeroUsize;
use datafusion::common::exec_datafusion_err;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionState;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::checkpoint::Output;
use super::checkpoint::manifest::PendingCommit;
use super::driver::Outputs;
use crate::connectors::file_sink::{FileTarget, Staging};

/// Batches buffered between the query and a part's writer.
const PART_CHANNEL_CAPACITY: usize = 2;

/// Run `rows` into `target`, a part file every `rollover`, or with
/// checkpoints (`exactly_once`) a part per checkpoint, staged at its barrier
/// and made visible by the driver once the checkpoint is complete. The
/// result is one row: the rows written.
pub async fn execute(
    state: &SessionState,
    target: FileTarget,
    rows: Outputs,
    schema: SchemaRef,
    rollover: Duration,
    exactly_once: bool,
    count_schema: SchemaRef,
) -> Result<SendableRecordBatchStream> {
    target.check()?;
    let staging = Staging::begin(state, &target.url, target.single_file).await?;
    let sink = RollingSink {
        state: one_file_a_part(state)?,
        target,
        staging,
        parts: 0,
        written: 0,
        exactly_once,
        started_ms: chrono::Utc::now().timestamp_millis(),
    };
    let result_schema = Arc::clone(&count_schema);
    let result = futures::stream::once(async move {
        let rows_written = sink.run(rows, schema, rollover).await?;
        Ok(RecordBatch::try_new(
            count_schema,
            vec![Arc::new(UInt64Array::from(vec![rows_written]))],
        )?)
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(result_schema, result)))
}

/// `state` writing each part as one file: DataFusion's writers otherwise
/// deal a stream's batches out to 4 files in turn (and start another file
/// after 50 M rows), so a part read back in path order would not be in the
/// order it came, which a changelog needs.
fn one_file_a_part(state: &SessionState) -> Result<SessionState> {
    let mut state = state.clone();
    let execution = &mut state.config_mut().options_mut().execution;
    execution.minimum_parallel_output_files = ConfigNonZeroUsize::try_new(1)?;
    execution.soft_max_rows_per_output_file = ConfigNonZeroUsize::try_new(usize::MAX)?;
    Ok(state)
}

struct RollingSink {
    state: SessionState,
    target: FileTarget,
    staging: Staging,
    /// Parts started so far (names them).
    parts: u64,
    /// Rows committed so far.
    written: u64,
    /// Parts are made visible by checkpoints only; a stop or an error
    /// leaves the open part out (the restart writes its rows again).
    exactly_once: bool,
    /// When the sink started (ms since the epoch): without checkpoints it
    /// leads the names of its parts' files, so that a rerun's sort after.
    started_ms: i64,
}

/// A part being written: its rows go through `sender` to a writer task.
struct Part {
    name: String,
    /// Its number in this run (from 0).
    number: u64,
    sender: mpsc::Sender<Result<RecordBatch>>,
    writer: JoinHandle<Result<u64>>,
}

impl RollingSink {
    async fn run(mut self, mut rows: Outputs, schema: SchemaRef, rollover: Duration) -> Result<u64> {
        let mut part: Option<Part> = None;
        let mut tick = tokio::time::interval(rollover);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        // With checkpoints the driver stops on a signal after a checkpoint;
        // the sink then sees the stop as the stream's error.
        let stop: futures::future::BoxFuture<'static, &'static str> = match self.exactly_once {
            true => Box::pin(std::future::pending()),
            false => Box::pin(super::stop::stop_signal()),
        };
        tokio::pin!(stop);
        // The last checkpoint, written in the background: its renames of
        // staged parts must be done before the staging is deleted.
        let mut writing: Option<tokio::sync::oneshot::Receiver<()>> = None;
        let outcome: Result<()> = loop {
            tokio::select! {
                next = rows.next() => match next {
                    Some(Ok(Output::Rows(batch))) if batch.num_rows() == 0 => {}
                    Some(Ok(Output::Rows(batch))) => {
                        if part.is_none() {
                            part = Some(self.start_part(Arc::clone(&schema))?);
                        }
                        if let Some(p) = &part
                            && p.sender.send(Ok(batch)).await.is_err()
                        {
                            // The writer stopped: its error comes with the commit.
                            break Ok(());
                        }
                    }
                    Some(Ok(Output::Barrier(barrier))) => {
                        let staged = match part.take() {
                            Some(p) => self.stage(p, barrier.id).await,
                            None => Ok(vec![]),
                        };
                        let failed = staged.is_err();
                        let _ = barrier.staged.send(staged);
                        writing = Some(barrier.written);
                        if failed {
                            break Ok(()); // the driver reports the error
                        }
                    }
                    // A bad row, or the query stopped by a signal (the
                    // driver listens too): the open part is committed below.
                    Some(Err(e)) => break Err(e),
                    None => break Ok(()),
                },
                _ = tick.tick(), if !self.exactly_once => {
                    if let Some(p) = part.take() {
                        self.commit(p).await?;
                    }
                }
                signal = &mut stop => {
                    break Err(DataFusionError::Execution(format!(
                        "stopped by {signal}; the rows before it were committed to '{}'",
                        self.target.url
                    )));
                }
            }
        };
        // Whatever ended the query, the rows that came before are complete;
        // with checkpoints, only those of completed checkpoints count.
        drop(rows);
        let committed = match part.take() {
            Some(p) if !self.exactly_once => self.commit(p).await,
            _ => Ok(()),
        };
        if let Some(written) = writing {
            let _ = written.await;
        }
        let cleaned = self.staging.finish().await;
        outcome?;
        committed?;
        cleaned?;
        Ok(self.written)
    }

    fn start_part(&mut self, schema: SchemaRef) -> Result<Part> {
        let (sender, receiver) = mpsc::channel(PART_CHANNEL_CAPACITY);
        let batches =
            futures::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|b| (b, r)) });
        let input: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(schema, batches));
        let number = self.parts;
        let name = format!("part-{number}");
        self.parts += 1;
        let state = self.state.clone();
        let target = self.target.clone();
        let staging = self.staging.clone();
        let part_name = name.clone();
        // Committed by `commit` or a checkpoint, in order.
        let writer = tokio::spawn(async move {
            target
                .write_part(&state, &staging, &part_name, input, false, false)
                .await
        });
        Ok(Part {
            name,
            number,
            sender,
            writer,
        })
    }

    /// Finish writing a part and make it visible, its files' names led by
    /// the sink's start and the part's number (`part-1764700000000-000003-`),
    /// so that the directory lists the parts in the order they came.
    async fn commit(&mut self, part: Part) -> Result<()> {
        let name = part.name.clone();
        let order = format!("part-{:013}-{:06}", self.started_ms, part.number);
        self.written += self.finish_part(part).await?;
        self.staging.commit(&name, None, Some(&order)).await
    }

    /// Finish writing a part into staging, for checkpoint `id` to make
    /// visible: the renames that will, its files' names led by the
    /// checkpoint's number (`part-0000000012-`), which counts up across
    /// restarts, so that the directory lists the parts in commit order.
    async fn stage(&mut self, part: Part, id: u64) -> Result<Vec<PendingCommit>> {
        let name = part.name.clone();
        self.written += self.finish_part(part).await?;
        self.staging
            .pending_commits(&name, Some(&format!("part-{id:010}")))
            .await
    }

    async fn finish_part(&mut self, part: Part) -> Result<u64> {
        drop(part.sender);
        part.writer
            .await
            .map_err(|e| exec_datafusion_err!("the writer of '{}' stopped: {e}", self.target.url))?
    }
}

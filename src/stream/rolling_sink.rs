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
    let staging = Staging::begin(state, &target.url, target.single_file)
        .await?
        .ordered();
    let sink = RollingSink {
        state: state.clone(),
        target,
        staging,
        parts: 0,
        written: 0,
        exactly_once,
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
}

/// A part being written: its rows go through `sender` to a writer task.
struct Part {
    name: String,
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
                            Some(p) => self.stage(p).await,
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
        // Named by when it started (and its number in this run), so the
        // table's files sort in the order they were committed, across
        // restarts too.
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let name = format!("part-{started_ms:013}-{:06}", self.parts);
        self.parts += 1;
        let state = self.state.clone();
        let target = self.target.clone();
        let staging = self.staging.clone();
        let commit = !self.exactly_once;
        let part_name = name.clone();
        let writer = tokio::spawn(async move {
            target
                .write_part(&state, &staging, &part_name, input, false, commit)
                .await
        });
        Ok(Part { name, sender, writer })
    }

    /// Finish writing a part and make it visible.
    async fn commit(&mut self, part: Part) -> Result<()> {
        self.written += self.finish_part(part).await?;
        Ok(())
    }

    /// Finish writing a part into staging, for a checkpoint to make visible:
    /// the renames that will.
    async fn stage(&mut self, part: Part) -> Result<Vec<PendingCommit>> {
        let name = part.name.clone();
        self.written += self.finish_part(part).await?;
        self.staging.pending_commits(&name).await
    }

    async fn finish_part(&mut self, part: Part) -> Result<u64> {
        drop(part.sender);
        part.writer
            .await
            .map_err(|e| exec_datafusion_err!("the writer of '{}' stopped: {e}", self.target.url))?
    }
}

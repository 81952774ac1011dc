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

use crate::connectors::file_sink::{FileTarget, Staging};

/// Batches buffered between the query and a part's writer.
const PART_CHANNEL_CAPACITY: usize = 2;

/// Run `rows` into `target`, a part file every `rollover`. The result is one
/// row: the rows written.
pub async fn execute(
    state: &SessionState,
    target: FileTarget,
    rows: SendableRecordBatchStream,
    rollover: Duration,
    count_schema: SchemaRef,
) -> Result<SendableRecordBatchStream> {
    target.check()?;
    let staging = Staging::begin(state, &target.url, target.single_file).await?;
    let sink = RollingSink {
        state: state.clone(),
        target,
        staging,
        parts: 0,
        written: 0,
    };
    let schema = Arc::clone(&count_schema);
    let result = futures::stream::once(async move {
        let rows_written = sink.run(rows, rollover).await?;
        Ok(RecordBatch::try_new(
            count_schema,
            vec![Arc::new(UInt64Array::from(vec![rows_written]))],
        )?)
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, result)))
}

struct RollingSink {
    state: SessionState,
    target: FileTarget,
    staging: Staging,
    /// Parts started so far (names them).
    parts: u64,
    /// Rows committed so far.
    written: u64,
}

/// A part being written: its rows go through `sender` to a writer task.
struct Part {
    sender: mpsc::Sender<Result<RecordBatch>>,
    writer: JoinHandle<Result<u64>>,
}

impl RollingSink {
    async fn run(mut self, mut rows: SendableRecordBatchStream, rollover: Duration) -> Result<u64> {
        let mut part: Option<Part> = None;
        let mut tick = tokio::time::interval(rollover);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let stop = super::stop::stop_signal();
        tokio::pin!(stop);
        let outcome: Result<()> = loop {
            tokio::select! {
                next = rows.next() => match next {
                    Some(Ok(batch)) if batch.num_rows() == 0 => {}
                    Some(Ok(batch)) => {
                        if part.is_none() {
                            part = Some(self.start_part(rows.schema())?);
                        }
                        if let Some(p) = &part
                            && p.sender.send(Ok(batch)).await.is_err()
                        {
                            // The writer stopped: its error comes with the commit.
                            break Ok(());
                        }
                    }
                    // A bad row, or the query stopped by a signal (the
                    // driver listens too): the open part is committed below.
                    Some(Err(e)) => break Err(e),
                    None => break Ok(()),
                },
                _ = tick.tick() => {
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
        // Whatever ended the query, the rows that came before are complete.
        drop(rows);
        let committed = match part.take() {
            Some(p) => self.commit(p).await,
            None => Ok(()),
        };
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
        let name = format!("part-{}", self.parts);
        self.parts += 1;
        let state = self.state.clone();
        let target = self.target.clone();
        let staging = self.staging.clone();
        let writer =
            tokio::spawn(async move { target.write_part(&state, &staging, &name, input, false).await });
        Ok(Part { sender, writer })
    }

    async fn commit(&mut self, part: Part) -> Result<()> {
        drop(part.sender);
        let rows = part
            .writer
            .await
            .map_err(|e| exec_datafusion_err!("the writer of '{}' stopped: {e}", self.target.url))??;
        self.written += rows;
        Ok(())
    }
}

//! What the streaming-suite runners (`tests/arroyo.rs`,
//! `tests/risingwave_streaming.rs`) share: reading a continuous query over
//! an unbounded source (a followed file), which never ends, until it is
//! quiet; and asking whether a replay's plan waits for the end of its input.

use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use sluice::Engine;

/// How long a query over a followed file may take to emit its first rows
/// (a busy machine is slow to plan and read; a query that emits none waits
/// this long).
pub const FIRST_ROWS: Duration = Duration::from_secs(8);

/// How long it may stay quiet after rows before its output so far is taken
/// as all it will emit for the input so far.
pub const IDLE: Duration = Duration::from_millis(1500);

/// The batches `stream` emits until it has been quiet for [`IDLE`] after its
/// first rows (or for [`FIRST_ROWS`] before any), or ends.
pub async fn read_until_quiet(mut stream: SendableRecordBatchStream) -> Result<Vec<RecordBatch>, String> {
    let mut batches: Vec<RecordBatch> = Vec::new();
    loop {
        let rows_yet = batches.iter().any(|b| b.num_rows() > 0);
        let patience = if rows_yet { IDLE } else { FIRST_ROWS };
        match tokio::time::timeout(patience, stream.next()).await {
            Err(_) | Ok(None) => return Ok(batches),
            Ok(Some(batch)) => batches.push(batch.map_err(|e| format!("error while running: {e}"))?),
        }
    }
}

/// Whether the continuous plan of `select` (on `engine`, in continuous mode)
/// has a step that waits for the end of its input (`... at end of input` in
/// `EXPLAIN`): a bounded replay allows it, the same query over an unbounded
/// source would be refused.
pub async fn waits_for_the_end(engine: &Engine, select: &str) -> Result<bool, String> {
    let explain = engine
        .run_script(&format!("EXPLAIN {select}"))
        .await
        .map_err(|e| format!("EXPLAIN: {e}"))?;
    let options = FormatOptions::default();
    let text = |column: &arrow::array::ArrayRef| -> Vec<String> {
        match ArrayFormatter::try_new(column.as_ref(), &options) {
            Ok(f) => (0..column.len()).map(|i| f.value(i).to_string()).collect(),
            Err(_) => Vec::new(),
        }
    };
    Ok(explain
        .iter()
        .flatten()
        .flat_map(|b| b.columns().iter().flat_map(text).collect::<Vec<_>>())
        .any(|line| line.contains("at end of input")))
}

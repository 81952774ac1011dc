//! What the streaming-suite runners (`tests/arroyo.rs`,
//! `tests/risingwave_streaming.rs`) share: reading a continuous query over
//! an unbounded source (a followed file), which never ends, until it is quiet.

use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

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

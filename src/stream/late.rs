//! Late rows: counted always, and with `'late.policy' = 'side-output'`
//! appended as NDJSON to the table's `'late.path'` (across runs: a restarted
//! query does not erase the rows of earlier ones). Nothing is lost silently.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::json::LineDelimitedWriter;
use arrow::record_batch::RecordBatch;
use datafusion::common::exec_datafusion_err;
use datafusion::error::Result;

use super::StreamMetrics;

/// Where the rows a windowed operator found late go.
pub struct LateRows {
    metrics: Arc<StreamMetrics>,
    side_output: Option<SideOutput>,
}

struct SideOutput {
    path: PathBuf,
    writer: Option<LineDelimitedWriter<BufWriter<File>>>,
}

impl LateRows {
    /// Count late rows into `metrics`; also write them to `side_output` if given.
    pub fn new(metrics: Arc<StreamMetrics>, side_output: Option<PathBuf>) -> Self {
        if let Some(path) = &side_output {
            let _ = metrics.late_output.set(path.clone());
        }
        Self {
            metrics,
            side_output: side_output.map(|path| SideOutput { path, writer: None }),
        }
    }

    /// The metrics late rows are counted in (an operator counts its other
    /// dropped rows there too, such as retractions of rows never inserted).
    pub fn metrics(&self) -> &Arc<StreamMetrics> {
        &self.metrics
    }

    /// The policy, for EXPLAIN.
    pub fn policy(&self) -> String {
        match &self.side_output {
            Some(side) => format!("late rows counted and written to {}", side.path.display()),
            None => "late rows counted and dropped".to_string(),
        }
    }

    /// Take the late rows of one batch.
    pub fn record(&mut self, rows: &RecordBatch) -> Result<()> {
        if rows.num_rows() == 0 {
            return Ok(());
        }
        self.metrics
            .late_rows
            .fetch_add(rows.num_rows() as u64, Ordering::Relaxed);
        if let Some(side) = &mut self.side_output {
            if side.writer.is_none() {
                // Appended to: a restarted query keeps the late rows of earlier runs.
                let file = File::options()
                    .create(true)
                    .append(true)
                    .open(&side.path)
                    .map_err(|e| {
                        exec_datafusion_err!("cannot open the late-row file '{}': {e}", side.path.display())
                    })?;
                side.writer = Some(LineDelimitedWriter::new(BufWriter::new(file)));
            }
            if let Some(writer) = &mut side.writer {
                writer.write(rows)?;
            }
        }
        Ok(())
    }

    /// Flush the side output (at the end of the query, and at each emission so
    /// a reader sees late rows near when they happened).
    pub fn flush(&mut self) -> Result<()> {
        if let Some(SideOutput {
            writer: Some(writer), ..
        }) = &mut self.side_output
        {
            use std::io::Write;
            writer
                .get_mut()
                .flush()
                .map_err(|e| exec_datafusion_err!("writing late rows: {e}"))?;
        }
        Ok(())
    }
}

impl Drop for LateRows {
    fn drop(&mut self) {
        if let Some(SideOutput {
            writer: Some(writer), ..
        }) = &mut self.side_output
        {
            let _ = writer.finish();
        }
        let _ = self.flush();
    }
}

//! What a running continuous query reports: for stderr at the end, and the
//! REPL's status line.

use std::sync::atomic::{AtomicI64, AtomicU64};

use super::operator::NO_WATERMARK;
use crate::connectors::line_decoder::BadRowStats;

/// What a running continuous query reports (for stderr at the end, and the
/// REPL's status line).
#[derive(Debug)]
pub struct StreamMetrics {
    /// Rows read from the sources.
    pub rows_in: AtomicU64,
    /// Rows that came after a window they belong to had closed.
    pub late_rows: AtomicU64,
    /// The query's watermark (the minimum over its sources), nanoseconds
    /// since the epoch.
    pub watermark: AtomicI64,
    /// Rows the operators that report it hold in state (joins' buffers).
    pub state_rows: AtomicU64,
    /// Where late rows are written, if the table says so.
    pub late_output: std::sync::OnceLock<std::path::PathBuf>,
    /// What planning warned of (state that grows without bound), for stderr
    /// when the query starts.
    pub warnings: std::sync::Mutex<Vec<String>>,
    /// The bad lines each source that skips them skipped, by table.
    pub bad_rows: std::sync::Mutex<Vec<(String, std::sync::Arc<BadRowStats>)>>,
}

impl Default for StreamMetrics {
    fn default() -> Self {
        Self {
            rows_in: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            watermark: AtomicI64::new(NO_WATERMARK),
            state_rows: AtomicU64::new(0),
            late_output: std::sync::OnceLock::new(),
            warnings: std::sync::Mutex::new(Vec::new()),
            bad_rows: std::sync::Mutex::new(Vec::new()),
        }
    }
}

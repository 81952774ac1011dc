//! What a running continuous query reports: for stderr at the end, the
//! REPL's status line, `--progress` and `--metrics`.
//!
//! The pipeline task writes the counters (atomics, so reading them never
//! waits for the query); readers take a [`MetricsSnapshot`] whenever they
//! like.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use super::operator::NO_WATERMARK;
use crate::connectors::line_decoder::BadRowStats;
use crate::plan::NullEventTimes;

/// What a running continuous query reports (for stderr at the end, and the
/// REPL's status line).
#[derive(Debug)]
pub struct StreamMetrics {
    /// Rows read from the sources.
    pub rows_in: AtomicU64,
    /// Rows that reached the query's sink (its result, or what an INSERT writes).
    pub rows_out: AtomicU64,
    /// Rows that came after a window they belong to had closed.
    pub late_rows: AtomicU64,
    /// The query's watermark (the minimum over its sources), nanoseconds
    /// since the epoch.
    pub watermark: AtomicI64,
    /// Rows the operators that report it hold in state (joins' buffers).
    pub state_rows: AtomicU64,
    /// Each operator's counters as last published by the pipeline task (a
    /// few times a second, and when the query ends), in graph order.
    pub operators: Mutex<Vec<OperatorStats>>,
    /// When the query was planned, for rates and elapsed time.
    pub started: Instant,
    /// Retractions (`-U`/`-D`) of rows that were never inserted: counted and
    /// reported, never applied.
    pub unmatched_retractions: AtomicU64,
    /// Where late rows are written, if the table says so.
    pub late_output: std::sync::OnceLock<std::path::PathBuf>,
    /// What planning warned of (state that grows without bound), for stderr
    /// when the query starts.
    pub warnings: std::sync::Mutex<Vec<String>>,
    /// The bad lines each source that skips them skipped, by table.
    pub bad_rows: std::sync::Mutex<Vec<(String, std::sync::Arc<BadRowStats>)>>,
    /// What the query says when it starts (it resumed from a checkpoint).
    pub notices: std::sync::Mutex<Vec<String>>,
    /// The last checkpoint taken, for the report at the end.
    pub last_checkpoint: std::sync::Mutex<Option<String>>,
    /// The bytes each followed file's scan has not read yet, by table.
    pub unread_bytes: std::sync::Mutex<Vec<(String, std::sync::Arc<AtomicU64>)>>,
    /// An updating result's key columns (its GROUP BY), when the planner
    /// knows them: a change replaces the row with the same key.
    pub result_key: std::sync::OnceLock<Vec<String>>,
    /// The counts of rows the query's windows left out for a NULL event
    /// time, one per window (see [`StreamMetrics::watch_null_times`]).
    pub null_times: Mutex<Vec<NullEventTimes>>,
    /// EXPLAIN ANALYZE: the graph reads each operator's state after every
    /// push, for its peak (a cost no other run pays).
    pub track_peaks: std::sync::atomic::AtomicBool,
}

impl Default for StreamMetrics {
    fn default() -> Self {
        Self {
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            watermark: AtomicI64::new(NO_WATERMARK),
            state_rows: AtomicU64::new(0),
            operators: Mutex::new(Vec::new()),
            started: Instant::now(),
            unmatched_retractions: AtomicU64::new(0),
            late_output: std::sync::OnceLock::new(),
            warnings: std::sync::Mutex::new(Vec::new()),
            bad_rows: std::sync::Mutex::new(Vec::new()),
            notices: std::sync::Mutex::new(Vec::new()),
            last_checkpoint: std::sync::Mutex::new(None),
            unread_bytes: std::sync::Mutex::new(Vec::new()),
            result_key: std::sync::OnceLock::new(),
            null_times: Mutex::new(Vec::new()),
            track_peaks: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// One operator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorStats {
    /// Its name, as EXPLAIN shows it.
    pub name: String,
    /// Rows it was given (over every input).
    pub rows_in: u64,
    /// Rows it passed on.
    pub rows_out: u64,
    /// Rows it holds in state (operators that report it; else 0).
    pub state_rows: u64,
    /// Bytes it holds in state, estimated (operators that measure it; else 0).
    pub state_bytes: u64,
    /// The most rows and bytes it held, as read after each push when the
    /// graph tracks peaks (EXPLAIN ANALYZE), else when counters are published.
    pub peak_state_rows: u64,
    pub peak_state_bytes: u64,
    /// Time spent in it (its events, and the merge before it), nanoseconds.
    pub busy_ns: u64,
}

/// The counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    /// Rows read from the sources.
    pub rows_in: u64,
    /// Rows that reached the sink.
    pub rows_out: u64,
    /// Late rows so far.
    pub late_rows: u64,
    /// Rows windows left out for a NULL event time, so far.
    pub null_time_rows: u64,
    /// The watermark, nanoseconds since the epoch; `None` before the first.
    pub watermark: Option<i64>,
    /// Rows held in state.
    pub state_rows: u64,
    /// Bytes held in state: the operators' estimates as last published.
    pub state_bytes: u64,
    /// Bytes of followed files not read yet; `None` when no source is one.
    pub lag_bytes: Option<u64>,
    /// Seconds since the query started.
    pub elapsed_secs: f64,
    /// Each operator's counters.
    pub operators: Vec<OperatorStats>,
}

impl StreamMetrics {
    /// Watch what the scan of `table` (through `provider`, just scanned)
    /// counts: the bad rows it skips, the bytes of followed files it has not
    /// read yet.
    pub fn watch_source(&self, table: &str, provider: &dyn datafusion::catalog::TableProvider) {
        if let Some(stats) = crate::connectors::bad_rows_of(provider)
            && let Ok(mut bad_rows) = self.bad_rows.lock()
        {
            bad_rows.push((table.to_string(), stats));
        }
        if let Some(unread) = crate::connectors::unread_bytes_of(provider)
            && let Ok(mut all) = self.unread_bytes.lock()
        {
            all.push((table.to_string(), unread));
        }
    }

    /// Count, with the rest, the rows the query's windows leave out for a
    /// NULL event time (the counts its plan's windows keep).
    pub fn watch_null_times(&self, counts: impl IntoIterator<Item = NullEventTimes>) {
        if let Ok(mut all) = self.null_times.lock() {
            all.extend(counts);
        }
    }

    /// Count `rows` retractions (`-U`/`-D`) of rows that were never inserted.
    pub fn count_unmatched_retractions(&self, rows: usize) {
        self.unmatched_retractions
            .fetch_add(rows as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Replace the operators' counters (the pipeline task does, now and then).
    pub fn publish_operators(&self, operators: Vec<OperatorStats>) {
        if let Ok(mut current) = self.operators.lock() {
            *current = operators;
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let watermark = self.watermark.load(Ordering::Relaxed);
        let operators = self.operators.lock().map(|o| o.clone()).unwrap_or_default();
        MetricsSnapshot {
            rows_in: self.rows_in.load(Ordering::Relaxed),
            rows_out: self.rows_out.load(Ordering::Relaxed),
            late_rows: self.late_rows.load(Ordering::Relaxed),
            null_time_rows: self
                .null_times
                .lock()
                .map(|all| all.iter().map(NullEventTimes::rows).sum())
                .unwrap_or_default(),
            // The end of a bounded input is +infinity: no time to show.
            watermark: (watermark != NO_WATERMARK && watermark != super::operator::END_OF_INPUT)
                .then_some(watermark),
            state_rows: self.state_rows.load(Ordering::Relaxed),
            state_bytes: operators.iter().map(|o| o.state_bytes).sum(),
            lag_bytes: self.unread_bytes.lock().ok().and_then(|all| {
                (!all.is_empty()).then(|| all.iter().map(|(_, n)| n.load(Ordering::Relaxed)).sum())
            }),
            elapsed_secs: self.started.elapsed().as_secs_f64(),
            operators,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_has_no_watermark_before_the_first_or_after_the_end() {
        let metrics = StreamMetrics::default();
        assert_eq!(metrics.snapshot().watermark, None);
        metrics.watermark.store(5, Ordering::Relaxed);
        metrics.rows_in.store(7, Ordering::Relaxed);
        let snapshot = metrics.snapshot();
        assert_eq!((snapshot.watermark, snapshot.rows_in), (Some(5), 7));
        metrics
            .watermark
            .store(super::super::operator::END_OF_INPUT, Ordering::Relaxed);
        assert_eq!(metrics.snapshot().watermark, None);
        metrics.publish_operators(vec![OperatorStats {
            name: "Filter".into(),
            rows_in: 3,
            rows_out: 1,
            state_rows: 0,
            state_bytes: 0,
            ..Default::default()
        }]);
        assert_eq!(metrics.snapshot().operators[0].rows_out, 1);
        let operator = |state_bytes| OperatorStats {
            name: "Sort".into(),
            rows_in: 0,
            rows_out: 0,
            state_rows: 1,
            state_bytes,
            ..Default::default()
        };
        metrics.publish_operators(vec![operator(100), operator(20)]);
        assert_eq!(metrics.snapshot().state_bytes, 120, "the operators' sum");
    }
}

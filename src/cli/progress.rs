//! What a running continuous query looks like to its user: the status line
//! (the shell's live table, `--progress`), the one-line summary at its end,
//! the `--metrics` JSON objects and the lag alert, all from the query's
//! [`StreamMetrics`] counters.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use crate::stream::StreamMetrics;
use crate::stream::metrics::MetricsSnapshot;

/// How far back the input rate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// One look at a running query: its counters and the rate of rows in.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The counters.
    pub snapshot: MetricsSnapshot,
    /// Rows in per second, over about the last second.
    pub rows_per_s: f64,
    /// Now minus the watermark, in milliseconds (`None` before the first
    /// watermark or after the end of a bounded input).
    pub lag_ms: Option<i64>,
    /// Wall-clock time of the look, milliseconds since the epoch.
    pub now_ms: i64,
}

/// Takes [`Progress`] looks at one query, remembering enough of the past for
/// its input rate.
pub struct ProgressTracker {
    samples: VecDeque<(Instant, u64)>,
}

impl Default for ProgressTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressTracker {
    /// A tracker with no past yet.
    pub fn new() -> Self {
        Self {
            samples: VecDeque::new(),
        }
    }

    /// Look at `metrics` now.
    pub fn look(&mut self, metrics: &StreamMetrics) -> Progress {
        let snapshot = metrics.snapshot();
        let now = Instant::now();
        self.samples.push_back((now, snapshot.rows_in));
        // Keep one sample at least RATE_WINDOW old, and none older.
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= RATE_WINDOW {
            self.samples.pop_front();
        }
        let rows_per_s = match self.samples.front() {
            Some(&(then, rows)) if now > then => {
                snapshot.rows_in.saturating_sub(rows) as f64 / now.duration_since(then).as_secs_f64()
            }
            // The first look: the average since the start.
            _ if snapshot.elapsed_secs > 0.0 => snapshot.rows_in as f64 / snapshot.elapsed_secs,
            _ => 0.0,
        };
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let lag_ms = snapshot.watermark.map(|w| now_ms - w.div_euclid(1_000_000));
        Progress {
            snapshot,
            rows_per_s,
            lag_ms,
            now_ms,
        }
    }
}

impl Progress {
    /// The status line: elapsed time, rows in (and per second), rows out,
    /// late rows, state, watermark and lag.
    pub fn status_line(&self) -> String {
        let s = &self.snapshot;
        let watermark = match s.watermark {
            Some(w) => format!("watermark {}", timestamp(w)),
            None => "no watermark yet".to_string(),
        };
        let unread = s.lag_bytes.map(|b| format!("{} unread", bytes(b)));
        let lag = match (self.lag_ms, unread) {
            (Some(ms), Some(unread)) => format!(" · lag {}, {unread}", duration_ms(ms)),
            (Some(ms), None) => format!(" · lag {}", duration_ms(ms)),
            (None, Some(unread)) => format!(" · lag {unread}"),
            (None, None) => String::new(),
        };
        // Shown once there are any: most queries have none.
        let null_times = match s.null_time_rows {
            0 => String::new(),
            n => format!(" · NULL time {}", thousands(n)),
        };
        // What matters most first: a narrow terminal cuts the end.
        format!(
            "{} · in {} ({} rows/s) · out {} · late {}{null_times} · state {} rows, {} · {watermark}{lag}",
            duration_ms((s.elapsed_secs * 1000.0) as i64),
            thousands(s.rows_in),
            thousands(self.rows_per_s.round() as u64),
            thousands(s.rows_out),
            thousands(s.late_rows),
            thousands(s.state_rows),
            bytes(s.state_bytes),
        )
    }

    /// The line printed when the query ends: `how` it ended, then rows in
    /// and out, late rows and elapsed time.
    pub fn summary(&self, how: &str) -> String {
        let s = &self.snapshot;
        format!(
            "{how} after {}: {} in, {} out, {} late",
            duration_ms((s.elapsed_secs * 1000.0) as i64),
            rows(s.rows_in),
            rows(s.rows_out),
            rows(s.late_rows),
        )
    }

    /// One `--metrics` object (fields documented in the README).
    pub fn json(&self) -> serde_json::Value {
        let s = &self.snapshot;
        let operators: Vec<serde_json::Value> = s
            .operators
            .iter()
            .map(|o| {
                serde_json::json!({
                    "name": o.name,
                    "rows_in": o.rows_in,
                    "rows_out": o.rows_out,
                    "state_rows": o.state_rows,
                    "state_bytes": o.state_bytes,
                })
            })
            .collect();
        serde_json::json!({
            "ts": timestamp(self.now_ms.saturating_mul(1_000_000)),
            "elapsed_ms": (s.elapsed_secs * 1000.0) as u64,
            "rows_in": s.rows_in,
            "rows_out": s.rows_out,
            "rows_per_s": (self.rows_per_s * 10.0).round() / 10.0,
            "watermark": s.watermark.map(timestamp),
            "lag_ms": self.lag_ms,
            "lag_bytes": s.lag_bytes,
            "late_rows": s.late_rows,
            "null_time_rows": s.null_time_rows,
            "state_rows": s.state_rows,
            "state_bytes": s.state_bytes,
            "operators": operators,
        })
    }

    /// The warning to print while the lag is above `limit_ms`, if it is.
    pub fn lag_alert(&self, limit_ms: u64) -> Option<String> {
        let lag = self.lag_ms?;
        (lag > limit_ms as i64).then(|| {
            format!(
                "Warning: lag {} is above sluice.alert.lag ({}): the watermark is at {}",
                duration_ms(lag),
                duration_ms(limit_ms as i64),
                self.snapshot.watermark.map(timestamp).unwrap_or_default()
            )
        })
    }
}

/// How far a batch query's scans have got, from its physical plan's live
/// metrics: rows its leaves have read, file parts done of all (a part is a
/// file or a byte range of one), and for Parquet bytes read of the total.
pub struct ScanProgress {
    plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    /// File parts and bytes the plan's file scans cover.
    parts: usize,
    bytes: u64,
    started: Instant,
}

impl ScanProgress {
    /// Progress of `plan`, started now.
    pub fn new(plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> Self {
        let (mut parts, mut bytes) = (0, 0);
        visit(&plan, &mut |node| {
            let scan = node
                .downcast_ref::<datafusion::datasource::source::DataSourceExec>()
                .and_then(|exec| {
                    exec.data_source()
                        .downcast_ref::<datafusion::datasource::physical_plan::FileScanConfig>()
                });
            if let Some(scan) = scan {
                for file in scan.file_groups.iter().flat_map(|g| g.files()) {
                    parts += 1;
                    bytes += match &file.range {
                        Some(range) => range.end.saturating_sub(range.start).max(0) as u64,
                        None => file.object_meta.size,
                    };
                }
            }
        });
        Self {
            plan,
            parts,
            bytes,
            started: Instant::now(),
        }
    }

    /// Time since the query started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The progress line: a bar when the total is known, rows read, elapsed.
    pub fn line(&self) -> String {
        let (mut rows, mut parts_done, mut bytes_read) = (0usize, 0usize, 0usize);
        visit(&self.plan, &mut |node| {
            let Some(metrics) = node.metrics() else {
                return;
            };
            if node.children().is_empty() {
                rows += metrics.output_rows().unwrap_or(0);
            }
            let count = |name| metrics.sum_by_name(name).map_or(0, |v| v.as_usize());
            parts_done += count("files_processed");
            bytes_read += count("bytes_scanned");
        });
        // Parquet counts the bytes it reads; other formats only the parts done.
        let (share, of) = if bytes_read > 0 && self.bytes > 0 {
            (
                bytes_read as f64 / self.bytes as f64,
                format!("{} of {}", bytes(bytes_read as u64), bytes(self.bytes)),
            )
        } else if self.parts > 0 {
            (
                parts_done as f64 / self.parts as f64,
                format!(
                    "{parts_done} of {} file parts ({})",
                    self.parts,
                    bytes(self.bytes)
                ),
            )
        } else {
            (f64::NAN, String::new())
        };
        let elapsed = duration_ms(self.started.elapsed().as_millis() as i64);
        let rows = format!("{} rows read", thousands(rows as u64));
        if share.is_nan() {
            return format!("{elapsed} · {rows}");
        }
        let share = share.clamp(0.0, 1.0);
        let filled = (share * 20.0).round() as usize;
        format!(
            "[{}{}] {:>3.0}% {of} · {elapsed} · {rows}",
            "#".repeat(filled),
            ".".repeat(20 - filled),
            share * 100.0
        )
    }
}

/// Call `f` on every node of `plan`.
fn visit(
    plan: &std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    f: &mut dyn FnMut(&std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>),
) {
    f(plan);
    for child in plan.children() {
        visit(child, f);
    }
}

/// `1.2 GB`, `340 KB`.
fn bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        _ if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        _ if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        _ if n >= 1e3 => format!("{:.0} KB", n / 1e3),
        _ => format!("{n} B"),
    }
}

/// Nanoseconds since the epoch as `2015-07-15 00:00:05.000` (UTC).
pub fn timestamp(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `3 h 20 min`, `4,157 d`.
pub fn duration_ms(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let text = match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
        3_600_000..86_400_000 => format!("{} h {:02} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
        _ => format!("{} d", thousands(ms / 86_400_000)),
    };
    format!("{sign}{text}")
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 row`, `12,000 rows`.
fn rows(n: u64) -> String {
    match n {
        1 => "1 row".to_string(),
        _ => format!("{} rows", thousands(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_345), "12.3 s");
        assert_eq!(duration_ms(245_000), "4 min 05 s");
        assert_eq!(duration_ms(-1_500), "-1.5 s");
        assert_eq!(duration_ms(3 * 86_400_000), "3 d");
        assert_eq!(timestamp(1_436_918_405_000_000_000), "2015-07-15 00:00:05.000");
    }

    #[test]
    fn a_look_shows_counts_watermark_lag_and_alerts() {
        let metrics = StreamMetrics::default();
        metrics.rows_in.store(12_000, Ordering::Relaxed);
        metrics.rows_out.store(5, Ordering::Relaxed);
        metrics.late_rows.store(2, Ordering::Relaxed);
        metrics.state_rows.store(3, Ordering::Relaxed);
        metrics.publish_operators(vec![crate::stream::metrics::OperatorStats {
            name: "StreamJoin".into(),
            rows_in: 12_000,
            rows_out: 5,
            state_rows: 3,
            state_bytes: 2_500,
            ..Default::default()
        }]);
        // A watermark ten seconds ago.
        let now_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as i64;
        metrics
            .watermark
            .store(now_ns - 10_000_000_000, Ordering::Relaxed);
        let mut tracker = ProgressTracker::new();
        let look = tracker.look(&metrics);
        let line = look.status_line();
        assert!(line.contains(" · in 12,000 ("), "{line}");
        assert!(
            line.contains(" rows/s) · out 5 · late 2 · state 3 rows, 2 KB · watermark "),
            "{line}"
        );
        assert!(line.contains("lag 10."), "{line}");
        assert_eq!(look.json()["null_time_rows"], 0);
        assert_eq!(
            look.json()["lag_bytes"],
            serde_json::Value::Null,
            "no followed file"
        );
        let unread = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(3_400_000));
        if let Ok(mut all) = metrics.unread_bytes.lock() {
            all.push(("t".into(), unread));
        }
        let look = tracker.look(&metrics);
        assert!(
            look.status_line().contains(" · lag 10.0 s, 3.4 MB unread"),
            "{}",
            look.status_line()
        );
        assert_eq!(look.json()["lag_bytes"], 3_400_000);
        let lag = look.lag_ms.expect("a lag");
        assert!((10_000..11_000).contains(&lag), "{lag}");
        assert!(look.lag_alert(5_000).is_some());
        assert!(look.lag_alert(60_000).is_none());
        let json = look.json();
        assert_eq!(json["rows_in"], 12_000);
        assert_eq!(json["late_rows"], 2);
        assert_eq!(json["state_bytes"], 2_500);
        assert_eq!(json["operators"][0]["state_bytes"], 2_500);
        assert!(json["watermark"].is_string(), "{json}");
        assert_eq!(
            look.summary("Query cancelled"),
            format!(
                "Query cancelled after {}: 12,000 rows in, 5 rows out, 2 rows late",
                duration_ms((look.snapshot.elapsed_secs * 1000.0) as i64)
            )
        );
    }

    #[test]
    fn the_rate_is_measured_over_the_last_second() {
        let metrics = StreamMetrics::default();
        let mut tracker = ProgressTracker::new();
        tracker.look(&metrics);
        std::thread::sleep(Duration::from_millis(100));
        metrics.rows_in.store(1_000, Ordering::Relaxed);
        let rate = tracker.look(&metrics).rows_per_s;
        // 1,000 rows in about 0.1 s (a loaded machine sleeps longer).
        assert!((1_000.0..=10_500.0).contains(&rate), "{rate}");
    }
}

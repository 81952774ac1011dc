//! The crash test of issue 10: continuous `INSERT`s into file tables over a
//! followed file that the test keeps appending to and a paced, seeded
//! generator are killed with SIGKILL at random moments, restarted each
//! time, and stopped at the end with SIGTERM; their committed output must
//! then be an uninterrupted run's (no row lost, none twice) and, where
//! batch defines it, the batch result over the same final data.
//!
//! Three shapes, each its own `INSERT` and so its own process (a continuous
//! run executes one statement, and each shape needs its own sink: rows for
//! the window and the join, a changelog with its `op` column for the
//! updating aggregate). The three are killed concurrently on their own
//! schedules, each beside its uninterrupted reference run, all following
//! the same file as it grows, so the test takes one kill phase, not three.
//!
//! `SLUICE_CRASH_SEED=N` replays a run's kill schedule and appended data
//! (the seed is printed, and shown when the test fails).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Lines appended to the followed file, 20 ms of event time apart (a minute
/// of event time), before the one that closes their windows.
const CLICKS: u64 = 3000;
/// The generator's rows 10 ms of event time apart, for ever (a bounded one
/// would be looked up, not joined as a stream); the queries take the
/// minute before `END` from both sources.
const ORDERS_PER_SECOND: u64 = 1000;
/// Generated rows a run has read once its watermark is past `END` and the
/// interval join's bound (row 6000 is at `END`, and the watermark 1 s behind).
const ORDERS: u64 = 6200;
/// The end of the minute of event time the queries read.
const END: &str = "2024-01-01 00:01:00";
/// Kills of each shape's query, at least.
const KILLS: usize = 20;
/// Between two checkpoints.
const INTERVAL_MS: u64 = 150;
/// The last line appended: far after the others in event time, so the
/// watermark it brings closes every window of the minute before `END` (the
/// queries leave it out, but for the join, which it matches nothing in).
const CLOSING_TIME: &str = "2024-01-01 01:00:00";

/// A small xorshift generator: the kill schedule and the appended data
/// follow from the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One shape's query and its sink.
struct Shape {
    /// Names its sink's and checkpoints' directories.
    name: &'static str,
    /// The sink's columns.
    columns: &'static str,
    /// The query, over `clicks`, `orders` and their union `events`.
    query: &'static str,
    /// Its result is a changelog (an `op` column first in the files).
    updating: bool,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "window",
        columns: "window_start TIMESTAMP(3), k BIGINT, n BIGINT, total BIGINT",
        query: "SELECT window_start, k, count(*) AS n, sum(v) AS total \
                FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '2' SECOND)) \
                GROUP BY window_start, window_end, k",
        updating: false,
    },
    Shape {
        name: "join",
        columns: "click BIGINT, order_id BIGINT, k BIGINT, v BIGINT",
        query: "SELECT c.id AS click, o.id AS order_id, c.k, c.v * 1000 + o.v AS v \
                FROM clicks c JOIN orders o ON c.k = o.k \
                AND o.ts BETWEEN c.ts - INTERVAL '50' MILLISECOND AND c.ts + INTERVAL '50' MILLISECOND",
        updating: false,
    },
    Shape {
        name: "totals",
        columns: "k BIGINT, n BIGINT, total BIGINT",
        query: "SELECT k, count(*) AS n, sum(v) AS total FROM events GROUP BY k",
        updating: true,
    },
];

/// The two sources and their union over the minute before `END`;
/// `continuous`: the file followed and the generator paced and endless,
/// else the file read once and enough generated rows (batch).
fn tables(seed: u64, continuous: bool) -> String {
    let (follow, orders) = match continuous {
        true => (
            ", 'follow' = 'true'".to_string(),
            format!("'rows-per-second' = '{ORDERS_PER_SECOND}'"),
        ),
        false => (String::new(), format!("'rows' = '{ORDERS}'")),
    };
    format!(
        "SET 'datafusion.execution.batch_size' = '100'; \
         CREATE TABLE clicks (id BIGINT, k BIGINT, v BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
         WITH ('connector' = 'file', 'path' = 'clicks.ndjson', 'format' = 'json'{follow}); \
         CREATE TABLE orders (id BIGINT, k BIGINT, v BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
         WITH ('connector' = 'datagen', {orders}, 'seed' = '{seed}', \
         'fields.id.kind' = 'sequence', 'fields.k.min' = '1', 'fields.k.max' = '10', \
         'fields.v.min' = '1', 'fields.v.max' = '100', \
         'fields.ts.kind' = 'sequence', 'fields.ts.start' = '2024-01-01 00:00:00', 'fields.ts.step' = '10 ms'); \
         CREATE VIEW events AS SELECT k, v, ts FROM clicks WHERE ts < TIMESTAMP '{END}' \
         UNION ALL SELECT k, v, ts FROM orders WHERE ts < TIMESTAMP '{END}';"
    )
}

/// A shape's checkpointed `INSERT` into the directory `out`.
fn insert_sql(seed: u64, shape: &Shape, out: &str) -> String {
    format!(
        "{} CREATE TABLE sink ({}) WITH ('connector' = 'file', 'path' = '{out}/', 'format' = 'csv'); \
         SET 'checkpoint.interval' = '{INTERVAL_MS} ms'; INSERT INTO sink {}",
        tables(seed, true),
        shape.columns,
        shape.query
    )
}

/// The followed file's lines: ids in order, times 20 ms apart moved by up
/// to 300 ms (less than the watermark's delay, so none is late), then the
/// closing line.
fn clicks(rng: &mut Rng) -> Vec<String> {
    let base = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a date");
    let mut lines: Vec<String> = (0..CLICKS)
        .map(|id| {
            let ms = (id * 20 + rng.below(300)) as i64;
            let ts = base + chrono::Duration::milliseconds(ms);
            format!(
                r#"{{"id":{id},"k":{},"v":{},"ts":"{}"}}"#,
                1 + rng.below(10),
                1 + rng.below(100),
                ts.format("%Y-%m-%d %H:%M:%S%.3f")
            )
        })
        .collect();
    lines.push(format!(r#"{{"id":{CLICKS},"k":0,"v":0,"ts":"{CLOSING_TIME}"}}"#));
    lines
}

/// Append `lines` to `path` in chunks of 1 to 60 lines, each written in
/// two pieces cut anywhere (a reader sees a line without its end now and
/// then), while the queries are killed: the appends are spread over the
/// kill phase by the kills so far (`kills`, each shape's), so that every
/// shape's runs see the file grow whatever the machine's speed, and 10 to
/// 90 ms apart.
fn append(path: &Path, lines: &[String], rng: &mut Rng, kills: &[AtomicUsize], failed: &AtomicBool) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("the followed file");
    let mut at = 0;
    // Past it, or once a kill loop failed, the rest is appended at once.
    let deadline = Instant::now() + Duration::from_secs(90);
    while at < lines.len() {
        // The share of the file appended follows the share of kills done.
        let share = |n: usize| (n * lines.len()).div_ceil(KILLS);
        common::wait_until(deadline.saturating_duration_since(Instant::now()), || {
            failed.load(Ordering::Relaxed)
                || kills
                    .iter()
                    .map(|k| k.load(Ordering::Relaxed))
                    .min()
                    .is_some_and(|n| share(n + 1) > at)
        });
        let n = (1 + rng.below(60) as usize).min(lines.len() - at);
        let chunk: String = lines[at..at + n].iter().map(|l| format!("{l}\n")).collect();
        let cut = rng.below(chunk.len() as u64) as usize;
        file.write_all(&chunk.as_bytes()[..cut]).expect("append");
        file.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(2));
        file.write_all(&chunk.as_bytes()[cut..]).expect("append");
        file.flush().expect("flush");
        at += n;
        std::thread::sleep(Duration::from_millis(10 + rng.below(80)));
    }
}

/// What one shape's killed runs did.
#[derive(Debug, Default)]
struct Kills {
    /// SIGKILLs sent.
    kills: usize,
    /// Of them, before the run had completed a checkpoint of its own.
    before_a_checkpoint: usize,
    /// Of them, while a checkpoint was being written (a checkpoint
    /// directory without its manifest).
    mid_checkpoint: usize,
    /// Runs that said they resumed from a checkpoint.
    resumed: usize,
    /// Restarts (a checkpoint to resume from was there) that completed a
    /// checkpoint of their own: each must have resumed.
    must_have_resumed: usize,
}

/// Whether a checkpoint is being written in `ck` (one without its manifest).
fn writing_a_checkpoint(ck: &Path) -> bool {
    std::fs::read_dir(ck).into_iter().flatten().flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with("chk-") && !e.path().join("_manifest.json").exists()
    })
}

/// Run `sql` in `dir` with checkpoints in `ck` and kill it with SIGKILL,
/// again and again, at least `KILLS` times and until `appending` is over:
/// some kills come at a random moment of the start (before the run's first
/// checkpoint, often before it has resumed), the others at a random moment
/// up to two intervals after one of the run's checkpoints is complete
/// (mid-batch, mid-checkpoint, during the sink's renames).
fn kill_again_and_again(
    dir: &Path,
    ck: &str,
    sql: &str,
    rng: &mut Rng,
    appending: &AtomicBool,
    kills: &AtomicUsize,
) -> Kills {
    let ck_dir = dir.join(ck);
    let mut done = Kills::default();
    let started = Instant::now();
    while done.kills < KILLS || appending.load(Ordering::Relaxed) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the kill phase takes too long: {done:?}"
        );
        let before = common::latest_checkpoint(&ck_dir);
        let log = dir.join(format!("{ck}-{}.err", done.kills));
        let mut child = common::sluice(dir, &["--mode", "continuous", "--checkpoint-dir", ck], sql)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("the sluice binary starts");
        let early = rng.below(4) == 0;
        if early {
            std::thread::sleep(Duration::from_millis(rng.below(300)));
        } else {
            // A checkpoint of this run (the generator never ends, so one
            // comes every interval once the run is going).
            common::wait_until(Duration::from_secs(3), || {
                common::latest_checkpoint(&ck_dir) > before
            });
            std::thread::sleep(Duration::from_millis(rng.below(2 * INTERVAL_MS)));
        }
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(status) = child.try_wait().expect("the run") {
            panic!("a run ended before its kill ({status}): {}", read_log());
        }
        done.mid_checkpoint += usize::from(writing_a_checkpoint(&ck_dir));
        child.kill().expect("kill -9");
        child.wait().expect("the killed run");
        done.kills += 1;
        kills.store(done.kills, Ordering::Relaxed);
        let checkpointed = common::latest_checkpoint(&ck_dir) > before;
        done.before_a_checkpoint += usize::from(!checkpointed);
        done.must_have_resumed += usize::from(checkpointed && before.is_some());
        done.resumed += usize::from(read_log().contains("resumed from checkpoint"));
    }
    done
}

/// Whether the latest complete checkpoint in `ck` had read the followed
/// file to its `size` and `ORDERS` generated rows, and its number.
fn at_the_end(ck: &Path, size: u64) -> (bool, Option<u64>) {
    let Some(id) = common::latest_checkpoint(ck) else {
        return (false, None);
    };
    // The run may prune it meanwhile: the next poll reads a later one.
    let Ok(text) = std::fs::read_to_string(ck.join(format!("chk-{id:06}/_manifest.json"))) else {
        return (false, None);
    };
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("a manifest is JSON");
    let sources = manifest["sources"].as_array().expect("the sources");
    let done = sources.iter().all(|s| match s["table"].as_str() {
        Some("orders") => s["rows"].as_u64().is_some_and(|n| n >= ORDERS),
        _ => s["files"]
            .as_array()
            .is_some_and(|f| f.len() == 1 && f[0]["offset"] == size && f[0]["skip"] == 0),
    });
    (done, Some(id))
}

/// Run `sql` until it has read every row (once `appending` is over: the
/// followed file whole, and `ORDERS` generated rows), as a checkpoint of
/// the run says, then stop it with SIGTERM, which takes a last checkpoint
/// and commits. Every shape's runs end this way, killed or not; the
/// reference run is this run alone, started with the appends.
fn stop_at_the_end(dir: &Path, ck: &str, sql: &str, appending: &AtomicBool) -> String {
    let ck_dir = dir.join(ck);
    let before = common::latest_checkpoint(&ck_dir);
    let log = dir.join(format!("{ck}-stop.err"));
    let mut child = common::sluice(dir, &["--mode", "continuous", "--checkpoint-dir", ck], sql)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the sluice binary starts");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // The appends end with the kill phase (bounded by its own limits).
    common::wait_until(Duration::from_secs(240), || !appending.load(Ordering::Relaxed));
    assert!(!appending.load(Ordering::Relaxed), "the appends ended");
    let size = std::fs::metadata(dir.join("clicks.ndjson"))
        .expect("the followed file")
        .len();
    // A checkpoint of this run (its signal handler is in place by then).
    let mut exited = None;
    common::wait_until(Duration::from_secs(60), || {
        exited = child.try_wait().expect("the run");
        let (done, id) = at_the_end(&ck_dir, size);
        exited.is_some() || (done && id > before)
    });
    if let Some(status) = exited {
        panic!("a run ended before its stop ({status}): {}", read_log());
    }
    assert!(
        at_the_end(&ck_dir, size).0,
        "the run read every row within 60 s: {}",
        read_log()
    );
    common::signal(&child, "TERM");
    let status = child.wait().expect("the stopped run");
    let err = read_log();
    assert!(err.contains("stopped by SIGTERM"), "{status}: {err}");
    err
}

/// The committed files of the sink directory `out`, in the order they were
/// committed; no staging or other file may be left there.
fn committed_files(out: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("the output directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        assert!(
            file.is_file() && !name.starts_with('.') && name.ends_with(".csv"),
            "only committed parts are in {}: {name}",
            out.display()
        );
    }
    files.sort();
    files
}

/// The data lines of CSV files (each file's header dropped), in order,
/// timestamps as `2024-01-01T00:00:00`.
fn csv_rows(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("a committed file");
            text.lines()
                .skip(1)
                .filter(|l| !l.is_empty())
                .map(|l| l.replacen(' ', "T", 1))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Data lines of the CSV `text` printed by a query, timestamps as in
/// [`csv_rows`].
fn printed_rows(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.replacen(' ', "T", 1))
        .collect()
}

/// Rows sorted, so two multisets compare as vectors.
fn sorted(mut rows: Vec<String>) -> Vec<String> {
    rows.sort();
    rows
}

/// Apply a changelog (`op,k,...` lines, in order) to a table keyed by its
/// first column after `op`: `+I` of a key not there, `-U`/`-D` of exactly
/// the row there, `+U` of a key its `-U` just took out. A change applied
/// twice breaks one of these (an insert of a key present, a retraction of
/// a row already replaced). The final table, sorted, as `k,...` lines.
fn apply_changelog(what: &str, lines: &[String]) -> Vec<String> {
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    let mut updating: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let (op, row) = line.split_once(',').unwrap_or((line, ""));
        let key = row.split(',').next().unwrap_or_default().to_string();
        let fail = |why: &str| -> ! { panic!("{what}: change {i} ({line}) {why}") };
        match op {
            "+I" if table.contains_key(&key) => fail("inserts a key already there"),
            "-U" | "-D" if table.get(&key) != Some(&row.to_string()) => fail(&format!(
                "retracts a row not there (there: {:?})",
                table.get(&key)
            )),
            "+U" if updating.as_deref() != Some(key.as_str()) => fail("is not preceded by its -U"),
            "+I" | "+U" => {
                table.insert(key, row.to_string());
            }
            "-U" => {
                table.remove(&key);
                updating = Some(key);
                continue;
            }
            "-D" => {
                table.remove(&key);
            }
            _ => fail("has no known op"),
        }
        updating = None;
    }
    table.into_values().collect()
}

/// A shape's committed rows in `out`: as a multiset of rows for an
/// appending query, the final table for a changelog.
fn committed(shape: &Shape, out: &Path) -> Vec<String> {
    let rows = csv_rows(&committed_files(out));
    match shape.updating {
        true => apply_changelog(&format!("{}'s changelog in {}", shape.name, out.display()), &rows),
        false => sorted(rows),
    }
}

/// A shape's batch result over the final data.
fn batch_result(dir: &Path, seed: u64, shape: &Shape) -> Vec<String> {
    let out = common::sluice(
        dir,
        &["--mode", "batch"],
        &format!("{} {}", tables(seed, false), shape.query),
    )
    .output()
    .expect("the sluice binary runs");
    assert!(
        out.status.success(),
        "batch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sorted(printed_rows(&String::from_utf8_lossy(&out.stdout)))
}

/// Sets its flag when dropped by a panic.
struct Failing<'a>(&'a AtomicBool);

impl Drop for Failing<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn queries_killed_with_sigkill_at_random_moments_commit_what_an_uninterrupted_run_does() {
    let seed = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    // Shown when the test fails (the harness prints a failed test's output).
    eprintln!("crash test seed {seed}: SLUICE_CRASH_SEED={seed} replays its kill schedule and data");
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    // SLUICE_CRASH_KEEP=1 keeps the runs' directory (logs, checkpoints, output).
    let (_tmp, dir) = match std::env::var_os("SLUICE_CRASH_KEEP") {
        Some(_) => (None, tmp.keep()),
        None => {
            let dir = tmp.path().to_path_buf();
            (Some(tmp), dir)
        }
    };
    eprintln!("the runs' directory: {}", dir.display());
    let dir = dir.as_path();
    let mut rng = Rng::new(seed);
    let lines = clicks(&mut rng);
    let follow = dir.join("clicks.ndjson");
    std::fs::write(&follow, "").expect("the followed file");
    let appending = AtomicBool::new(true);
    let failed = AtomicBool::new(false);
    let kills: [AtomicUsize; 3] = Default::default();
    let runs: Vec<(Kills, String, String)> = std::thread::scope(|scope| {
        let mut append_rng = Rng::new(rng.next());
        let (appending, failed, follow, all_kills) = (&appending, &failed, &follow, &kills);
        scope.spawn(move || {
            append(follow, &lines, &mut append_rng, all_kills, failed);
            appending.store(false, Ordering::Relaxed);
        });
        let runs: Vec<_> = SHAPES
            .iter()
            .zip(&kills)
            .map(|(shape, kills)| {
                let mut kill_rng = Rng::new(rng.next());
                let reference = scope.spawn(move || {
                    let sql = insert_sql(seed, shape, &format!("reference-{}", shape.name));
                    stop_at_the_end(dir, &format!("ck-reference-{}", shape.name), &sql, appending)
                });
                let killed = scope.spawn(move || {
                    let sql = insert_sql(seed, shape, &format!("out-{}", shape.name));
                    let ck = format!("ck-{}", shape.name);
                    // A failed kill loop stops the appends (and so the others).
                    let _failing = Failing(failed);
                    let kills = kill_again_and_again(dir, &ck, &sql, &mut kill_rng, appending, kills);
                    (kills, stop_at_the_end(dir, &ck, &sql, appending))
                });
                (reference, killed)
            })
            .collect();
        runs.into_iter()
            .map(|(reference, killed)| {
                let reference = reference.join().expect("the reference run");
                let (kills, last) = killed.join().expect("the killed runs");
                (kills, last, reference)
            })
            .collect()
    });
    for (shape, (kills, last, reference)) in SHAPES.iter().zip(&runs) {
        eprintln!("{}: {kills:?}", shape.name);
        let context = format!("{} (seed {seed}, {kills:?})", shape.name);
        assert!(kills.kills >= KILLS, "{context}");
        assert!(
            kills.resumed >= kills.must_have_resumed.max(KILLS / 4),
            "{context}: every restart that took a checkpoint, and at least {}, resumed from one",
            KILLS / 4
        );
        assert!(
            last.contains("resumed from checkpoint") && !reference.contains("resumed from checkpoint"),
            "{context}: the last run resumes, the reference run is one run: {last}; {reference}"
        );
        let got = committed(shape, &dir.join(format!("out-{}", shape.name)));
        let want = committed(shape, &dir.join(format!("reference-{}", shape.name)));
        assert!(!want.is_empty(), "{context}: the reference run wrote rows");
        common::assert_same_multiset(&format!("{context}, killed against uninterrupted"), &got, &want);
        let batch = batch_result(dir, seed, shape);
        common::assert_same_multiset(&format!("{context}, uninterrupted against batch"), &want, &batch);
    }
    eprintln!("the crash test took {:.1} s", started.elapsed().as_secs_f64());
}

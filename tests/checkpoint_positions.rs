//! Sources' positions in checkpoints, through the `sluice` binary and the
//! library: a followed file resumes at its byte offset (it is not decoded
//! again up to there), a followed file rotated, truncated or rewritten while
//! the query was down is read from its start with a notice saying so, and the
//! "resumed from checkpoint" notice comes before anything the resumed query
//! does.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;

/// A followed NDJSON file of ids, printed as CSV.
fn follow_sql(path: &Path) -> String {
    format!(
        "CREATE TABLE t (id BIGINT, pad VARCHAR) WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json', 'follow' = 'true'); \
         SET 'checkpoint.interval' = '100 ms'; SELECT id FROM t",
        path.display()
    )
}

/// `{"id": i, "pad": "..."}` lines, 60 bytes of padding each.
fn lines(ids: std::ops::Range<i64>) -> String {
    ids.map(|i| format!("{{\"id\": {i}, \"pad\": \"{}\"}}\n", "x".repeat(60)))
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open to append");
    file.write_all(text.as_bytes()).expect("append");
}

/// A run of the binary whose stdout lines and stderr are collected as they come.
struct Run {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Run {
    fn start(dir: &Path, sql: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .current_dir(dir)
            .args(["--format", "csv", "--checkpoint-dir", "ck", "-e", sql])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sluice binary starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (out, err) = (Arc::clone(&stdout), Arc::clone(&stderr));
        let pipe = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                out.lock().expect("lines").push(line);
            }
        });
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut err = err.lock().expect("stderr");
                err.push_str(&line);
                err.push('\n');
            }
        });
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The ids printed so far (the CSV header left out).
    fn ids(&self) -> Vec<i64> {
        let lines = self.stdout.lock().expect("lines");
        lines.iter().filter_map(|l| l.parse().ok()).collect()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// Wait until `n` ids are printed, or fail saying what came.
    fn wait_for(&self, n: usize) {
        let start = Instant::now();
        while self.ids().len() < n {
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "{} of {n} rows within 30 s; stderr: {}",
                    self.ids().len(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run `sql` until it printed `n` ids and a moment more (for any row
    /// too many), then stop it: its ids and stderr.
    fn until(dir: &Path, sql: &str, n: usize) -> (Vec<i64>, String) {
        let run = Self::start(dir, sql);
        run.wait_for(n);
        std::thread::sleep(Duration::from_millis(300));
        run.stop()
    }

    /// SIGTERM (the query takes a last checkpoint), then its ids and stderr.
    fn stop(mut self) -> (Vec<i64>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.child.wait().expect("the stopped run");
        // The reader threads see the pipes close.
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr();
        assert!(err.contains("stopped by SIGTERM"), "{err}");
        (self.ids(), err)
    }
}

/// The latest complete checkpoint's manifest in `ck`.
fn latest_manifest(ck: &Path) -> serde_json::Value {
    let latest = std::fs::read_dir(ck)
        .expect("the checkpoint directory")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("_manifest.json").exists())
        .max()
        .expect("a complete checkpoint");
    let text = std::fs::read_to_string(latest.join("_manifest.json")).expect("the manifest");
    serde_json::from_str(&text).expect("JSON")
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let path = tmp.path().to_path_buf();
    (tmp, path)
}

#[test]
fn a_followed_file_resumes_at_its_byte_offset_without_decoding_what_came_before() {
    let (_tmp, dir) = temp();
    let file = dir.join("events.ndjson");
    append(&file, &lines(0..500));
    let (first, _) = Run::until(&dir, &follow_sql(&file), 500);
    assert_eq!(first, (0..500).collect::<Vec<_>>());
    let manifest = latest_manifest(&dir.join("ck"));
    let files = &manifest["sources"][0]["files"];
    let size = std::fs::metadata(&file).expect("the file").len();
    assert_eq!(files[0]["offset"], size, "every line handed over: {manifest}");
    assert_eq!(files[0]["lines"], 500, "{manifest}");
    // A line well past the file's head, already read, made unreadable in
    // place (same length): a resume that decodes the file again up to its
    // position fails on it; one that seeks to the offset never reads it.
    let mut f = std::fs::OpenOptions::new().write(true).open(&file).expect("open");
    let line = lines(300..301);
    f.seek(SeekFrom::Start(300 * line.len() as u64)).expect("seek");
    f.write_all(format!("{{\"id\": \"bad{}\"}}\n", " ".repeat(line.len() - 15)).as_bytes())
        .expect("overwrite");
    drop(f);
    append(&file, &lines(500..510));
    let (second, err) = Run::until(&dir, &follow_sql(&file), 10);
    let shown = file.display().to_string();
    assert!(
        err.contains("resumed from checkpoint")
            && err.contains(&format!("(t: from row 501, at byte {size} of '{shown}')")),
        "{err}"
    );
    assert_eq!(second, (500..510).collect::<Vec<_>>(), "only the new rows: {err}");
}

#[test]
fn a_resumed_csv_directory_goes_on_in_every_file_and_names_its_lines() {
    let (_tmp, dir) = temp();
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).expect("a directory");
    append(&logs.join("a.csv"), "id,pad\n1,a\n2,a\n");
    append(&logs.join("b.csv"), "id,pad\n3,b\n");
    let sql = format!(
        "CREATE TABLE t (id BIGINT, pad VARCHAR) WITH ('connector' = 'file', 'path' = '{}', 'format' = 'csv', 'follow' = 'true'); \
         SET 'checkpoint.interval' = '100 ms'; SELECT id FROM t",
        logs.display()
    );
    let (first, _) = Run::until(&dir, &sql, 3);
    assert_eq!(first, [1, 2, 3]);
    // Past the header: the resumed files read no header again.
    append(&logs.join("a.csv"), "4,a\n");
    append(&logs.join("b.csv"), "5,b\n");
    append(&logs.join("c.csv"), "id,pad\n6,c\n");
    let run = Run::start(&dir, &sql);
    run.wait_for(3);
    // A bad line is named by its line in the file, counted from its start.
    append(&logs.join("a.csv"), "x,a\n");
    let start = Instant::now();
    while !run.stderr().contains("line 5") && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = run.child;
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(100));
    let err = run.stderr.lock().expect("stderr").clone();
    let ids: Vec<i64> = run
        .stdout
        .lock()
        .expect("lines")
        .iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert_eq!(ids, [4, 5, 6], "{err}");
    let a = logs.join("a.csv").display().to_string();
    assert!(err.contains(&format!("file {a} line 5: ")), "{err}");
}

/// What a followed file undergoes while the query is down.
enum Change {
    /// Renamed away, a new file under its name.
    Rotated,
    /// Cut and refilled with fewer bytes than were read.
    Truncated,
    /// Rewritten in place, same inode, more bytes than were read.
    Rewritten,
}

#[test]
fn a_followed_file_rotated_truncated_or_rewritten_while_down_is_read_from_its_start() {
    for (change, says) in [
        (Change::Rotated, "its inode changed"),
        (Change::Truncated, "is shorter than at the checkpoint"),
        (Change::Rewritten, "changed in its first"),
    ] {
        let (_tmp, dir) = temp();
        let file = dir.join("app.log");
        append(&file, &lines(0..20));
        Run::until(&dir, &follow_sql(&file), 20);
        let fresh = match change {
            Change::Rotated => {
                std::fs::rename(&file, dir.join("app.log.1")).expect("rotate");
                lines(100..103)
            }
            Change::Truncated => lines(100..103),
            Change::Rewritten => lines(100..130),
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(matches!(change, Change::Truncated))
            .open(&file)
            .expect("open");
        f.write_all(fresh.as_bytes()).expect("write");
        drop(f);
        let want = fresh.lines().count();
        let (ids, err) = Run::until(&dir, &follow_sql(&file), want);
        assert_eq!(ids, (100..100 + want as i64).collect::<Vec<_>>(), "{says}: {err}");
        let shown = file.display().to_string();
        assert!(
            err.contains(&format!("table 't': followed file '{shown}' ")) && err.contains(says),
            "{says}: {err}"
        );
        assert!(err.contains("read from its start"), "{err}");
    }
}

/// A resumed query does nothing before its caller has the "resumed from
/// checkpoint" notice: its pipeline starts when its rows are first read,
/// so no checkpoint (and no row) can come before the notice is shown,
/// whatever the sink does with its barriers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resumed_notice_is_there_before_the_query_runs() {
    let (_tmp, dir) = temp();
    let ck = dir.join("ck");
    let sql = format!(
        "SET sluice.mode = 'continuous'; SET 'checkpoint.interval' = '1 ms'; SET 'checkpoint.dir' = '{}'; \
         CREATE TABLE g (id BIGINT) WITH ('connector' = 'datagen', 'rows' = '100000', 'rows-per-second' = '20000', 'fields.id.kind' = 'sequence')",
        ck.display()
    );
    let checkpoints = || {
        std::fs::read_dir(&ck)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().join("_manifest.json").exists())
                    .count()
            })
            .unwrap_or(0)
    };
    for run in 0..2 {
        let engine = sluice::Engine::new();
        engine.run_script(&sql).await.expect("set-up");
        let tokens = engine.split("SELECT id FROM g").expect("split");
        let statement = engine.parse(&tokens[0]).expect("parse");
        let before = checkpoints();
        let mut output = engine.execute(&statement).await.expect("execute");
        let notices = output
            .metrics
            .as_ref()
            .map(|m| m.notices.lock().expect("notices").clone())
            .unwrap_or_default();
        if run == 1 {
            assert!(
                notices.iter().any(|n| n.contains("resumed from checkpoint")),
                "{notices:?}"
            );
        }
        // Not read yet: nothing runs (no row is taken from the source), so no
        // checkpoint is taken and no row is out before the notice is shown.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let metrics = output.metrics.clone().expect("a continuous query's metrics");
        let taken = metrics.rows_in.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(taken, 0, "run {run}: the query ran before its result was read");
        assert_eq!(
            checkpoints(),
            before,
            "run {run}: a checkpoint before the first read"
        );
        // Read: the pipeline runs, and checkpoints as its barriers pass.
        let start = Instant::now();
        while checkpoints() == before && start.elapsed() < Duration::from_secs(20) {
            output.stream.try_next().await.expect("rows").expect("more rows");
        }
        assert!(checkpoints() > before, "run {run}: checkpoints once read");
        drop(output);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_file_read_once_that_changed_since_the_checkpoint_is_refused() {
    let (_tmp, dir) = temp();
    let file = dir.join("orders.csv");
    let mut csv = String::from("id,ts\n");
    for i in 0..10_000 {
        csv.push_str(&format!(
            "{i},2024-01-01 00:{:02}:{:02}.{:03}\n",
            i / 6000,
            (i / 100) % 60,
            (i % 100) * 10
        ));
    }
    append(&file, &csv);
    // The file is replayed in step with a generator held to 2,000 rows a
    // second (the source with the lowest watermark goes next), so a stop
    // after a second finds it part read.
    let sql = format!(
        "SET sluice.mode = 'continuous'; SET 'datafusion.execution.batch_size' = '500'; SET 'checkpoint.interval' = '100 ms'; \
         CREATE TABLE f (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'file', 'path' = '{}', 'format' = 'csv'); \
         CREATE TABLE g (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'rows' = '10000', 'rows-per-second' = '2000', \
           'fields.id.kind' = 'sequence', 'fields.ts.kind' = 'sequence', 'fields.ts.start' = '2024-01-01 00:00:00', 'fields.ts.step' = '10 ms'); \
         SELECT id FROM f UNION ALL SELECT id FROM g",
        file.display()
    );
    Run::until(&dir, &sql, 2000);
    let manifest = latest_manifest(&dir.join("ck"));
    let f = &manifest["sources"][0];
    assert_eq!(f["table"], "f", "{manifest}");
    assert_eq!(f["ended"], false, "stopped midway through the file: {manifest}");
    assert_eq!(f["read_once"][0]["size"], csv.len(), "{manifest}");
    // Written again with the same rows (a COPY run again: another inode, a
    // new time), it is the same file: it resumes.
    std::fs::remove_file(&file).expect("remove");
    append(&file, &csv);
    let (_, err) = Run::until(&dir, &sql, 1);
    assert!(err.contains("resumed from checkpoint"), "{err}");
    // Grown since: passing over the rows read by count could skip others.
    append(&file, "10000,2024-01-01 00:01:40\n");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(&dir)
        .args(["--format", "csv", "--checkpoint-dir", "ck", "-e", &sql])
        .stdin(Stdio::null())
        .output()
        .expect("the sluice binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let shown = file.display().to_string();
    assert!(
        err.contains("table 'f' reads its files once")
            && err.contains(&format!(
                "'{shown}' has {} bytes, {} then",
                csv.len() + 26,
                csv.len()
            ))
            && err.contains("delete the checkpoint directory"),
        "{err}"
    );
}

#[test]
fn a_checkpoint_without_byte_offsets_resumes_by_row_count_and_the_next_one_has_them() {
    let (_tmp, dir) = temp();
    let file = dir.join("events.ndjson");
    append(&file, &lines(0..50));
    Run::until(&dir, &follow_sql(&file), 50);
    // As a checkpoint written before sources kept byte offsets.
    let ck = dir.join("ck");
    for entry in std::fs::read_dir(&ck).expect("checkpoints") {
        let manifest = entry.expect("an entry").path().join("_manifest.json");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let mut value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            for source in value["sources"].as_array_mut().expect("sources") {
                source.as_object_mut().expect("a source").remove("files");
            }
            std::fs::write(&manifest, value.to_string()).expect("rewrite the manifest");
        }
    }
    append(&file, &lines(50..55));
    let (second, _) = Run::until(&dir, &follow_sql(&file), 5);
    assert_eq!(second, (50..55).collect::<Vec<_>>());
    let manifest = latest_manifest(&ck);
    let size = std::fs::metadata(&file).expect("the file").len();
    let files = &manifest["sources"][0]["files"][0];
    assert_eq!(
        (&files["offset"], &files["skip"]),
        (&size.into(), &0.into()),
        "{manifest}"
    );
    append(&file, &lines(55..57));
    let (third, _) = Run::until(&dir, &follow_sql(&file), 2);
    assert_eq!(third, [55, 56]);
}

/// Whether a checkpoint in `ck` holds a source that had taken `rows` rows.
fn checkpoint_with_rows(ck: &Path, rows: u64) -> bool {
    let Ok(entries) = std::fs::read_dir(ck) else {
        return false;
    };
    entries.filter_map(|e| e.ok()).any(|e| {
        std::fs::read_to_string(e.path().join("_manifest.json"))
            .is_ok_and(|m| m.contains(&format!("\"rows\": {rows},")))
    })
}

/// stdin cannot be read again, so a checkpointed query over it says what a
/// restart recovers (the state) and what it cannot (rows after the last
/// checkpoint); killed and run again on the rest of the input, it goes on
/// from its state with what stdin then gives, passing none of it over.
#[test]
fn stdin_is_checkpointed_with_a_notice_and_a_restart_goes_on_with_what_it_gives_then() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let sql = "CREATE TABLE t (v BIGINT) WITH ('connector' = 'stdin', 'format' = 'json'); \
               SET 'checkpoint.interval' = '100 ms'; SELECT count(*) AS n, sum(v) AS total FROM t";
    let values = |r: std::ops::Range<i64>| -> String { r.map(|v| format!("{{\"v\": {v}}}\n")).collect() };
    let sluice = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .current_dir(dir)
            .args(["--format", "json", "--checkpoint-dir", "ck", "-e", sql])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let mut first = sluice().spawn().expect("the sluice binary starts");
    let mut input = first.stdin.take().expect("stdin");
    input
        .write_all(values(1..101).as_bytes())
        .expect("the first rows");
    input.flush().expect("flushed");
    let start = Instant::now();
    while !checkpoint_with_rows(&dir.join("ck"), 100) && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().expect("kill -9");
    let first = first.wait_with_output().expect("the killed run");
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(
        err.contains("reads stdin, which cannot be read again") && err.contains("give them again"),
        "{err}"
    );
    assert!(
        checkpoint_with_rows(&dir.join("ck"), 100),
        "a checkpoint of the first 100 rows"
    );

    let mut second = sluice().spawn().expect("the sluice binary starts");
    let mut input = second.stdin.take().expect("stdin");
    input.write_all(values(101..151).as_bytes()).expect("the rest");
    drop(input);
    let second = second.wait_with_output().expect("the second run");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{err}");
    assert!(
        err.contains("resumed from checkpoint")
            && err.contains("t: stdin, from what it gives now (100 rows read before)"),
        "{err}"
    );
    let out = String::from_utf8_lossy(&second.stdout);
    let last = out.lines().last().expect("the running total");
    assert!(
        last.contains("\"n\":150") && last.contains("\"total\":11325"),
        "every row of both runs counted once: {out}"
    );
}

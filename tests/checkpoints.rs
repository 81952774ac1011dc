//! Checkpoints through the `sluice` binary: a continuous query killed with
//! `kill -9` at any moment and run again resumes from its last checkpoint,
//! and a file sink then holds exactly the batch result (no row lost, none
//! twice); a checkpoint of another query, or of a finished one, is refused
//! or reported; stdin cannot be checkpointed. The same through an `s3://`
//! checkpoint directory served by moto, which also stops answering.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{latest_checkpoint, wait_until};

/// 12,000 orders over 120 s of event time, 3,000 a second of wall-clock
/// time in batches of 500 (so a run takes 4 s and can be killed midway),
/// five keys.
const ORDERS: &str = "SET 'datafusion.execution.batch_size' = '500'; CREATE TABLE orders (id BIGINT, k BIGINT, amount BIGINT, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) \
     WITH ('connector' = 'datagen', 'rows' = '12000', 'rows-per-second' = '3000', \
     'fields.id.kind' = 'sequence', 'fields.k.min' = '1', 'fields.k.max' = '5', \
     'fields.amount.min' = '1', 'fields.amount.max' = '100', \
     'fields.ts.kind' = 'sequence', 'fields.ts.start' = '2024-01-01 00:00:00', 'fields.ts.step' = '10 ms');";

const PER_SECOND: &str = "SELECT window_start, k, count(*) AS n, sum(amount) AS total \
     FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND)) \
     GROUP BY window_start, window_end, k";

fn command(dir: &Path, args: &[&str], sql: &str) -> Command {
    common::sluice(dir, args, sql)
}

fn run(dir: &Path, args: &[&str], sql: &str) -> Output {
    command(dir, args, sql).output().expect("the sluice binary runs")
}

fn spawn(dir: &Path, args: &[&str], sql: &str) -> Child {
    command(dir, args, sql)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "sluice failed: {}", stderr(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Data rows of CSV text, sorted (header lines dropped).
fn sorted_rows(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("window_start"))
        .map(|l| l.replacen(' ', "T", 1))
        .collect();
    rows.sort();
    rows
}

/// The rows of every CSV file in `dir` (not in hidden staging directories).
fn written_rows(dir: &Path) -> Vec<String> {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("the output directory") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "csv") {
            text.push_str(&std::fs::read_to_string(&path).expect("an output file"));
            text.push('\n');
        }
    }
    sorted_rows(&text)
}

/// Wait until a checkpoint later than `after` is complete, or `limit`.
fn wait_for_checkpoint(dir: &Path, after: Option<u64>, limit: Duration) {
    wait_until(limit, || latest_checkpoint(dir) > after);
}

/// The arguments of a checkpointed continuous run.
const CHECKPOINTED: [&str; 4] = ["--mode", "continuous", "--checkpoint-dir", "ck"];

/// The per-second aggregate in batch, sorted.
fn batch_result(dir: &Path) -> Vec<String> {
    sorted_rows(&ok(&run(
        dir,
        &["--mode", "batch"],
        &format!("{ORDERS} {PER_SECOND}"),
    )))
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let path = tmp.path().to_path_buf();
    (tmp, path)
}

fn insert_sql() -> String {
    format!(
        "{ORDERS} CREATE TABLE out (window_start TIMESTAMP(3), k BIGINT, n BIGINT, total BIGINT) \
         WITH ('connector' = 'file', 'path' = 'out/', 'format' = 'csv'); \
         SET 'checkpoint.interval' = '200 ms'; INSERT INTO out {PER_SECOND}"
    )
}

#[test]
fn a_file_sink_killed_twice_and_resumed_holds_exactly_the_batch_result() {
    let (_tmp, dir) = temp();
    let want = sorted_rows(&ok(&run(
        &dir,
        &["--mode", "batch"],
        &format!("{ORDERS} {PER_SECOND}"),
    )));
    assert_eq!(want.len(), 600, "120 windows of five keys");
    let args = CHECKPOINTED;
    let ck = dir.join("ck");
    let mut resumed = 0;
    // Killed after its first checkpoint, then after a later one plus a
    // moment (mid-batch, mid-checkpoint: wherever it is).
    for (i, extra) in [Duration::ZERO, Duration::from_millis(130)]
        .into_iter()
        .enumerate()
    {
        let before = latest_checkpoint(&ck);
        // stderr to a file, read while the run goes on: the resumed notice is
        // printed as the query starts, which may be after its first
        // checkpoint, so the kill waits for both.
        let log = dir.join(format!("run-{i}.err"));
        let mut child = command(&dir, &args, &insert_sql())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("the sluice binary starts");
        wait_for_checkpoint(&ck, before, Duration::from_secs(20));
        let start = Instant::now();
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
        while i > 0
            && !read_log().contains("resumed from checkpoint")
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(extra);
        child.kill().expect("kill -9");
        child.wait().expect("the killed run");
        if i > 0 {
            let err = read_log();
            assert!(
                err.contains("resumed from checkpoint"),
                "the second run resumes: {err}"
            );
            resumed += 1;
        }
        assert!(
            latest_checkpoint(&ck).is_some(),
            "a checkpoint was written before the kill"
        );
    }
    let out = run(&dir, &args, &insert_sql());
    ok(&out);
    assert!(
        stderr(&out).contains("resumed from checkpoint"),
        "{}",
        stderr(&out)
    );
    assert_eq!(resumed, 1);
    common::assert_same_multiset(
        "the file sink against the batch result",
        &written_rows(&dir.join("out")),
        &want,
    );
    // Run once more: the query had finished, so nothing is written again.
    let again = run(&dir, &args, &insert_sql());
    ok(&again);
    assert!(stderr(&again).contains("had finished"), "{}", stderr(&again));
    common::assert_same_multiset(
        "the file sink against the batch result",
        &written_rows(&dir.join("out")),
        &want,
    );
}

#[test]
fn a_crash_before_or_after_a_manifest_neither_loses_nor_repeats_rows() {
    let (_tmp, dir) = temp();
    let want = batch_result(&dir);
    let args = CHECKPOINTED;
    // Staged, not in a complete checkpoint: its part must not show. In a
    // complete checkpoint whose renames did not happen: the restart does them.
    for point in ["before-manifest:3", "after-manifest:5"] {
        let out = command(&dir, &args, &insert_sql())
            .env("SLUICE_TEST_CRASH", point)
            .output()
            .expect("the sluice binary runs");
        assert!(!out.status.success(), "the run dies at {point}");
    }
    let out = run(&dir, &args, &insert_sql());
    ok(&out);
    assert!(
        stderr(&out).contains("resumed from checkpoint 5"),
        "{}",
        stderr(&out)
    );
    common::assert_same_multiset(
        "the file sink against the batch result",
        &written_rows(&dir.join("out")),
        &want,
    );
}

#[test]
fn sigterm_takes_a_last_checkpoint_that_the_next_run_resumes_from() {
    let (_tmp, dir) = temp();
    let want = batch_result(&dir);
    let ck = dir.join("ck");
    let child = spawn(&dir, &CHECKPOINTED, &insert_sql());
    wait_for_checkpoint(&ck, None, Duration::from_secs(20));
    let before = latest_checkpoint(&ck);
    common::signal(&child, "TERM");
    let out = child.wait_with_output().expect("the stopped run");
    assert!(stderr(&out).contains("stopped by SIGTERM"), "{}", stderr(&out));
    let last = latest_checkpoint(&ck);
    assert!(last > before, "the stop wrote a checkpoint of its own");
    let out = run(&dir, &CHECKPOINTED, &insert_sql());
    ok(&out);
    let last = last.expect("a checkpoint");
    assert!(
        stderr(&out).contains(&format!("resumed from checkpoint {last}")),
        "{}",
        stderr(&out)
    );
    common::assert_same_multiset(
        "the file sink against the batch result",
        &written_rows(&dir.join("out")),
        &want,
    );
}

#[test]
fn a_printed_query_resumed_after_a_kill_prints_at_least_every_row() {
    let (_tmp, dir) = temp();
    let want = batch_result(&dir);
    let args = CHECKPOINTED;
    let sql = format!("{ORDERS} SET 'checkpoint.interval' = '200 ms'; {PER_SECOND}");
    let mut child = spawn(&dir, &args, &sql);
    wait_for_checkpoint(&dir.join("ck"), None, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("kill -9");
    let first = child.wait_with_output().expect("the killed run");
    let second = run(&dir, &args, &sql);
    let mut got = sorted_rows(&String::from_utf8_lossy(&first.stdout));
    got.extend(sorted_rows(&ok(&second)));
    got.sort();
    got.dedup();
    common::assert_same_multiset("the file sink against the batch result", &got, &want);
    assert!(
        sorted_rows(&ok(&second)).len() < want.len(),
        "the second run resumed, not restarted"
    );
}

#[test]
fn a_checkpoint_of_another_query_is_refused_with_the_way_out() {
    let (_tmp, dir) = temp();
    let args = CHECKPOINTED;
    // SET 'checkpoint.dir' is the same as the flag.
    let first = run(
        &dir,
        &["--mode", "continuous"],
        &format!("{ORDERS} SET 'checkpoint.dir' = 'ck'; {PER_SECOND}"),
    );
    ok(&first);
    assert!(
        stderr(&first).contains("Last checkpoint: checkpoint"),
        "{}",
        stderr(&first)
    );
    let other = format!(
        "{ORDERS} SELECT k, count(*) FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY window_start, window_end, k"
    );
    let out = run(&dir, &args, &other);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("another query") && err.contains("delete 'ck'"),
        "{err}"
    );
}

#[test]
fn a_checkpoint_without_its_manifest_is_passed_over() {
    let (_tmp, dir) = temp();
    let args = CHECKPOINTED;
    let sql = format!("{ORDERS} SET 'checkpoint.interval' = '200 ms'; {PER_SECOND}");
    let mut child = spawn(&dir, &args, &sql);
    let ck = dir.join("ck");
    wait_for_checkpoint(&ck, None, Duration::from_secs(20));
    child.kill().expect("kill -9");
    child.wait().expect("the killed run");
    // A later checkpoint the crash left half written.
    let latest = latest_checkpoint(&ck).expect("a checkpoint");
    let broken = ck.join(format!("chk-{:06}", latest + 1));
    std::fs::create_dir_all(&broken).expect("a directory");
    std::fs::write(broken.join("node-0.arrow"), b"half").expect("a file");
    let out = run(&dir, &args, &sql);
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("checkpoint {} is not usable", latest + 1)),
        "{err}"
    );
    assert!(
        err.contains(&format!("resumed from checkpoint {latest}")),
        "{err}"
    );
}

/// The orders without a watermark: every window stays open to the end of
/// the input, so a checkpoint holds many panes, most unchanged since the one
/// before (what incremental checkpoints are for).
fn open_windows_sql() -> String {
    insert_sql().replace(", WATERMARK FOR ts AS ts - INTERVAL '2' SECOND", "")
}

/// The `reads_from` of every complete checkpoint in `ck`.
fn reads_from(ck: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(ck).into_iter().flatten().flatten() {
        if let Ok(text) = std::fs::read_to_string(entry.path().join("_manifest.json")) {
            let value: serde_json::Value = serde_json::from_str(&text).expect("a manifest is JSON");
            found.push(value["reads_from"].to_string());
        }
    }
    found
}

#[test]
fn incremental_checkpoints_of_open_windows_killed_and_resumed_hold_exactly_the_batch_result() {
    let (_tmp, dir) = temp();
    let want = batch_result(&dir);
    let sql = open_windows_sql();
    assert!(!sql.contains("WATERMARK"), "{sql}");
    let ck = dir.join("ck");
    // Killed twice, each time once a second checkpoint of the run is
    // complete: the later ones refer to the panes the earlier ones wrote.
    for _ in 0..2 {
        let mut child = spawn(&dir, &CHECKPOINTED, &sql);
        let first = latest_checkpoint(&ck);
        wait_for_checkpoint(&ck, first, Duration::from_secs(20));
        let second = latest_checkpoint(&ck);
        wait_for_checkpoint(&ck, second, Duration::from_secs(20));
        child.kill().expect("kill -9");
        child.wait().expect("the killed run");
        let kept = reads_from(&ck);
        assert!(
            kept.iter().any(|r| r != "[]"),
            "a checkpoint reads unchanged panes from an earlier one: {kept:?}"
        );
    }
    let out = run(&dir, &CHECKPOINTED, &sql);
    ok(&out);
    assert!(
        stderr(&out).contains("resumed from checkpoint"),
        "{}",
        stderr(&out)
    );
    common::assert_same_multiset(
        "the file sink against the batch result",
        &written_rows(&dir.join("out")),
        &want,
    );
}

#[test]
fn a_crash_while_a_checkpoint_is_written_in_the_background_resumes_from_the_one_before() {
    use std::os::unix::process::ExitStatusExt;
    let (_tmp, dir) = temp();
    let want = batch_result(&dir);
    let sql = open_windows_sql();
    // It dies once checkpoint 3's state files are written and the query has
    // read on past its cut, before its manifest: the query did not wait.
    let out = command(&dir, &CHECKPOINTED, &sql)
        .env("SLUICE_TEST_CRASH", "writing:3")
        .output()
        .expect("the sluice binary runs");
    assert_eq!(
        out.status.signal(),
        Some(6),
        "the run aborts at the crash point, while the query goes on ({:?}: exit 3 means it waited): {}",
        out.status,
        stderr(&out)
    );
    assert!(dir.join("ck/chk-000003").exists() && !dir.join("ck/chk-000003/_manifest.json").exists());
    let out = run(&dir, &CHECKPOINTED, &sql);
    ok(&out);
    assert!(
        stderr(&out).contains("checkpoint 3 is not usable")
            && stderr(&out).contains("resumed from checkpoint 2"),
        "{}",
        stderr(&out)
    );
    common::assert_same_multiset(
        "the file sink against the batch result",
        &written_rows(&dir.join("out")),
        &want,
    );
}

/// A checkpointed continuous run of `sql` with its checkpoints in `url`
/// (an `s3://` URL of the moto `server`).
fn s3_command(dir: &Path, server: &common::Server, url: &str, sql: &str) -> Command {
    let mut command = command(dir, &["--mode", "continuous", "--checkpoint-dir", url], sql);
    command.envs(common::s3_env(server)).stdout(Stdio::null());
    command
}

/// How many part files are visible in `out` (each made visible once its
/// checkpoint was complete).
fn parts(out: &Path) -> usize {
    std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "csv"))
        .count()
}

#[test]
fn a_query_checkpointed_to_s3_killed_and_resumed_writes_what_an_uninterrupted_run_does() {
    let (_tmp, dir) = temp();
    let server = common::moto(&dir, &["sluice-ck"], &[]);
    // The uninterrupted run, checkpointed to S3 as well, into another directory.
    let whole = insert_sql().replace("'path' = 'out/'", "'path' = 'whole/'");
    let out = s3_command(&dir, &server, "s3://sluice-ck/whole", &whole)
        .output()
        .expect("the sluice binary runs");
    ok(&out);
    let want = written_rows(&dir.join("whole"));
    common::assert_same_multiset(
        "the file sink against the batch result",
        &want,
        &batch_result(&dir),
    );
    // Killed with SIGKILL once a checkpoint of the run is complete (a part
    // it covers is visible), twice; the second run resumes.
    let sql = insert_sql();
    let url = "s3://sluice-ck/run";
    let out_dir = dir.join("out");
    for i in 0..2 {
        let log = dir.join(format!("s3-run-{i}.err"));
        let before = parts(&out_dir);
        let mut child = s3_command(&dir, &server, url, &sql)
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("the sluice binary starts");
        wait_until(Duration::from_secs(30), || parts(&out_dir) > before);
        child.kill().expect("kill -9");
        child.wait().expect("the killed run");
        let err = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(parts(&out_dir) > before, "run {i} completed a checkpoint: {err}");
        if i > 0 {
            assert!(
                err.contains(&format!("in '{url}', taken")) && err.contains("resumed from checkpoint"),
                "the second run resumes from S3: {err}"
            );
        }
    }
    let out = s3_command(&dir, &server, url, &sql)
        .output()
        .expect("the sluice binary runs");
    ok(&out);
    assert!(
        stderr(&out).contains("resumed from checkpoint") && stderr(&out).contains(url),
        "{}",
        stderr(&out)
    );
    common::assert_same_multiset(
        "the file sink against the batch result",
        &written_rows(&out_dir),
        &want,
    );
}

#[test]
fn a_missing_bucket_or_a_store_that_stops_answering_is_a_clear_error_that_loses_nothing() {
    let (_tmp, dir) = temp();
    let mut server = common::moto(&dir, &["sluice-ck"], &[]);
    let want = batch_result(&dir);
    let sql = insert_sql();
    let out_dir = dir.join("out");
    // A bucket that does not exist: refused before the query runs.
    let out = s3_command(&dir, &server, "s3://nobucket/ck", &sql)
        .output()
        .expect("the sluice binary runs");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot write to the checkpoint directory 's3://nobucket/ck'") && err.contains("bucket"),
        "{err}"
    );
    assert_eq!(parts(&out_dir), 0, "nothing written");
    // The store stops answering once a checkpoint is complete: the query
    // stops with an error naming the directory, and what it made visible
    // is whole (rows of the result, none twice).
    let mut child = s3_command(&dir, &server, "s3://sluice-ck/run", &sql)
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    wait_until(Duration::from_secs(30), || parts(&out_dir) > 0);
    server.stop();
    let start = Instant::now();
    while child.try_wait().expect("the run").is_none() && start.elapsed() < Duration::from_secs(240) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("the run");
    let err = stderr(&out);
    assert!(!out.status.success(), "the run fails: {err}");
    assert!(
        err.contains("a checkpoint failed") && err.contains("'s3://sluice-ck/run'"),
        "{err}"
    );
    let got = written_rows(&out_dir);
    assert!(!got.is_empty());
    let mut seen = std::collections::HashSet::new();
    for row in &got {
        assert!(want.contains(row), "a row not in the result: {row}");
        assert!(seen.insert(row), "a row twice: {row}");
    }
}

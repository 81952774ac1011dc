//! Bad rows in a stream through the `sluice` binary: by default the first one
//! ends the query with an error naming its line, after the rows before it;
//! with `'csv.ignore-parse-errors'` / `'json.ignore-parse-errors'` they are
//! skipped, counted on stderr with the first one named, and written to
//! `'format.bad-rows.path'` when given, on stdin and on followed files.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(dir: &Path, sql: &str, stdin: Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(dir)
        .args(["--format", "csv", "-e", sql])
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts")
}

fn run_stdin(dir: &Path, sql: &str, input: &str) -> (bool, String, String) {
    let mut child = spawn(dir, sql, Stdio::piped());
    let mut stdin = child.stdin.take().expect("stdin");
    // Sluice may stop reading early (an error): a broken pipe is fine.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let out = child.wait_with_output().expect("sluice ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn stdin_json_bad_rows_are_skipped_counted_and_written_aside() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sql = "CREATE TABLE s (n BIGINT) WITH ('connector' = 'stdin', 'format' = 'json', \
        'json.ignore-parse-errors' = 'true', 'format.bad-rows.path' = 'bad.ndjson'); SELECT n FROM s";
    let (ok, out, err) = run_stdin(dir.path(), sql, "{\"n\":1}\n{\"n\":\"x\"}\nnot json\n{\"n\":4}\n");
    assert!(ok, "{err}");
    assert_eq!(out, "n\n1\n4\n");
    assert!(
        err.contains(
            "2 bad rows were skipped in table 's' and written to bad.ndjson; the first: stdin line 2:"
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("bad.ndjson")).expect("written"),
        "{\"n\":\"x\"}\nnot json\n"
    );
}

#[test]
fn stdin_csv_bad_rows_fail_by_default_after_the_rows_before_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = |extra: &str| {
        format!(
            "CREATE TABLE s (n BIGINT) WITH ('connector' = 'stdin', 'format' = 'csv'{extra}); SELECT n FROM s"
        )
    };
    let input = "n\n1\nx,y\n3\n";
    let (ok, out, err) = run_stdin(dir.path(), &table(""), input);
    assert!(!ok);
    assert_eq!(out, "n\n1\n");
    assert!(err.contains("stdin line 3: incorrect number of fields"), "{err}");
    let (ok, out, err) = run_stdin(dir.path(), &table(", 'csv.ignore-parse-errors' = 'true'"), input);
    assert!(ok, "{err}");
    assert_eq!(out, "n\n1\n3\n");
    assert!(
        err.contains("1 bad row was skipped in table 's' and left out"),
        "{err}"
    );
    assert!(err.contains("the first: stdin line 3"), "{err}");
}

#[test]
fn a_followed_file_goes_on_past_a_bad_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, "{\"n\":1}\n{\"n\":oops}\n").expect("write");
    let sql = "CREATE TABLE s (n BIGINT) WITH ('connector' = 'file', 'path' = 'in.ndjson', 'format' = 'json', \
        'follow' = 'true', 'json.ignore-parse-errors' = 'true', 'format.bad-rows.path' = 'bad.ndjson'); \
        SELECT n FROM s";
    let mut child = spawn(dir.path(), sql, Stdio::null());
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.expect("a line")).is_err() {
                return;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(30)).expect("a row");
    assert_eq!(next(), "n");
    assert_eq!(next(), "1");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .expect("open");
    f.write_all(b"{\"n\":3}\n").expect("append");
    assert_eq!(next(), "3", "the query goes on after the bad row");
    let bad = dir.path().join("bad.ndjson");
    let start = Instant::now();
    while std::fs::read_to_string(&bad).unwrap_or_default() != "{\"n\":oops}\n" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the bad row is written aside"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("reaped");
}

#[test]
fn a_file_read_once_says_skipping_is_not_there_yet() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("a.csv"), "n\n1\n").expect("write");
    let (ok, _, err) = run_stdin(
        dir.path(),
        "CREATE TABLE t (n BIGINT) WITH ('connector' = 'file', 'path' = 'a.csv', 'csv.ignore-parse-errors' = 'true')",
        "",
    );
    assert!(!ok);
    assert!(err.contains("works on stdin and followed files"), "{err}");
}

#[test]
fn a_truncated_last_line_ends_the_query_after_the_windows_before_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sql = "CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'stdin', 'format' = 'json'); \
        SELECT window_start, count(*) AS n FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
        GROUP BY window_start, window_end";
    let input = "{\"id\":1,\"ts\":\"2024-01-01T00:00:01\"}\n{\"id\":2,\"ts\":\"2024-01-01T00:00:02\"}\n{\"id\":3,\"ts\":\"2024-01-01T00:00:0";
    let (ok, out, err) = run_stdin(dir.path(), sql, input);
    assert!(!ok, "the truncated line is an error");
    assert!(err.contains("stdin line 3"), "{err}");
    assert_eq!(
        out, "window_start,n\n2024-01-01T00:00:00,2\n",
        "the open window was emitted first"
    );
}

#[test]
fn a_line_without_its_newline_after_line_max_bytes_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sql = "CREATE TABLE t (a VARCHAR) WITH ('connector' = 'stdin', 'format' = 'json', 'line.max-bytes' = '1000'); \
        SELECT a FROM t";
    // Longer than one read (1 MiB): the line is refused while it has no newline yet.
    let long = format!("{{\"a\":\"x\"}}\n{{\"a\":\"{}\"}}\n", "y".repeat(3 << 20));
    let (ok, out, err) = run_stdin(dir.path(), sql, &long);
    assert!(!ok);
    assert_eq!(out, "a\nx\n");
    assert!(
        err.contains("stdin line 2: longer than 1000 bytes without a newline"),
        "{err}"
    );
    // Without the option, 8 MiB: a 3 MiB line is fine.
    let sql = "CREATE TABLE t (a VARCHAR) WITH ('connector' = 'stdin', 'format' = 'json'); SELECT length(a) AS n FROM t";
    let (ok, out, err) = run_stdin(dir.path(), sql, &long);
    assert!(ok, "{err}");
    assert_eq!(out, format!("n\n1\n{}\n", 3 << 20));
}

const LATE: &str = "{\"id\":1,\"ts\":\"2024-01-01T00:00:01\"}\n{\"id\":2,\"ts\":\"2024-01-01T00:00:09\"}\n\
    {\"id\":3,\"ts\":\"2024-01-01T00:00:02\"}\n";

fn late_query(late_path: &str) -> String {
    format!(
        "CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'stdin', \
         'format' = 'json', 'late.policy' = 'side-output', 'late.path' = '{late_path}'); \
         SELECT window_start, count(*) AS n FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
         GROUP BY window_start, window_end"
    )
}

#[test]
fn a_late_row_is_written_aside_whole_even_when_the_query_reads_none_of_its_columns() {
    let dir = tempfile::tempdir().expect("temp dir");
    // count(*) reads only the time column; the late row keeps its id too.
    let (ok, _, err) = run_stdin(dir.path(), &late_query("late.ndjson"), LATE);
    assert!(ok, "{err}");
    let late = std::fs::read_to_string(dir.path().join("late.ndjson")).expect("written");
    let row: serde_json::Value = serde_json::from_str(late.trim()).expect("one JSON row");
    assert_eq!(row["id"], 3, "{late}");
    assert_eq!(row["ts"], "2024-01-01T00:00:02", "{late}");
    assert_eq!(
        row["window_end"], "2024-01-01T00:00:05",
        "the window it missed: {late}"
    );
}

#[test]
fn the_late_row_file_is_appended_to_across_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    for run in 1..=2 {
        let (ok, _, err) = run_stdin(dir.path(), &late_query("late.ndjson"), LATE);
        assert!(ok, "{err}");
        let late = std::fs::read_to_string(dir.path().join("late.ndjson")).expect("written");
        assert_eq!(late.lines().count(), run, "run {run}: {late}");
    }
}

#[test]
fn a_late_row_file_in_a_missing_directory_is_refused_before_any_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ok, out, err) = run_stdin(dir.path(), &late_query("no/such/dir/late.ndjson"), LATE);
    assert!(!ok);
    assert_eq!(out, "", "no result before the error");
    assert!(
        err.contains(
            "option 'late.path' = 'no/such/dir/late.ndjson': directory 'no/such/dir' does not exist"
        ),
        "{err}"
    );
}

#[test]
fn sigint_ends_a_continuous_query_with_its_late_row_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sql = "CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'stdin', 'format' = 'json'); \
        SELECT window_start, count(*) AS n FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end";
    let mut child = spawn(dir.path(), sql, Stdio::piped());
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(LATE.as_bytes()).expect("write");
    stdin.flush().expect("flush");
    // The window [0 s, 5 s) closes at 9 s - 1 s; the row at 2 s is then late.
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    assert_eq!(lines.next().expect("a header").expect("text"), "window_start,n");
    assert_eq!(
        lines.next().expect("a row").expect("text"),
        "2024-01-01T00:00:00,1"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("sluice ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 late row was behind the watermark"), "{err}");
    assert!(err.contains("stopped by SIGINT"), "{err}");
    drop(stdin);
}

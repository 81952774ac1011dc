//! End-to-end tests of continuous queries through the `sluice` binary: rows
//! come out while the input is still open, `| head` ends a query cleanly,
//! late rows are counted (or written aside), and what the continuous executor
//! cannot run is refused with an error naming it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A table over stdin with a 1 s watermark delay, then `query`.
fn over_stdin(query: &str, options: &str) -> String {
    format!(
        "CREATE TABLE hits (path VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
         WITH ('connector' = 'stdin', 'format' = 'json'{options}); {query}"
    )
}

const PER_WINDOW: &str = "SELECT window_start, path, count(*) AS n \
    FROM TABLE(TUMBLE(TABLE hits, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
    GROUP BY window_start, window_end, path";

fn hit(path: &str, second: u32) -> String {
    format!(
        "{{\"path\":\"{path}\",\"ts\":\"2024-01-01 00:{:02}:{:02}\"}}\n",
        second / 60,
        second % 60
    )
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(ROOT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts")
}

/// Feed `input` to a run of `args` and close stdin; exit code, stdout, stderr.
fn run(args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let mut child = spawn(args);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write input");
    drop(stdin);
    let output = child.wait_with_output().expect("sluice finishes");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_window_is_printed_while_the_input_is_still_open() {
    let sql = over_stdin(PER_WINDOW, "");
    let mut child = spawn(&["--format", "json", "-e", &sql]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    // Two rows in [0 s, 10 s), then one at 12 s: the watermark (11 s) passes
    // the window's end, so its row must come out now, with the pipe open.
    for row in [hit("/a", 1), hit("/a", 4), hit("/b", 12)] {
        stdin.write_all(row.as_bytes()).expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the closed window's row arrives before the input ends");
    let row: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(row["path"], "/a");
    assert_eq!(row["n"], 2);
    assert_eq!(row["window_start"], "2024-01-01T00:00:00");
    // Nothing else yet: [10 s, 20 s) is still open.
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
    // End of input closes the last window.
    drop(stdin);
    let last = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the last window");
    assert!(last.contains("\"path\":\"/b\""), "{last}");
    assert!(child.wait().expect("exits").success());
}

#[test]
fn a_processing_time_window_closes_on_the_clock_while_the_input_is_quiet() {
    // 1 s windows over PROCTIME(): the rows' own times (year 2024) and
    // watermark play no part; the window holding the two rows must close
    // about a second after they come, with no more input and the pipe open.
    let query = "CREATE VIEW timed AS SELECT *, PROCTIME() AS p FROM hits; \
                 SELECT window_start, count(*) AS n \
                 FROM TABLE(TUMBLE(TABLE timed, DESCRIPTOR(p), INTERVAL '1' SECOND)) \
                 GROUP BY window_start, window_end";
    let mut child = spawn(&["--format", "json", "-e", &over_stdin(query, "")]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    let started = chrono::Utc::now();
    stdin
        .write_all(format!("{}{}", hit("/a", 1), hit("/a", 50)).as_bytes())
        .expect("write");
    stdin.flush().expect("flush");
    let line = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the processing-time window closes while the input stays open");
    let row: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(row["n"], 2, "{line}");
    // The window is one of the wall clock's, not of the rows' times.
    let start = row["window_start"].as_str().expect("a time");
    let start = chrono::NaiveDateTime::parse_from_str(start, "%Y-%m-%dT%H:%M:%S").expect("a timestamp");
    let lag = (start.and_utc() - started).num_seconds().abs();
    assert!(lag <= 5, "window {start} is not near the clock ({started})");
    // Ending the input ends the query; no window is left.
    drop(stdin);
    assert!(received.recv_timeout(Duration::from_secs(20)).is_err());
    assert!(child.wait().expect("exits").success());
}

#[test]
fn head_ends_an_unbounded_query_cleanly() {
    // The generator never ends; `head` closes the pipe after 3 lines.
    let sql = "CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, \
               date_time TIMESTAMP(3), extra VARCHAR) WITH ('connector' = 'nexmark'); \
               SELECT auction, price FROM bid WHERE price > 100";
    let started = Instant::now();
    let output = Command::new("bash")
        .current_dir(ROOT)
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' -e \"{sql}\" | head -3",
            env!("CARGO_BIN_EXE_sluice")
        ))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.starts_with("auction,price"), "{stdout}");
    assert!(
        output.status.success(),
        "sluice exits 0 when head closes the pipe: {:?} {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn an_over_aggregation_prints_each_row_once_the_watermark_passes_it_while_the_input_is_open() {
    let query = "SELECT path, ts, count(*) OVER (PARTITION BY path ORDER BY ts \
                 RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS recent FROM hits";
    let mut child = spawn(&["--format", "json", "-e", &over_stdin(query, "")]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    // The row at 13 s moves the watermark to 12 s: the rows at 1 s, 4 s and
    // 10 s are passed and come out; 13 s waits.
    for row in [hit("/a", 1), hit("/a", 4), hit("/a", 10), hit("/a", 13)] {
        stdin.write_all(row.as_bytes()).expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut counts = Vec::new();
    for _ in 0..3 {
        let line = received
            .recv_timeout(Duration::from_secs(20))
            .expect("a passed row arrives before the input ends");
        let row: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        counts.push(row["recent"].as_i64().expect("a count"));
    }
    // 10 s reaches back to 5 s: only itself.
    assert_eq!(counts, vec![1, 2, 1]);
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
    // A row behind the watermark is counted, not evaluated.
    stdin.write_all(hit("/a", 3).as_bytes()).expect("write");
    drop(stdin);
    let last = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the last row");
    assert!(last.contains("\"recent\":2"), "13 s reaches back to 10 s: {last}");
    let output = child.wait_with_output().expect("exits");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 late row was behind the watermark"), "{stderr}");
}

#[test]
fn a_top_n_updates_its_ranks_as_a_changelog_while_the_input_is_open() {
    let query = "SELECT path, ts, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY path ORDER BY ts DESC) AS rn \
                 FROM hits) WHERE rn = 1";
    let mut child = spawn(&["--format", "changelog", "-e", &over_stdin(query, "")]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    let mut next = |row: String| {
        stdin.write_all(row.as_bytes()).expect("write");
        stdin.flush().expect("flush");
        received
            .recv_timeout(Duration::from_secs(20))
            .expect("a change while the input is open")
    };
    let first = next(hit("/a", 1));
    assert!(first.contains("+I") && first.contains("00:00:01"), "{first}");
    // A later row takes rank 1: the old row is taken back, then the new one.
    let before = next(hit("/a", 5));
    assert!(before.contains("-U") && before.contains("00:00:01"), "{before}");
    let after = received.recv_timeout(Duration::from_secs(20)).expect("+U");
    assert!(after.contains("+U") && after.contains("00:00:05"), "{after}");
    drop(stdin);
    assert!(child.wait().expect("exits").success());
}

#[test]
fn late_rows_are_left_out_and_counted() {
    // /late at 2 s comes after the watermark reached 14 s: [0 s, 10 s) is closed.
    let input = [hit("/a", 1), hit("/a", 15), hit("/late", 2), hit("/a", 25)].concat();
    let (code, stdout, stderr) = run(&["-e", &over_stdin(PER_WINDOW, "")], &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("/late"), "{stdout}");
    assert_eq!(stdout.lines().count(), 4, "header and three windows: {stdout}");
    assert!(stderr.contains("1 late row was behind the watermark"), "{stderr}");
}

#[test]
fn late_rows_go_to_the_side_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("late.ndjson");
    let options = format!(
        ", 'late.policy' = 'side-output', 'late.path' = '{}'",
        path.display()
    );
    let input = [hit("/a", 1), hit("/a", 15), hit("/late", 2), hit("/a", 25)].concat();
    let (code, _, stderr) = run(&["-e", &over_stdin(PER_WINDOW, &options)], &input);
    assert_eq!(code, Some(0), "{stderr}");
    let mut late = String::new();
    std::fs::File::open(&path)
        .expect("the side output exists")
        .read_to_string(&mut late)
        .expect("readable");
    assert_eq!(late.lines().count(), 1, "{late}");
    assert!(late.contains("\"path\":\"/late\""), "{late}");
    assert!(stderr.contains("written to"), "{stderr}");
}

#[test]
fn out_of_order_rows_within_the_delay_are_not_late() {
    // 9.5 s arrives after 10.2 s, but the watermark (9.2 s) has not closed [0, 10).
    let input = "{\"path\":\"/a\",\"ts\":\"2024-01-01 00:00:01\"}\n\
                 {\"path\":\"/a\",\"ts\":\"2024-01-01 00:00:10.2\"}\n\
                 {\"path\":\"/a\",\"ts\":\"2024-01-01 00:00:09.5\"}\n";
    let (code, stdout, stderr) = run(&["--format", "json", "-e", &over_stdin(PER_WINDOW, "")], input);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        stdout.contains("\"window_start\":\"2024-01-01T00:00:00\",\"path\":\"/a\",\"n\":2"),
        "{stdout}"
    );
}

#[test]
fn changelog_format_marks_inserts() {
    let (code, stdout, stderr) = run(
        &["--format", "changelog", "-e", &over_stdin(PER_WINDOW, "")],
        &[hit("/a", 1), hit("/a", 15)].concat(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let first = stdout.lines().next().expect("a row");
    assert!(first.starts_with("{\"op\":\"+I\",\"window_start\""), "{stdout}");
}

#[test]
fn what_cannot_run_continuously_is_refused_with_the_reason() {
    let cases = [
        (
            "SELECT * FROM hits ORDER BY path",
            "ORDER BY without a window on an unbounded source",
        ),
        (
            "SELECT * FROM (SELECT path, count(*) AS n FROM hits GROUP BY path) ORDER BY n",
            "ORDER BY over an updating input (a GROUP BY without a window",
        ),
        // One clock drives a query's windows: the wall clock's watermark
        // says nothing of event time.
        (
            "CREATE VIEW timed AS SELECT *, PROCTIME() AS p FROM hits; \
             SELECT a.window_start, count(*) AS n \
             FROM TABLE(TUMBLE(TABLE timed, DESCRIPTOR(p), INTERVAL '1' SECOND)) AS a \
             JOIN TABLE(TUMBLE(TABLE hits, DESCRIPTOR(ts), INTERVAL '1' SECOND)) AS b ON a.path = b.path \
             GROUP BY a.window_start, a.window_end",
            "windows by processing time (timed.p, a PROCTIME() column) and by event time (hits.ts)",
        ),
        (
            "CREATE VIEW timed AS SELECT *, PROCTIME() AS p FROM hits; \
             SELECT path, ts, count(*) OVER (PARTITION BY path ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS c \
             FROM (SELECT w.path, w.ts FROM TABLE(TUMBLE(TABLE timed, DESCRIPTOR(p), INTERVAL '1' SECOND)) AS w)",
            "a window function (OVER) ordered by event time in a query that windows by a PROCTIME() column",
        ),
        (
            "SELECT * FROM hits AS a JOIN hits FOR SYSTEM_TIME AS OF a.ts AS b ON a.path = b.path",
            "FOR SYSTEM_TIME AS OF a.ts over table 'hits', a stream",
        ),
        // Windows over an updating input (each path's first hit, which moves
        // earlier): what is still refused.
        (
            "SELECT window_start, count(*) AS n FROM TABLE(CUMULATE(TABLE (SELECT path, min(ts) AS first FROM hits GROUP BY path),              DESCRIPTOR(first), INTERVAL '1' SECOND, INTERVAL '4' SECOND)) GROUP BY window_start",
            "a CUMULATE aggregate over an updating input must GROUP BY window_end",
        ),
        (
            "SELECT window_start, path, count(*) AS n FROM TABLE(SESSION(TABLE (SELECT path, min(ts) AS first FROM hits GROUP BY path)              PARTITION BY path, DESCRIPTOR(first), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, path EMIT CHANGES",
            "EMIT CHANGES over SESSION windows is not supported yet",
        ),
        (
            "SELECT a.path, b.ts FROM (SELECT path, min(ts) AS first FROM hits GROUP BY path) a JOIN hits b              ON a.path = b.path AND b.ts BETWEEN a.first AND a.first + INTERVAL '1' SECOND",
            "over an updating input (a GROUP BY without a window",
        ),
    ];
    for (query, message) in cases {
        let (code, _, stderr) = run(&["-e", &over_stdin(query, "")], "");
        assert_eq!(code, Some(1), "{query}: {stderr}");
        assert!(stderr.contains(message), "{query}: {stderr}");
    }
    // Without EMIT CHANGES that session runs: a's first hit moves from 2 s
    // to 1 s, and its session with it (DataFusion drops window_end from the
    // GROUP BY here, since path names a row of the GROUP BY below).
    let session = "SET datafusion.execution.batch_size = 1;                    SELECT window_start, path, count(*) AS n FROM TABLE(SESSION(TABLE (SELECT path, min(ts) AS first FROM hits GROUP BY path)                    PARTITION BY path, DESCRIPTOR(first), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, path";
    let input = [hit("/a", 2), hit("/a", 1), hit("/b", 9)].concat();
    let (code, stdout, stderr) = run(&["--format", "csv", "-e", &over_stdin(session, "")], &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout, "window_start,path,n\n2024-01-01T00:00:01,/a,1\n2024-01-01T00:00:09,/b,1\n",
        "{stderr}"
    );
    // A window over a table with no watermark never closes: asked to emit
    // on close, it is refused; otherwise it updates, its bounds plain keys.
    let sql = "CREATE TABLE t (ts TIMESTAMP(3)) WITH ('connector' = 'stdin', 'format' = 'json'); \
               SELECT window_start, count(*) AS n FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '2' SECOND)) \
               GROUP BY window_start, window_end";
    let (code, _, stderr) = run(&["-e", &format!("{sql} EMIT ON WINDOW CLOSE")], "");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("has no watermark") && stderr.contains("WATERMARK FOR"),
        "{stderr}"
    );
    let input = "{\"ts\":\"2024-01-01 00:00:01\"}\n";
    let (code, stdout, stderr) = run(&["--format", "changelog", "-e", sql], input);
    assert_eq!(code, Some(0), "{stderr}");
    let mut rows: Vec<&str> = stdout.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            r#"{"op":"+I","window_start":"2024-01-01T00:00:00","n":1}"#,
            r#"{"op":"+I","window_start":"2024-01-01T00:00:01","n":1}"#,
        ]
    );
}

#[test]
fn explain_shows_the_continuous_operators() {
    let (code, stdout, stderr) = run(&["-e", &over_stdin(&format!("EXPLAIN {PER_WINDOW}"), "")], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("continuous: unbounded source hits (stdin json)"),
        "{stdout}"
    );
    assert!(stdout.contains("WindowAggregate"), "{stdout}");
    // EXPLAIN ANALYZE would run an endless query: refused, pointing at EXPLAIN.
    let (code, _, stderr) = run(
        &["-e", &over_stdin(&format!("EXPLAIN ANALYZE {PER_WINDOW}"), "")],
        "",
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("use EXPLAIN to see its operators"), "{stderr}");
}

#[test]
fn mode_continuous_replays_a_file_with_the_batch_result() {
    let query = "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, \
                 date_time TIMESTAMP(3), WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND) \
                 WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'json'); \
                 SELECT window_start, count(*) AS n, max(price) AS top \
                 FROM TABLE(HOP(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND, INTERVAL '1' MINUTE)) \
                 GROUP BY window_start, window_end ORDER BY window_start";
    let (_, batch, _) = run(&["-e", query], "");
    let (code, continuous, stderr) = run(&["--mode", "continuous", "-e", query], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(batch.lines().count() > 10, "{batch}");
    assert_eq!(continuous, batch);
    let (code, _, stderr) = run(&["--mode", "batch", "-e", &over_stdin(PER_WINDOW, "")], "");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("sluice.mode is batch"), "{stderr}");
}

#[test]
fn insert_into_a_table_streams_a_continuous_query() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sql = format!(
        "CREATE TABLE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP(3), \
           WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND) \
           WITH ('connector' = 'nexmark', 'events' = '50000'); \
         CREATE VIEW cheap AS SELECT * FROM bid WHERE price < 1000000; \
         CREATE EXTERNAL TABLE out (window_start TIMESTAMP, n BIGINT) STORED AS CSV LOCATION '{}/'; \
         INSERT INTO out SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE cheap, DESCRIPTOR(date_time), INTERVAL '1' SECOND)) \
           GROUP BY window_start, window_end; \
         SELECT sum(n) FROM out; \
         SELECT count(*) FROM bid WHERE price < 1000000;",
        dir.path().display()
    );
    // DDL runs as ever under --mode continuous; the INSERT and SELECTs stream.
    let (code, stdout, stderr) = run(&["--mode", "continuous", "-e", &sql], "");
    assert_eq!(code, Some(0), "{stderr}");
    // Each SELECT's sum is an updating result: its last `+I`/`+U` row holds
    // the final value.
    let mut numbers: Vec<&str> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("op,") {
            numbers.push("");
        } else if let (Some(last), Some(value)) = (
            numbers.last_mut(),
            line.strip_prefix("+I,").or_else(|| line.strip_prefix("+U,")),
        ) {
            *last = value;
        }
    }
    assert_eq!(numbers.len(), 2, "{stdout}");
    assert!(numbers[0].parse::<u64>().is_ok_and(|n| n > 0), "{stdout}");
    assert_eq!(
        numbers[0], numbers[1],
        "every bid counted once in the windows written: {stdout}"
    );
}

#[test]
fn a_stream_joins_a_bounded_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = dir.path().join("pages.csv");
    std::fs::write(&pages, "path,title\n/a,Home\n/b,About\n").expect("write pages");
    let sql = over_stdin(
        &format!(
            "CREATE TABLE pages (path VARCHAR, title VARCHAR) \
               WITH ('connector' = 'file', 'path' = '{}', 'format' = 'csv'); \
             SELECT window_start, p.title, count(*) AS n \
             FROM TABLE(TUMBLE(TABLE hits, DESCRIPTOR(ts), INTERVAL '10' SECOND)) h \
             LEFT JOIN pages p ON h.path = p.path \
             GROUP BY window_start, window_end, p.title",
            pages.display()
        ),
        "",
    );
    let input = [
        hit("/a", 1),
        hit("/b", 2),
        hit("/a", 3),
        hit("/zzz", 4),
        hit("/a", 15),
    ]
    .concat();
    let (code, stdout, stderr) = run(&["--format", "json", "-e", &sql], &input);
    assert_eq!(code, Some(0), "{stderr}");
    let mut rows: Vec<&str> = stdout.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            r#"{"window_start":"2024-01-01T00:00:00","title":"About","n":1}"#,
            r#"{"window_start":"2024-01-01T00:00:00","title":"Home","n":2}"#,
            r#"{"window_start":"2024-01-01T00:00:00","title":null,"n":1}"#,
            r#"{"window_start":"2024-01-01T00:00:10","title":"Home","n":1}"#,
        ]
    );
}

#[test]
fn a_followed_directory_streams_appended_lines_and_new_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("a.ndjson"), hit("/first", 1)).expect("first file");
    let sql = format!(
        "CREATE TABLE hits (path VARCHAR, ts TIMESTAMP(3)) \
           WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json', 'follow' = 'true'); \
         SELECT path FROM hits LIMIT 3",
        dir.path().display()
    );
    let child = spawn(&["-e", &sql]);
    std::thread::sleep(Duration::from_millis(500));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("a.ndjson"))
        .expect("open to append");
    file.write_all(hit("/appended", 2).as_bytes()).expect("append");
    drop(file);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(dir.path().join("b.ndjson"), hit("/new-file", 3)).expect("second file");
    let output = child.wait_with_output().expect("the query ends at its LIMIT");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, "path\n/first\n/appended\n/new-file\n");
}

#[test]
fn a_hop_row_late_for_one_window_still_counts_in_the_open_ones() {
    // Slide 5 s, size 10 s. After 12 s the watermark is 11 s: [-5, 5) and
    // [0, 10) are closed. A row at 7 s missed [0, 10) but [5, 15) is open.
    let query = "SELECT window_start, count(*) AS n \
        FROM TABLE(HOP(TABLE hits, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)) \
        GROUP BY window_start, window_end";
    let input = [hit("/a", 1), hit("/a", 12), hit("/late", 7)].concat();
    let (code, stdout, stderr) = run(&["-e", &over_stdin(query, "")], &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "window_start,n\n\
         2023-12-31T23:59:55,1\n\
         2024-01-01T00:00:00,1\n\
         2024-01-01T00:00:05,2\n\
         2024-01-01T00:00:10,1\n"
    );
    assert!(stderr.contains("1 late row was behind the watermark"), "{stderr}");
}

#[test]
fn a_stdin_table_is_refused_when_stdin_holds_the_script() {
    let (code, _, stderr) = run(
        &[],
        "CREATE TABLE t (a INT) WITH ('connector' = 'stdin', 'format' = 'json');\nSELECT * FROM t;\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("<stdin>:1:30: standard input holds this SQL script") && stderr.contains("-e"),
        "{stderr}"
    );
}

#[test]
fn session_rows_behind_a_closed_session_are_late() {
    // Gap 5 s: /a at 1 s is a session [1 s, 6 s); at 20 s the watermark (19 s)
    // closes it, so a row at 3 s comes too late to join it.
    let query = "SELECT path, window_start, window_end, count(*) AS n \
        FROM TABLE(SESSION(TABLE hits PARTITION BY path, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
        GROUP BY path, window_start, window_end";
    let input = [hit("/a", 1), hit("/a", 20), hit("/a", 3), hit("/a", 22)].concat();
    let (code, stdout, stderr) = run(&["-e", &over_stdin(query, "")], &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "path,window_start,window_end,n\n\
         /a,2024-01-01T00:00:01,2024-01-01T00:00:06,1\n\
         /a,2024-01-01T00:00:20,2024-01-01T00:00:27,2\n"
    );
    assert!(stderr.contains("1 late row was behind the watermark"), "{stderr}");
}

#[test]
fn an_insert_reports_its_late_rows_too() {
    let sql = over_stdin(
        &format!(
            "CREATE TABLE sink (window_start TIMESTAMP(3), path VARCHAR, n BIGINT) WITH ('connector' = 'blackhole'); \
             INSERT INTO sink {PER_WINDOW}"
        ),
        "",
    );
    let input = [hit("/a", 1), hit("/a", 15), hit("/late", 2), hit("/a", 25)].concat();
    let (code, _, stderr) = run(&["-e", &sql], &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("1 late row was behind the watermark"), "{stderr}");
}

#[test]
fn explain_reads_no_lookup_table() {
    // The table's second row is not a number: reading it fails, so EXPLAIN
    // succeeding shows that planning read nothing.
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = dir.path().join("pages.csv");
    std::fs::write(&pages, "id,title\n1,Home\nnot-a-number,About\n").expect("write pages");
    let query = format!(
        "CREATE TABLE pages (id BIGINT, title VARCHAR) \
           WITH ('connector' = 'file', 'path' = '{}', 'format' = 'csv'); \
         {{}} SELECT h.path, p.title FROM hits h JOIN pages p ON length(h.path) = p.id",
        pages.display()
    );
    let explain = over_stdin(&query.replace("{}", "EXPLAIN"), "");
    let (code, stdout, stderr) = run(&["-e", &explain], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("LookupJoin"), "{stdout}");
    let select = over_stdin(&query.replace("{}", ""), "");
    let (code, _, stderr) = run(&["-e", &select], &hit("/", 1));
    assert_eq!(
        code,
        Some(1),
        "reading the table fails when the query runs: {stderr}"
    );
}

/// Lines of a child's stdout, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

/// A 10 s TUMBLE count over stdin's `hits` and a followed file `more`
/// (`options` added to its WITH), whose one row is at 2 s: the file's
/// directory, its path, and the script.
fn union_with_followed_file(options: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("more.ndjson");
    std::fs::write(&file, hit("/file", 2)).expect("first line");
    let sql = over_stdin(
        &format!(
            "CREATE TABLE more (path VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
               WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json', 'follow' = 'true'{options}); \
             SELECT window_start, count(*) AS n \
             FROM TABLE(TUMBLE(TABLE (SELECT * FROM hits UNION ALL SELECT * FROM more), DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
             GROUP BY window_start, window_end",
            file.display()
        ),
        "",
    );
    (dir, file, sql)
}

#[test]
fn a_window_over_a_union_of_stdin_and_a_followed_file_closes_when_both_pass_it() {
    let (_dir, file, sql) = union_with_followed_file("");
    let mut child = spawn(&["--format", "json", "-e", &sql]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    // stdin passes the window's end (watermark 11 s); the file does not yet.
    for row in [hit("/a", 1), hit("/a", 12)] {
        stdin.write_all(row.as_bytes()).expect("write");
        stdin.flush().expect("flush");
    }
    assert!(
        received.recv_timeout(Duration::from_millis(800)).is_err(),
        "the window waits for the followed file's watermark"
    );
    let mut appending = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open to append");
    appending.write_all(hit("/file", 13).as_bytes()).expect("append");
    drop(appending);
    let line = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the window closes once both inputs passed it, with both still open");
    let row: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(row["window_start"], "2024-01-01T00:00:00");
    assert_eq!(row["n"], 2, "one row of each input: {line}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn an_idle_input_stops_holding_back_the_window_of_a_union() {
    let (_dir, _, bad) = union_with_followed_file(", 'scan.watermark.idle-timeout' = 'soon'");
    let (code, _, stderr) = run(&["-e", &bad], "");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("option 'scan.watermark.idle-timeout' = 'soon' is not a duration"),
        "{stderr}"
    );
    let (_dir, file, sql) = union_with_followed_file(", 'scan.watermark.idle-timeout' = '300 ms'");
    let (tables, query) = sql.rsplit_once("; ").expect("statements");
    let explain = format!("{tables}; EXPLAIN {query}");
    let (code, stdout, stderr) = run(&["-e", &explain], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Source: more (idle after 300ms"), "{stdout}");
    let mut child = spawn(&["--format", "json", "-e", &sql]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    // The file sent its row at once and then nothing: once it has been quiet
    // for its timeout, stdin's watermark (11 s) alone closes [0 s, 10 s),
    // with the file still open and still at 1 s.
    stdin.write_all(hit("/a", 1).as_bytes()).expect("write");
    stdin.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(1000));
    stdin.write_all(hit("/a", 12).as_bytes()).expect("write");
    stdin.flush().expect("flush");
    let line = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the window closes while the followed file is idle");
    let row: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(row["window_start"], "2024-01-01T00:00:00");
    assert_eq!(row["n"], 2, "one row of each input: {line}");
    // Back from idleness, the file's row for the closed window is late:
    // left out, not added to a window already sent. Once the file is idle
    // again, stdin's row at 25 s closes [10 s, 20 s) alone.
    let mut appending = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open to append");
    appending.write_all(hit("/file", 5).as_bytes()).expect("append");
    drop(appending);
    std::thread::sleep(Duration::from_millis(1000));
    stdin.write_all(hit("/a", 25).as_bytes()).expect("write");
    stdin.flush().expect("flush");
    let line = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the next window closes");
    let row: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(row["window_start"], "2024-01-01T00:00:10", "{line}");
    assert_eq!(row["n"], 1, "{line}");
    assert!(
        received.recv_timeout(Duration::from_millis(500)).is_err(),
        "no second row for [0 s, 10 s)"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_union_of_a_stream_and_a_table_backfills_then_streams() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = dir.path().join("old.csv");
    std::fs::write(
        &old,
        "path,ts\n/old,2024-01-01 00:00:01\n/old,2024-01-01 00:00:02\n",
    )
    .expect("write");
    let sql = over_stdin(
        &format!(
            "CREATE TABLE old (path VARCHAR, ts TIMESTAMP(3)) \
               WITH ('connector' = 'file', 'path' = '{}', 'format' = 'csv'); \
             SELECT window_start, path, count(*) AS n \
             FROM TABLE(TUMBLE(TABLE (SELECT * FROM old UNION ALL SELECT * FROM hits), DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
             GROUP BY window_start, window_end, path",
            old.display()
        ),
        "",
    );
    let (code, stdout, stderr) = run(&["-e", &sql], &[hit("/new", 3), hit("/new", 25)].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let mut rows: Vec<&str> = stdout.lines().skip(1).collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            "2024-01-01T00:00:00,/new,1",
            "2024-01-01T00:00:00,/old,2",
            "2024-01-01T00:00:20,/new,1"
        ]
    );
    // Columns that differ in number are refused, naming the union.
    let sql = over_stdin("SELECT path FROM hits UNION ALL SELECT path, ts FROM hits", "");
    let (code, _, stderr) = run(&["-e", &sql], "");
    assert_eq!(code, Some(1));
    assert!(stderr.to_lowercase().contains("union"), "{stderr}");
}

#[test]
fn stdin_joined_with_a_followed_file_emits_each_pair_while_both_are_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("titles.ndjson");
    std::fs::write(
        &file,
        "{\"path\":\"/a\",\"title\":\"Home\",\"ts\":\"2024-01-01 00:00:00\"}\n",
    )
    .expect("first line");
    let sql = over_stdin(
        &format!(
            "CREATE TABLE titles (path VARCHAR, title VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
               WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json', 'follow' = 'true'); \
             SET 'state.ttl' = '1 h'; \
             SELECT h.path, t.title FROM hits h JOIN titles t ON h.path = t.path",
            file.display()
        ),
        "",
    );
    let mut child = spawn(&["--format", "json", "-e", &sql]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    stdin.write_all(hit("/a", 1).as_bytes()).expect("write");
    stdin.flush().expect("flush");
    let line = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the pair of a stdin row and the file's row, with both open");
    assert_eq!(line, r#"{"path":"/a","title":"Home"}"#);
    // A row on stdin first, its match appended to the followed file later.
    stdin.write_all(hit("/b", 2).as_bytes()).expect("write");
    stdin.flush().expect("flush");
    assert!(
        received.recv_timeout(Duration::from_millis(500)).is_err(),
        "no match for /b yet"
    );
    let mut appending = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open to append");
    appending
        .write_all(b"{\"path\":\"/b\",\"title\":\"About\",\"ts\":\"2024-01-01 00:00:03\"}\n")
        .expect("append");
    drop(appending);
    let line = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the pair once the file's row comes");
    assert_eq!(line, r#"{"path":"/b","title":"About"}"#);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_join_of_two_streams_with_no_bound_warns_and_an_outer_one_is_a_changelog() {
    let sql = over_stdin(
        "CREATE TABLE more (path VARCHAR, n BIGINT) \
           WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'json', 'follow' = 'true'); \
         EXPLAIN SELECT h.path, m.n FROM hits h LEFT JOIN more m ON h.path = m.path",
        "",
    );
    let (code, stdout, stderr) = run(&["-e", &sql], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("StreamJoin"), "{stdout}");
    assert!(stdout.contains("grows without bound"), "EXPLAIN warns: {stdout}");
    // Two streams, outer: a padded row, then its retraction and the pair.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("titles.ndjson");
    std::fs::write(&file, "{\"path\":\"/b\",\"title\":\"About\"}\n").expect("write");
    let sql = over_stdin(
        &format!(
            "CREATE TABLE later (path VARCHAR, title VARCHAR) \
               WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json', 'follow' = 'true'); \
             SELECT h.path, l.title FROM hits h LEFT JOIN later l ON h.path = l.path",
            file.display()
        ),
        "",
    );
    let mut child = spawn(&["--format", "changelog", "-e", &sql]);
    let mut stdin = child.stdin.take().expect("stdin");
    let stderr = child.stderr.take().expect("stderr");
    let received = lines_of(&mut child);
    stdin.write_all(hit("/a", 1).as_bytes()).expect("write");
    stdin.flush().expect("flush");
    let padded = received
        .recv_timeout(Duration::from_secs(20))
        .expect("a padded row");
    assert!(padded.contains("+I") && padded.contains("/a"), "{padded}");
    let mut appending = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open to append");
    appending
        .write_all(b"{\"path\":\"/a\",\"title\":\"Home\"}\n")
        .expect("append");
    drop(appending);
    let mut changes = Vec::new();
    while changes.len() < 2 {
        changes.push(
            received
                .recv_timeout(Duration::from_secs(20))
                .expect("the retraction and the pair"),
        );
    }
    assert!(
        changes[0].contains("-D") && changes[0].contains("/a"),
        "{changes:?}"
    );
    assert!(
        changes[1].contains("+I") && changes[1].contains("Home"),
        "{changes:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
    let mut warning = String::new();
    let _ = BufReader::new(stderr).read_line(&mut warning);
    assert!(warning.contains("grows without bound"), "stderr warns: {warning}");
}

#[test]
fn joins_of_two_streams_refuse_bad_input_with_the_reason() {
    // An interval join needs both sides' watermarks to free its state.
    let sql = over_stdin(
        "CREATE TABLE clicks (path VARCHAR, ts TIMESTAMP(3)) \
           WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'json', 'follow' = 'true'); \
         SELECT h.path FROM hits h JOIN clicks c ON h.path = c.path \
           AND h.ts BETWEEN c.ts - INTERVAL '1' MINUTE AND c.ts",
        "",
    );
    let (code, _, stderr) = run(&["-e", &sql], "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("'clicks' has no watermark") && stderr.contains("WATERMARK FOR"),
        "{stderr}"
    );
    // Keys of types that cannot be compared.
    let sql = over_stdin(
        "CREATE TABLE clicks (flag BOOLEAN, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) \
           WITH ('connector' = 'stdin', 'format' = 'json'); \
         SELECT h.path FROM hits h JOIN clicks c ON length(h.path) = c.flag",
        "",
    );
    let (code, _, stderr) = run(&["-e", &sql], "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("= Boolean"), "names both types: {stderr}");
}

#[test]
fn event_times_outside_the_nanosecond_range_are_refused_in_both_modes() {
    // Window bounds are nanoseconds since 1970: year 9999 cannot be one. Both
    // executors refuse the row by value and column rather than putting it in a
    // NULL or 1970 window, or calling it late.
    let input = "{\"path\":\"/a\",\"ts\":\"2024-01-01T00:00:01\"}\n{\"path\":\"/a\",\"ts\":\"9999-12-31T23:59:59.999\"}\n";
    let windows = [
        "TUMBLE(TABLE hits, DESCRIPTOR(ts), INTERVAL '5' SECOND)",
        "CUMULATE(TABLE hits, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '5' SECOND)",
        "SESSION(TABLE hits PARTITION BY path, DESCRIPTOR(ts), INTERVAL '5' SECOND)",
    ];
    for window in windows {
        let query = format!(
            "SELECT path, window_start, window_end, count(*) AS n FROM TABLE({window}) GROUP BY path, window_start, window_end"
        );
        for options in ["", ", 'bounded' = 'true'"] {
            let (code, stdout, stderr) = run(&["-e", &over_stdin(&query, options)], input);
            assert_ne!(code, Some(0), "{window}{options}: {stdout}");
            assert!(
                stderr.contains("event time 9999-12-31T23:59:59.999 in column 'ts' is outside the range"),
                "{window}{options}: {stderr}"
            );
        }
    }
    // In range, but its 5 s window would end past 2262-04-11T23:47:16.854775807:
    // batch computed that window, continuous could not.
    let input = "{\"path\":\"/a\",\"ts\":\"2262-04-11T23:47:16\"}\n";
    let query = format!(
        "SELECT window_start, count(*) AS n FROM TABLE({}) GROUP BY window_start, window_end",
        windows[0]
    );
    for options in ["", ", 'bounded' = 'true'"] {
        let (code, stdout, stderr) = run(&["-e", &over_stdin(&query, options)], input);
        assert_ne!(code, Some(0), "{options}: {stdout}");
        assert!(
            stderr.contains("event time 2262-04-11T23:47:16 in column 'ts' is outside the range")
                && stderr.contains("less the window's 5s at either end"),
            "{options}: {stderr}"
        );
    }
}

/// The changelog lines of `--format changelog` applied in order: the rows
/// (without `op`) left at the end; a `-U`/`-D` of a row not there fails.
fn fold_changelog(lines: &[String]) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    for line in lines {
        let mut row: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).expect("a JSON line");
        let op = row.remove("op").expect("an op");
        let text = serde_json::Value::Object(row).to_string();
        match op.as_str() {
            Some("+I" | "+U") => rows.push(text),
            Some("-U" | "-D") => {
                let at = rows.iter().position(|r| *r == text);
                rows.swap_remove(at.unwrap_or_else(|| panic!("{op} of a row never inserted: {text}")));
            }
            other => panic!("unknown op {other:?}"),
        }
    }
    rows.sort();
    rows
}

#[test]
fn the_ecommerce_pipeline_updates_totals_while_stdin_is_open_and_ends_at_the_batch_result() {
    let orders = std::fs::read_to_string(format!("{ROOT}/testdata/orders.csv")).expect("orders");
    let mut lines = orders.lines();
    let header = lines.next().expect("a header");
    let mut child = spawn(&["--format", "changelog", "queries/ecommerce.sql"]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    // A first order: its country's total comes out with the pipe open.
    let first = lines.next().expect("an order");
    stdin
        .write_all(format!("{header}\n{first}\n").as_bytes())
        .expect("write");
    stdin.flush().expect("flush");
    let line = received
        .recv_timeout(Duration::from_secs(20))
        .expect("a total arrives before the input ends");
    assert!(line.starts_with("{\"op\":\"+I\",\"country\":"), "{line}");
    // The same country again: its total moves (-U then +U), still open.
    let again: Vec<&str> = orders
        .lines()
        .skip(2)
        .filter(|l| l.split(',').nth(1) == first.split(',').nth(1))
        .take(1)
        .collect();
    if let [order] = again.as_slice() {
        stdin.write_all(format!("{order}\n").as_bytes()).expect("write");
        stdin.flush().expect("flush");
        let before = received.recv_timeout(Duration::from_secs(20)).expect("-U");
        let after = received.recv_timeout(Duration::from_secs(20)).expect("+U");
        assert!(before.starts_with("{\"op\":\"-U\""), "{before}");
        assert!(after.starts_with("{\"op\":\"+U\""), "{after}");
    }
    drop(stdin);
    assert!(child.wait().expect("exits").success());

    // The whole file through the pipeline, folded, is batch's answer over it.
    let (code, stdout, stderr) = run(&["--format", "changelog", "queries/ecommerce.sql"], &orders);
    assert_eq!(code, Some(0), "{stderr}");
    let changes: Vec<String> = stdout.lines().map(str::to_string).collect();
    assert!(
        changes.iter().any(|l| l.contains("\"op\":\"-U\"")),
        "totals were updated"
    );
    let pipeline = std::fs::read_to_string(format!("{ROOT}/queries/ecommerce.sql")).expect("pipeline");
    let batch_sql = pipeline.replace(
        "WITH ('connector' = 'stdin', 'format' = 'csv')",
        "WITH ('connector' = 'file', 'path' = 'testdata/orders.csv', 'format' = 'csv')",
    );
    assert_ne!(batch_sql, pipeline, "the orders table reads stdin");
    let dir = tempfile::tempdir().expect("temp dir");
    let batch_file = dir.path().join("ecommerce_batch.sql");
    std::fs::write(&batch_file, batch_sql).expect("write the batch query");
    let (code, batch, stderr) = run(&["--format", "json", &batch_file.display().to_string()], "");
    assert_eq!(code, Some(0), "{stderr}");
    let mut expected: Vec<String> = batch.lines().map(str::to_string).collect();
    expected.sort();
    assert_eq!(fold_changelog(&changes), expected);
}

#[test]
fn an_updating_query_into_a_file_table_writes_its_changelog_into_a_blackhole_counts_it_and_elsewhere_is_refused()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = "CREATE TABLE s (k VARCHAR, v BIGINT) WITH ('connector' = 'stdin', 'format' = 'json');";
    let input = "{\"k\":\"a\",\"v\":1}\n{\"k\":\"b\",\"v\":2}\n";
    // A file table is written the changelog, op first: lines a
    // 'changelog-json' table reads back; applied, they are the totals.
    let out = dir.path().join("out");
    let sql = format!(
        "{table} CREATE TABLE out (k VARCHAR, n BIGINT) WITH ('connector' = 'file', 'path' = '{}/', 'format' = 'json'); \
         INSERT INTO out SELECT k, count(*) AS n FROM s GROUP BY k;",
        out.display()
    );
    let mut child = spawn(&["-e", &sql]);
    let mut stdin = child.stdin.take().expect("stdin");
    for row in [r#"{"k":"a","v":1}"#, r#"{"k":"a","v":5}"#, r#"{"k":"b","v":2}"#] {
        stdin.write_all(format!("{row}\n").as_bytes()).expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(stdin);
    assert!(child.wait().expect("exits").success());
    let mut parts: Vec<_> = std::fs::read_dir(&out)
        .expect("the output directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    parts.sort();
    let lines: Vec<String> = parts
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .expect("a part")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(lines.iter().any(|l| l.starts_with(r#"{"op":"-U""#)), "{lines:?}");
    assert_eq!(
        fold_changelog(&lines),
        [r#"{"k":"a","n":2}"#, r#"{"k":"b","n":1}"#]
    );
    // A blackhole counts the changes; a memory table takes appended rows only.
    let sql = format!(
        "{table} CREATE TABLE bh (k VARCHAR, n BIGINT) WITH ('connector' = 'blackhole'); \
         INSERT INTO bh SELECT k, count(*) FROM s GROUP BY k;"
    );
    let (code, _, stderr) = run(&["-e", &sql], input);
    assert_eq!(code, Some(0), "{stderr}");
    let sql = format!(
        "{table} CREATE TABLE m AS VALUES ('x', 1); INSERT INTO m SELECT k, count(*) FROM s GROUP BY k;"
    );
    let (code, _, stderr) = run(&["-e", &sql], input);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("INSERT INTO m: the query's result is updating")
            && stderr.contains("GROUP BY without a window"),
        "{stderr}"
    );
}

/// Run `sql` with `--format changelog`, writing `inputs` to its stdin one
/// line at a time (each its own batch): every line that comes out, then the
/// run's exit is checked.
fn changelog_line_by_line(sql: &str, inputs: &[&str]) -> Vec<String> {
    let mut child = spawn(&["--format", "changelog", "-e", sql]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    let mut lines = Vec::new();
    for input in inputs {
        stdin.write_all(format!("{input}\n").as_bytes()).expect("write");
        stdin.flush().expect("flush");
        lines.push(received.recv_timeout(Duration::from_secs(20)).expect("a change"));
        while let Ok(line) = received.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
    }
    drop(stdin);
    assert!(child.wait().expect("exits").success());
    lines
}

#[test]
fn a_debezium_changelog_on_stdin_is_an_updating_table() {
    let table = "CREATE TABLE orders (id INT, product VARCHAR, quantity INT) \
                 WITH ('connector' = 'stdin', 'format' = 'debezium-json');";
    let sql =
        format!("{table} SELECT product, count(*) AS n, sum(quantity) AS items FROM orders GROUP BY product");
    let messages = [
        r#"{"before":null,"after":{"id":1,"product":"mouse","quantity":2},"op":"c","source":{"db":"shop"}}"#,
        r#"{"before":null,"after":{"id":2,"product":"mouse","quantity":1},"op":"r"}"#,
        r#"{"before":{"id":1,"product":"mouse","quantity":2},"after":{"id":1,"product":"mouse","quantity":5},"op":"u"}"#,
        r#"{"before":{"id":2,"product":"mouse","quantity":1},"after":null,"op":"d"}"#,
        r#"{"before":null,"after":{"id":3,"product":"pad","quantity":1},"op":"c"}"#,
        r#"{"before":{"id":3,"product":"pad","quantity":1},"after":null,"op":"d"}"#,
    ];
    // One message a batch, so every change shows.
    let lines = changelog_line_by_line(&sql, &messages);
    assert_eq!(
        lines,
        [
            r#"{"op":"+I","product":"mouse","n":1,"items":2}"#,
            r#"{"op":"-U","product":"mouse","n":1,"items":2}"#,
            r#"{"op":"+U","product":"mouse","n":2,"items":3}"#,
            r#"{"op":"-U","product":"mouse","n":2,"items":3}"#,
            r#"{"op":"+U","product":"mouse","n":2,"items":6}"#,
            r#"{"op":"-U","product":"mouse","n":2,"items":6}"#,
            r#"{"op":"+U","product":"mouse","n":1,"items":5}"#,
            r#"{"op":"+I","product":"pad","n":1,"items":1}"#,
            r#"{"op":"-D","product":"pad","n":1,"items":1}"#,
        ]
    );
    // A message without its op names its line; a file read once is refused.
    let input = format!("{}\n{{\"after\":{{\"id\":9}}}}\n", messages[0]);
    let (code, _, stderr) = run(&["-e", &sql], &input);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("stdin line 2") && stderr.contains("no 'op'"),
        "{stderr}"
    );
    let file = "CREATE TABLE f (id INT) WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'debezium-json')";
    let (code, _, stderr) = run(&["-e", file], "");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("followed file ('follow' = 'true')"), "{stderr}");
}

#[test]
fn one_querys_changelog_feeds_another_as_changelog_json() {
    let first = "CREATE TABLE s (k VARCHAR, v BIGINT) WITH ('connector' = 'stdin', 'format' = 'json'); \
                 SELECT k, sum(v) AS total FROM s GROUP BY k";
    let second = "CREATE TABLE c (k VARCHAR, total BIGINT) WITH ('connector' = 'stdin', 'format' = 'changelog-json'); \
                  SELECT count(*) AS keys, sum(total) AS total FROM c";
    // The first query's changelog, one batch a row, so it updates.
    let changelog = changelog_line_by_line(
        first,
        &[r#"{"k":"a","v":1}"#, r#"{"k":"a","v":3}"#, r#"{"k":"b","v":3}"#],
    );
    assert!(
        changelog.iter().any(|l| l.starts_with(r#"{"op":"-U""#)),
        "{changelog:?}"
    );
    let (code, stdout, stderr) = run(
        &["--format", "changelog", "-e", second],
        &(changelog.join("\n") + "\n"),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    assert_eq!(fold_changelog(&lines), [r#"{"keys":2,"total":7}"#]);
    let (code, _, stderr) = run(&["-e", second], "{\"k\":\"a\",\"total\":1}\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("stdin line 1") && stderr.contains("no 'op'"),
        "{stderr}"
    );
}

#[test]
fn scans_of_one_stdin_table_share_its_lines_and_give_the_batch_result() {
    // A self-join and a filtered scan of one stdin table: three scans, one
    // reader, each scan getting every line (not a share of them).
    let input = "{\"k\":\"a\",\"v\":1}\n{\"k\":\"a\",\"v\":2}\n{\"k\":\"b\",\"v\":3}\n";
    let query = "SELECT a.k, a.v AS av, b.v AS bv FROM s a JOIN s b ON a.k = b.k \
                 UNION ALL SELECT k, v AS av, v AS bv FROM s WHERE v > 1";
    let columns = "(k VARCHAR, v BIGINT)";
    let streamed =
        format!("CREATE TABLE s {columns} WITH ('connector' = 'stdin', 'format' = 'json'); {query}");
    let (code, stdout, stderr) = run(&["--format", "csv", "-e", &streamed], input);
    assert_eq!(code, Some(0), "{stderr}");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("s.ndjson");
    std::fs::write(&path, input).expect("write the lines");
    let batch = format!(
        "CREATE TABLE s {columns} WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json'); {query}",
        path.display()
    );
    let (code, expected, stderr) = run(&["--format", "csv", "-e", &batch], "");
    assert_eq!(code, Some(0), "{stderr}");
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    // 4 pairs of 'a', 1 of 'b', and the 2 rows over 1, under a header.
    assert_eq!(sorted(&stdout).len(), 8, "{stdout}");
    assert_eq!(sorted(&stdout), sorted(&expected));
}

#[test]
fn two_tables_over_stdin_are_refused_rather_than_splitting_its_lines() {
    let sql = "CREATE TABLE s (k VARCHAR, v BIGINT) WITH ('connector' = 'stdin', 'format' = 'json'); \
               CREATE TABLE t (k VARCHAR, v BIGINT) WITH ('connector' = 'stdin', 'format' = 'json'); \
               SELECT s.k, t.v FROM s JOIN t ON s.k = t.k";
    let (code, stdout, stderr) = run(&["-e", sql], "{\"k\":\"a\",\"v\":1}\n");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stderr.contains("tables 's' and 't'") && stderr.contains("follow"),
        "{stderr}"
    );
}

#[test]
fn a_querys_own_column_named_op_is_a_column_not_a_changelog() {
    let table = "CREATE TABLE s (op VARCHAR, v BIGINT) WITH ('connector' = 'stdin', 'format' = 'json');";
    let input = "{\"op\":\"x\",\"v\":1}\n{\"op\":\"x\",\"v\":2}\n";
    // Appended rows whose first column is `op`: each is an insert, and the
    // row's own op is kept (under a unique name).
    let sql = format!("{table} SELECT op, v FROM s");
    let (code, stdout, stderr) = run(&["--format", "changelog", "-e", &sql], input);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            r#"{"op":"+I","op_1":"x","v":1}"#,
            r#"{"op":"+I","op_1":"x","v":2}"#
        ]
    );
    // An updating query grouped by its own `op`: the changelog's op comes
    // first, and a memory table, which takes appended rows, refuses it.
    let sql = format!("{table} SELECT op, count(*) AS n FROM s GROUP BY op");
    let (code, stdout, stderr) = run(&["--format", "changelog", "-e", &sql], input);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    assert_eq!(fold_changelog(&lines), [r#"{"n":2,"op_1":"x"}"#], "{lines:?}");
    let sql = format!(
        "{table} CREATE TABLE m AS VALUES ('x', 1); INSERT INTO m SELECT op, count(*) FROM s GROUP BY op;"
    );
    let (code, _, stderr) = run(&["-e", &sql], input);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("INSERT INTO m: the query's result is updating"),
        "{stderr}"
    );
}

#[test]
fn with_an_emit_interval_waiting_changes_go_out_on_the_clock_while_stdin_is_quiet() {
    let sql = "SET sluice.emit.interval = '300 ms'; \
               CREATE TABLE s (k VARCHAR, v BIGINT) WITH ('connector' = 'stdin', 'format' = 'json'); \
               SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k";
    let mut child = spawn(&["--format", "changelog", "-e", sql]);
    let mut stdin = child.stdin.take().expect("stdin");
    let received = lines_of(&mut child);
    let started = Instant::now();
    stdin.write_all(b"{\"k\":\"a\",\"v\":1}\n").expect("write");
    stdin.flush().expect("flush");
    let first = received
        .recv_timeout(Duration::from_secs(20))
        .expect("the first change");
    assert_eq!(first, r#"{"op":"+I","k":"a","n":1,"total":1}"#);
    // Two more rows within the interval, in two batches: they wait, then go
    // out as one update, on the clock, with stdin still open.
    for row in [r#"{"k":"a","v":2}"#, r#"{"k":"a","v":3}"#] {
        stdin.write_all(format!("{row}\n").as_bytes()).expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = received
        .recv_timeout(Duration::from_secs(20))
        .expect("-U while open");
    let after = received
        .recv_timeout(Duration::from_secs(20))
        .expect("+U while open");
    assert_eq!(before, r#"{"op":"-U","k":"a","n":1,"total":1}"#);
    assert_eq!(after, r#"{"op":"+U","k":"a","n":3,"total":6}"#);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "held for the interval"
    );
    assert!(
        received.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing else"
    );
    drop(stdin);
    assert!(child.wait().expect("exits").success());
}

#[test]
fn a_limit_over_an_updating_query_keeps_the_first_rows_in_force_not_the_first_changes() {
    // Flink's LIMIT over an updating input: a Top-N of the result with no
    // order, the first rows in force by arrival; a row taken back lets the
    // next one in. The changelog lines of `query` over one changelog, fed a
    // line a batch.
    let table =
        "CREATE TABLE c (k VARCHAR, v BIGINT) WITH ('connector' = 'stdin', 'format' = 'changelog-json');";
    let changes = |query: &str| {
        let sql = format!("{table} {query}");
        let mut child = spawn(&["--format", "changelog", "-e", &sql]);
        let mut stdin = child.stdin.take().expect("stdin");
        for line in [
            r#"{"op":"+I","k":"a","v":1}"#,
            r#"{"op":"+I","k":"b","v":1}"#,
            r#"{"op":"+I","k":"c","v":1}"#,
            r#"{"op":"-D","k":"a","v":1}"#,
            r#"{"op":"+I","k":"b","v":2}"#,
        ] {
            stdin.write_all(format!("{line}\n").as_bytes()).expect("write");
            stdin.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(150));
        }
        drop(stdin);
        let output = child.wait_with_output().expect("sluice finishes");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<String>>()
    };
    let lines = changes("SELECT k, count(*) AS n FROM c GROUP BY k LIMIT 2");
    assert!(
        lines.iter().any(|l| l == r#"{"op":"-D","k":"a","n":1}"#),
        "{lines:?}"
    );
    assert_eq!(
        fold_changelog(&lines),
        [r#"{"k":"b","n":2}"#, r#"{"k":"c","n":1}"#],
        "{lines:?}"
    );
    // With an OFFSET, the rows in force after the first, by arrival (Flink's
    // rank range), or by the ORDER BY; without a LIMIT it is refused.
    assert_eq!(
        fold_changelog(&changes(
            "SELECT k, count(*) AS n FROM c GROUP BY k LIMIT 2 OFFSET 1"
        )),
        [r#"{"k":"b","n":2}"#]
    );
    let ordered = "SELECT k, count(*) AS n FROM c GROUP BY k ORDER BY n DESC, k LIMIT 2 OFFSET 1";
    assert_eq!(fold_changelog(&changes(ordered)), [r#"{"k":"c","n":1}"#]);
    let sql = format!("{table} SELECT k, count(*) AS n FROM c GROUP BY k OFFSET 1");
    let (code, _, stderr) = run(&["-e", &sql], "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("an OFFSET without a LIMIT over an updating input"),
        "{stderr}"
    );
}

/// A changelog of orders (`id`, `k`, `v`, `ts` in seconds), out of order by
/// up to 2 s, with updates and deletes shortly after their rows: the
/// changelog-json lines, and the rows in force at the end.
fn orders_changelog() -> (Vec<String>, Vec<String>) {
    let row = |id: u32, k: &str, v: u32, ts: u32| {
        format!(
            r#""id":{id},"k":"{k}","v":{v},"ts":"2024-01-01 00:{:02}:{:02}""#,
            ts / 60,
            ts % 60
        )
    };
    let mut seed: u32 = 7;
    let mut next = move |n: u32| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (seed >> 16) % n
    };
    let keys = ["a", "b", "c"];
    let mut lines = Vec::new();
    // Each row in force, with its time.
    let mut live: std::collections::BTreeMap<u32, (String, u32)> = Default::default();
    for id in 0..300u32 {
        let ts = (id + next(3)).saturating_sub(1);
        let new = row(id, keys[next(3) as usize], next(100), ts);
        lines.push(format!(r#"{{"op":"+I",{new}}}"#));
        live.insert(id, (new, ts));
        // Now and then an earlier row (at most 3 back) changes or goes.
        let back = id.saturating_sub(next(4));
        if let Some((old, ts)) = live.get(&back).cloned() {
            match next(4) {
                0 => {
                    lines.push(format!(r#"{{"op":"-D",{old}}}"#));
                    live.remove(&back);
                }
                1 => {
                    let new = row(back, keys[next(3) as usize], next(100), ts);
                    lines.push(format!(r#"{{"op":"-U",{old}}}"#));
                    lines.push(format!(r#"{{"op":"+U",{new}}}"#));
                    live.insert(back, (new, ts));
                }
                _ => {}
            }
        }
    }
    let rows = live.values().map(|(r, _)| format!("{{{r}}}")).collect();
    (lines, rows)
}

#[test]
fn windowed_aggregates_over_a_changelog_retract_and_emit_each_window_at_its_close() {
    let (changelog, rows) = orders_changelog();
    assert!(changelog.iter().any(|l| l.starts_with(r#"{"op":"-D""#)));
    assert!(changelog.iter().any(|l| l.starts_with(r#"{"op":"-U""#)));
    let columns = "(id INT, k VARCHAR, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)";
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("orders.ndjson");
    std::fs::write(&file, rows.join("\n") + "\n").expect("write the rows");
    let table = format!(
        "CREATE TABLE o {columns} WITH ('connector' = 'stdin', 'format' = 'changelog-json', 'bounded' = 'true');"
    );
    let input = changelog.join("\n") + "\n";
    let small = "SET datafusion.execution.batch_size = 20;";
    let windows = [
        "TUMBLE(TABLE o, DESCRIPTOR(ts), INTERVAL '10' SECOND)",
        "HOP(TABLE o, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND)",
        "CUMULATE(TABLE o, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND)",
        // A row taken back leaves its open session, which may split.
        "SESSION(TABLE o PARTITION BY k, DESCRIPTOR(ts), INTERVAL '2' SECOND)",
    ];
    for window in windows {
        let query = format!(
            "SELECT window_start, window_end, k, count(*) AS n, sum(v) AS total, max(v) AS top \
             FROM TABLE({window}) GROUP BY window_start, window_end, k"
        );
        // Batch, over the rows in force at the end.
        let batch_sql = format!(
            "CREATE TABLE o {columns} WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json'); {query}",
            file.display()
        );
        let (code, batch, stderr) = run(&["--format", "json", "-e", &batch_sql], "");
        assert_eq!(code, Some(0), "{stderr}");
        let mut expected: Vec<&str> = batch.lines().collect();
        expected.sort();
        assert!(expected.len() > 40, "{expected:?}");
        // Continuously, over the changelog on stdin: each window once, at
        // its close, as appended rows, with batch's values; also in small
        // batches, so that windows close between them.
        for settings in ["", small] {
            let sql = format!("{settings} {table} {query}");
            let (code, stream, stderr) = run(&["--format", "json", "-e", &sql], &input);
            assert_eq!(code, Some(0), "{stderr}");
            assert!(!stderr.contains("late"), "nothing is late: {stderr}");
            let mut got: Vec<&str> = stream.lines().collect();
            got.sort();
            assert_eq!(got, expected, "{window} {settings}");
        }
        if window.starts_with("SESSION") {
            // EMIT CHANGES over sessions is refused, over any input.
            let sql = format!("{table} {query} EMIT CHANGES");
            let (code, _, stderr) = run(&["-e", &sql], "");
            assert_eq!(code, Some(1));
            assert!(
                stderr.contains("EMIT CHANGES over SESSION windows is not supported yet"),
                "{stderr}"
            );
            continue;
        }
        // With EMIT CHANGES (small batches, so windows change), its changes
        // as they come; folded, the same rows.
        let sql = format!("{small} {table} {query} EMIT CHANGES");
        let (code, changes, stderr) = run(&["--format", "changelog", "-e", &sql], &input);
        assert_eq!(code, Some(0), "{stderr}");
        let changes: Vec<String> = changes.lines().map(str::to_string).collect();
        assert!(
            changes.iter().any(|l| l.starts_with(r#"{"op":"-U""#)),
            "{changes:?}"
        );
        let mut expected: Vec<String> = expected
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .expect("JSON")
                    .to_string()
            })
            .collect();
        expected.sort();
        assert_eq!(fold_changelog(&changes), expected, "{window}");
    }
    // A row taken back after its window closed is late: counted, not applied.
    let late = [
        r#"{"op":"+I","id":1,"k":"a","v":5,"ts":"2024-01-01 00:00:01"}"#,
        r#"{"op":"+I","id":2,"k":"a","v":7,"ts":"2024-01-01 00:00:30"}"#,
        r#"{"op":"-D","id":1,"k":"a","v":5,"ts":"2024-01-01 00:00:01"}"#,
    ];
    let query = format!(
        "SELECT window_start, k, count(*) AS n, sum(v) AS total FROM TABLE({}) GROUP BY window_start, window_end, k",
        windows[0]
    );
    let (code, stream, stderr) = run(
        &["--format", "json", "-e", &format!("{table} {query}")],
        &(late.join("\n") + "\n"),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("1 late row was behind the watermark"), "{stderr}");
    assert!(
        stream
            .lines()
            .next()
            .is_some_and(|l| l.contains(r#""n":1,"total":5"#)),
        "{stream}"
    );
    // The same with sessions: a row taken back after its session was
    // emitted is late; one no session ever held is counted apart.
    let session = "SELECT window_start, k, count(*) AS n, sum(v) AS total FROM TABLE(SESSION(TABLE o PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end, k";
    let changes = [
        late[0],
        late[1],
        late[2],
        r#"{"op":"-D","id":9,"k":"a","v":1,"ts":"2024-01-01 00:00:29"}"#,
    ];
    let (code, stream, stderr) = run(
        &["--format", "json", "-e", &format!("{table} {session}")],
        &(changes.join("\n") + "\n"),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("1 late row was behind the watermark"), "{stderr}");
    assert!(stderr.contains("1 retraction"), "{stderr}");
    let rows: Vec<&str> = stream.lines().collect();
    assert_eq!(rows.len(), 2, "{stream}");
    assert!(rows[0].contains(r#""n":1,"total":5"#), "{stream}");
    assert!(rows[1].contains(r#""n":1,"total":7"#), "{stream}");
}

#[test]
fn one_querys_csv_changelog_feeds_another_as_changelog_csv() {
    let first = "CREATE TABLE s (k VARCHAR, v BIGINT) WITH ('connector' = 'stdin', 'format' = 'json'); \
                 SELECT k, sum(v) AS total FROM s GROUP BY k";
    // The first query's changelog in CSV (`op` first), a batch a row.
    let mut child = spawn(&["--format", "csv", "-e", first]);
    let mut stdin = child.stdin.take().expect("stdin");
    for row in [r#"{"k":"a","v":1}"#, r#"{"k":"a","v":3}"#, r#"{"k":"b","v":3}"#] {
        stdin.write_all(format!("{row}\n").as_bytes()).expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(stdin);
    let output = child.wait_with_output().expect("exits");
    let changelog = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        changelog.starts_with("op,k,total\n") && changelog.contains("\n-U,a,1\n"),
        "{changelog}"
    );
    let second = "CREATE TABLE c (k VARCHAR, total BIGINT) WITH ('connector' = 'stdin', 'format' = 'changelog-csv'); \
                  SELECT count(*) AS keys, sum(total) AS total FROM c";
    let (code, stdout, stderr) = run(&["--format", "changelog", "-e", second], &changelog);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    assert_eq!(fold_changelog(&lines), [r#"{"keys":2,"total":7}"#]);
    // Rows without their op are refused, naming the line.
    let (code, _, stderr) = run(&["-e", second], "k,total\na,1\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("stdin line 1") && stderr.contains("op"),
        "{stderr}"
    );
}

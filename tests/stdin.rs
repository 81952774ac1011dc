//! End-to-end tests of the `stdin` connector through the `sluice` binary:
//! rows piped in, the query given with `-e`. Only bounded stdin
//! (`'bounded' = 'true'`), which runs in batch; unbounded queries need the
//! continuous executor.

use std::io::Write;
use std::process::{Command, Stdio};

/// What a finished run left behind.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run `sluice -e sql` with `input` piped into stdin (written from a thread,
/// so a large input cannot deadlock against the output).
fn sluice(sql: &str, input: impl Into<Vec<u8>>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["-e", sql])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.into();
    let writer = std::thread::spawn(move || {
        // A failed query may stop reading early: a broken pipe is fine.
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("sluice finishes");
    writer.join().expect("the writer ends");
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "sluice panicked: {run:#?}");
    run
}

impl Run {
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        assert!(self.stderr.is_empty(), "unexpected stderr: {self:#?}");
        &self.stdout
    }

    fn failed(&self) -> &str {
        assert_eq!(self.code, Some(1), "expected exit code 1: {self:#?}");
        assert!(self.stderr.starts_with("Error: "), "stderr: {self:#?}");
        &self.stderr
    }
}

const JSON_TABLE: &str = "CREATE TABLE t (id BIGINT, name VARCHAR, ts TIMESTAMP(3)) \
     WITH ('connector' = 'stdin', 'format' = 'json', 'bounded' = 'true');";

#[test]
fn json_rows_from_stdin() {
    // A blank line, both timestamp spellings, a missing field, and a last line without newline.
    let input = concat!(
        "{\"id\": 1, \"name\": \"a\", \"ts\": \"2024-05-01T10:00:00\"}\n",
        "\n",
        "{\"id\": 2, \"name\": \"b\", \"ts\": \"2024-05-01 10:00:01.250\"}\n",
        "{\"id\": 3, \"ts\": \"2024-05-01T10:00:02Z\"}",
    );
    let sql = format!("{JSON_TABLE} SELECT id, coalesce(name, '-') AS name, ts FROM t ORDER BY id");
    assert_eq!(
        sluice(&sql, input).ok(),
        "id,name,ts\n\
         1,a,2024-05-01T10:00:00\n\
         2,b,2024-05-01T10:00:01.250\n\
         3,-,2024-05-01T10:00:02\n"
    );
}

#[test]
fn a_bad_row_names_its_line() {
    let input = "{\"id\": 1}\n\n{\"id\": 2}\n{\"id\": \"three\"}\n{\"id\": 4}\n";
    let sql = format!("{JSON_TABLE} SELECT sum(id) FROM t");
    let stderr = sluice(&sql, input).failed().to_string();
    assert!(stderr.contains("stdin line 4: "), "{stderr}");
    assert!(stderr.contains("failed to parse \"three\" as Int64"), "{stderr}");
}

#[test]
fn a_json_fraction_in_a_bigint_column_is_an_error_not_truncated() {
    let input = "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 5.7}\n";
    let unbounded = JSON_TABLE.replace(", 'bounded' = 'true'", "");
    for table in [JSON_TABLE, unbounded.as_str()] {
        let sql = format!("{table} SELECT id FROM t");
        let stderr = sluice(&sql, input).failed().to_string();
        assert!(stderr.contains("reading table 't'"), "{stderr}");
        assert!(
            stderr.contains(
                "stdin line 3: column 'id' is BIGINT but the value is 5.7, a number with a fraction: declare the column DOUBLE or DECIMAL"
            ),
            "{stderr}"
        );
    }
}

#[test]
fn a_json_fraction_in_a_debezium_row_is_the_same_error_as_in_a_flat_one() {
    // The row's columns are nested in the envelope's `before` and `after`.
    let input = concat!(
        "{\"before\": null, \"after\": {\"id\": 1, \"n\": 2}, \"op\": \"c\"}\n",
        "{\"before\": {\"id\": 1, \"n\": 2}, \"after\": {\"id\": 1, \"n\": 5.7}, \"op\": \"u\"}\n",
    );
    let sql = "CREATE TABLE d (id BIGINT, n BIGINT) WITH ('connector' = 'stdin', 'format' = 'debezium-json'); \
               SELECT * FROM d";
    let stderr = sluice(sql, input).failed().to_string();
    assert!(
        stderr.contains(
            "stdin line 2: column 'n' is BIGINT but the value is 5.7, a number with a fraction: declare the column DOUBLE or DECIMAL"
        ),
        "{stderr}"
    );
    // Whole numbers (also written `2.0`) are read as they are.
    let input = "{\"after\": {\"id\": 9007199254740993, \"n\": 2.0}, \"op\": \"c\"}\n";
    assert_eq!(sluice(sql, input).ok(), "op,id,n\n+I,9007199254740993,2\n");
}

#[test]
fn rows_with_a_null_event_time_are_counted_and_reported_in_both_modes() {
    let input = "{\"id\": 1, \"ts\": \"2024-01-01T00:00:01\"}\n{\"id\": 2, \"ts\": null}\n{\"id\": 3}\n{\"id\": 4, \"ts\": \"2024-01-01T00:00:07\"}\n";
    let bounded = "CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) \
         WITH ('connector' = 'stdin', 'format' = 'json', 'bounded' = 'true');";
    let unbounded = bounded.replace(", 'bounded' = 'true'", "");
    let query = "SELECT window_start, count(*) AS n FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end";
    for table in [bounded, unbounded.as_str()] {
        let run = sluice(&format!("{table} {query}"), input);
        assert_eq!(run.code, Some(0), "{run:#?}");
        let mut rows: Vec<&str> = run.stdout.lines().skip(1).collect();
        rows.sort();
        assert_eq!(
            rows,
            ["2024-01-01T00:00:00,1", "2024-01-01T00:00:05,1"],
            "{run:#?}"
        );
        assert!(
            run.stderr
                .contains("2 rows had a NULL event time (ts) and fell in no window: left out, as in Flink"),
            "{run:#?}"
        );
    }
}

#[test]
fn csv_rows_from_stdin() {
    let sql = "CREATE TABLE t (id BIGINT, name VARCHAR) \
               WITH ('connector' = 'stdin', 'format' = 'csv', 'csv.field-delimiter' = ';', 'bounded' = 'true'); \
               SELECT name, id * 10 AS x FROM t ORDER BY id DESC";
    assert_eq!(
        sluice(sql, "id;name\n1;a\n2;\"b;c\"\n").ok(),
        "name,x\nb;c,20\na,10\n"
    );

    let sql = "CREATE TABLE t (id BIGINT, name VARCHAR) \
               WITH ('connector' = 'stdin', 'format' = 'csv', 'csv.header' = 'false', 'bounded' = 'true'); \
               SELECT count(*) AS n, max(name) AS top FROM t";
    assert_eq!(sluice(sql, "1,a\n2,b\n3,c\n").ok(), "n,top\n3,c\n");

    let sql = "CREATE TABLE t (name VARCHAR, id BIGINT) \
               WITH ('connector' = 'stdin', 'format' = 'csv', 'bounded' = 'true'); SELECT * FROM t";
    let stderr = sluice(sql, "id,name\n1,a\n").failed().to_string();
    assert!(
        stderr
            .contains("stdin line 1: column 1 is 'id' in the CSV header but the table declares 'name' there"),
        "{stderr}"
    );
    let stderr = sluice(sql, "name,id\nx,1\ny,2,3\n").failed().to_string();
    assert!(
        stderr.contains("stdin line 3: incorrect number of fields, expected 2 got 3"),
        "{stderr}"
    );
}

#[test]
fn options_are_checked() {
    let stderr = sluice(
        "CREATE TABLE t WITH ('connector' = 'stdin', 'format' = 'json')",
        "",
    )
    .failed()
    .to_string();
    assert!(stderr.contains("a 'stdin' table needs its columns"), "{stderr}");
    let stderr = sluice(
        "CREATE TABLE t (a INT) WITH ('connector' = 'stdin', 'format' = 'xml')",
        "",
    )
    .failed()
    .to_string();
    assert!(stderr.contains("unknown format 'xml'"), "{stderr}");
    let stderr = sluice("CREATE TABLE t (a INT) WITH ('connector' = 'stdn')", "")
        .failed()
        .to_string();
    assert!(stderr.contains("available: 'file', 'stdin',"), "{stderr}");
}

#[test]
fn many_rows_in_big_reads() {
    let rows = 300_000;
    let input: String = (0..rows)
        .map(|i| {
            format!(
                "{{\"id\": {i}, \"name\": \"n{}\", \"ts\": \"2024-05-01T10:00:00\"}}\n",
                i % 7
            )
        })
        .collect();
    let sql =
        format!("{JSON_TABLE} SELECT count(*) AS n, sum(id) AS s, count(DISTINCT name) AS names FROM t");
    let started = std::time::Instant::now();
    let out = sluice(&sql, input).ok().to_string();
    eprintln!(
        "{rows} NDJSON rows through stdin in {:?} (debug build)",
        started.elapsed()
    );
    let sum: u64 = (0..rows).sum();
    assert_eq!(out, format!("n,s,names\n{rows},{sum},7\n"));
}

#[test]
fn a_limit_ends_the_run_while_stdin_stays_open() {
    let sql = format!("{JSON_TABLE} SELECT id FROM t LIMIT 1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["-e", &sql])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(b"{\"id\": 7}\n").expect("a row");
    stdin.flush().expect("flushed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "sluice still runs with its row read"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(stdin);
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "id\n7\n");
}

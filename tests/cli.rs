//! End-to-end tests of the `sluice` binary in script mode: files, `-e`, piped
//! stdin, output formats and files, exit codes, error messages that name the
//! place, a closed pipe, and every example in `queries/`.
//!
//! The interactive shell is tested in a pseudo-terminal in `tests/repl.rs`.

use std::borrow::BorrowMut;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root: examples and `testdata/` paths are relative to it.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What a finished run left behind.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Assert success and return stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        assert!(self.stderr.is_empty(), "unexpected stderr: {self:#?}");
        &self.stdout
    }

    /// Assert success with only `notes` on stderr (an INSERT's count) and
    /// return stdout.
    fn ok_noting(&self, notes: &str) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        assert_eq!(self.stderr, notes, "stderr: {self:#?}");
        &self.stdout
    }

    /// Assert exit code 1 and return stderr.
    fn failed(&self) -> &str {
        assert_eq!(self.code, Some(1), "expected exit code 1: {self:#?}");
        assert!(self.stderr.starts_with("Error: "), "stderr: {self:#?}");
        &self.stderr
    }
}

/// The binary, run from `dir`.
fn sluice_in(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.current_dir(dir);
    command
}

/// Run with `args` from the repository root, stdin empty.
fn sluice(args: &[&str]) -> Run {
    run(sluice_in(Path::new(ROOT)).args(args), "")
}

/// Run `command`, feeding `stdin`; never a panic, whatever the outcome.
fn run(mut command: impl BorrowMut<Command>, stdin: &str) -> Run {
    let mut child = command
        .borrow_mut()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin takes the script");
    let output = child.wait_with_output().expect("sluice finishes");
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "sluice panicked: {run:#?}");
    run
}

/// A temporary directory holding `files` (name, contents).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write a test file");
    }
    dir
}

/// NDJSON text as JSON values, one per line.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}")))
        .collect()
}

const ORDERS_DDL: &str = "CREATE TABLE orders (order_id BIGINT, customer_id BIGINT, product_id BIGINT, \
    quantity INT, amount DOUBLE, status VARCHAR, order_time TIMESTAMP(3)) \
    WITH ('connector' = 'file', 'path' = 'testdata/orders.csv', 'format' = 'csv');";

// ---------------------------------------------------------------- inputs

#[test]
fn script_file_runs_every_statement_in_order() {
    let dir = dir_with(&[
        ("people.csv", "id,name\n1,ada\n2,grace\n3,linus\n"),
        (
            "q.sql",
            "-- a comment\n\
             CREATE TABLE people (id BIGINT, name VARCHAR)\n\
             WITH ('connector' = 'file', 'path' = 'people.csv', 'format' = 'csv');\n\
             SELECT name FROM people WHERE id >= 2 ORDER BY id;\n\
             SELECT count(*) AS n FROM people;\n",
        ),
    ]);
    let out = run(sluice_in(dir.path()).arg("q.sql"), "");
    assert_eq!(out.ok(), "name\ngrace\nlinus\nn\n3\n");
}

#[test]
fn several_files_run_in_order_sharing_the_catalog() {
    let dir = dir_with(&[
        ("a.sql", "CREATE VIEW v AS SELECT 41 AS x;"),
        ("b.sql", "SELECT x + 1 AS y FROM v;"),
    ]);
    let out = run(sluice_in(dir.path()).args(["a.sql", "b.sql"]), "");
    assert_eq!(out.ok(), "y\n42\n");
}

#[test]
fn execute_flag_runs_sql_and_prints_csv() {
    let out = sluice(&["-e", "SELECT 1 AS a, 'x,y' AS b, NULL AS c"]);
    assert_eq!(out.ok(), "a,b,c\n1,\"x,y\",\n");
}

#[test]
fn execute_flag_may_be_repeated_and_runs_before_files() {
    let dir = dir_with(&[("q.sql", "SELECT 'file' AS src;")]);
    let out = run(
        sluice_in(dir.path()).args([
            "q.sql",
            "-e",
            "SELECT 'first' AS src",
            "-e",
            "SELECT 'second' AS src",
        ]),
        "",
    );
    assert_eq!(out.ok(), "src\nfirst\nsrc\nsecond\nsrc\nfile\n");
}

#[test]
fn piped_stdin_is_a_script_with_csv_output() {
    let out = run(
        sluice_in(Path::new(ROOT)),
        "SELECT 1 AS a;\nSELECT v FROM (VALUES (1), (2)) t(v)\nORDER BY v;\n",
    );
    assert_eq!(out.ok(), "a\n1\nv\n1\n2\n");
}

#[test]
fn a_missing_script_file_is_an_error() {
    let err = sluice(&["no/such/script.sql"]).failed().to_string();
    assert!(err.contains("no/such/script.sql"), "{err}");
}

#[test]
fn empty_input_succeeds_quietly() {
    let out = run(sluice_in(Path::new(ROOT)), "");
    assert_eq!(out.ok(), "");
    let out = run(sluice_in(Path::new(ROOT)), "-- only a comment\n");
    assert_eq!(out.ok(), "");
}

// ---------------------------------------------------------------- formats

#[test]
fn format_table_draws_a_table_with_a_row_count() {
    let out = sluice(&["--format", "table", "-e", "SELECT 1 AS num, 'hello' AS word"]);
    let text = out.ok();
    assert!(text.contains("| num | word  |"), "{text}");
    assert!(text.contains("|   1 | hello |"), "{text}");
    assert_eq!(text.lines().last(), Some("1 row"), "{text}");
    assert!(text.is_ascii(), "a pipe gets an ASCII table: {text}");
}

#[test]
fn format_table_honours_max_rows() {
    let out = sluice(&[
        "--format",
        "table",
        "--max-rows",
        "3",
        "-e",
        "SELECT value FROM generate_series(1, 10) ORDER BY value",
    ]);
    let text = out.ok();
    assert!(text.contains("|     3 |"), "{text}");
    assert!(!text.contains("|     4 |"), "{text}");
    assert!(text.contains("7 more rows not shown"), "{text}");
    assert_eq!(text.lines().last(), Some("10 rows"), "{text}");
}

#[test]
fn format_csv_has_one_header_and_iso_timestamps() {
    let out = sluice(&[
        "--format",
        "csv",
        "-e",
        "SELECT v, t FROM (VALUES (1, TIMESTAMP '2026-03-01T10:15:30.123'), \
         (2, TIMESTAMP '2026-03-01 23:59:59')) AS x(v, t) ORDER BY v",
    ]);
    assert_eq!(
        out.ok(),
        "v,t\n1,2026-03-01T10:15:30.123\n2,2026-03-01T23:59:59\n"
    );
}

#[test]
fn format_csv_of_an_empty_result_is_just_the_header() {
    let out = sluice(&["-f", "csv", "-e", "SELECT 1 AS a, 2 AS b WHERE false"]);
    assert_eq!(out.ok(), "a,b\n");
}

#[test]
fn format_json_is_one_object_per_row() {
    let out = sluice(&[
        "--format",
        "json",
        "-e",
        "SELECT v AS id, 'n' || v AS name, CASE WHEN v = 2 THEN NULL ELSE v * 1.5 END AS score \
         FROM (VALUES (1), (2), (3)) AS x(v) ORDER BY v",
    ]);
    let rows = json_lines(out.ok());
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[0]["name"], "n1");
    assert_eq!(rows[0]["score"], 1.5);
    assert!(rows[1]["score"].is_null(), "nulls are explicit: {:?}", rows[1]);
    assert_eq!(rows[2]["score"], 4.5);
}

#[test]
fn format_json_over_the_sample_orders() {
    let sql = format!(
        "{ORDERS_DDL} SELECT status, count(*) AS n, min(order_time) AS first \
         FROM orders GROUP BY status ORDER BY n DESC"
    );
    let rows = json_lines(sluice(&["--format", "json", "-e", &sql]).ok());
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["status"], "completed");
    let total: i64 = rows.iter().map(|r| r["n"].as_i64().expect("a count")).sum();
    assert_eq!(total, 5_000);
    let first = rows[0]["first"].as_str().expect("a timestamp string");
    assert!(first.starts_with("2026-03-01T00:"), "{first}");
}

#[test]
fn an_unknown_format_is_rejected_by_the_flag_parser() {
    let out = sluice(&["--format", "xml", "-e", "SELECT 1"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(out.stderr.contains("xml"), "{out:#?}");
}

// ---------------------------------------------------------------- --output

#[test]
fn output_file_takes_its_format_from_the_extension() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sql = "SELECT v, 'r' || v AS label FROM (VALUES (1), (2)) AS x(v) ORDER BY v";
    for (name, check) in [
        ("out.json", "json"),
        ("out.ndjson", "json"),
        ("out.csv", "csv"),
        ("out.txt", "table"),
    ] {
        let path = dir.path().join(name);
        let out = sluice(&["--output", path.to_str().expect("utf-8 path"), "-e", sql]);
        assert_eq!(out.ok(), "", "results go to the file, not stdout");
        let text = std::fs::read_to_string(&path).expect("the output file exists");
        match check {
            "json" => {
                let rows = json_lines(&text);
                assert_eq!(rows[1]["label"], "r2", "{name}: {text}");
            }
            "csv" => assert_eq!(text, "v,label\n1,r1\n2,r2\n", "{name}"),
            _ => assert!(text.contains("| 2 | r2    |"), "{name}: {text}"),
        }
    }
}

#[test]
fn output_file_writes_parquet_and_arrow_and_refuses_an_unknown_extension() {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (name, format) in [("out.parquet", "parquet"), ("out.arrow", "arrow")] {
        let path = dir.path().join(name);
        let path = path.to_str().expect("utf-8 path");
        let out = sluice(&[
            "--output",
            path,
            "-e",
            "SELECT v, 'r' || v AS label FROM generate_series(1, 20000) AS x(v)",
        ]);
        assert_eq!(out.ok(), "");
        // Read back as that format, by Sluice itself.
        let back = sluice(&[
            "-e",
            &format!(
                "CREATE TABLE t WITH ('connector' = 'file', 'path' = '{path}', 'format' = '{format}');
                 SELECT count(*) AS n, max(v) AS top, min(label) AS first FROM t"
            ),
        ]);
        assert_eq!(back.ok(), "n,top,first\n20000,20000,r1\n", "{name}");
    }
    let path = dir.path().join("out.xyz");
    let out = sluice(&["--output", path.to_str().expect("utf-8 path"), "-e", "SELECT 1"]);
    assert!(
        out.failed().contains("cannot tell the format of") && out.stderr.contains(".parquet, .arrow"),
        "{out:#?}"
    );
    assert!(!path.exists(), "no file written under a name that lies");
}

#[test]
fn output_flag_format_beats_the_extension() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("out.json");
    let out = sluice(&[
        "-o",
        path.to_str().expect("utf-8 path"),
        "--format",
        "csv",
        "-e",
        "SELECT 7 AS x",
    ]);
    out.ok();
    assert_eq!(std::fs::read_to_string(&path).expect("written"), "x\n7\n");
}

#[test]
fn output_into_a_missing_directory_fails_cleanly() {
    let out = sluice(&["--output", "/nonexistent-dir/sub/out.csv", "-e", "SELECT 1"]);
    let err = out.failed();
    assert!(err.contains("/nonexistent-dir/sub/out.csv"), "{err}");
}

// ---------------------------------------------------------------- exit codes and errors

#[test]
fn an_error_stops_the_script_with_exit_code_1() {
    let out = sluice(&["-e", "SELECT 1 AS ok; SELECT * FROM nope; SELECT 2 AS later"]);
    let err = out.failed();
    assert!(err.contains("nope"), "{err}");
    assert_eq!(
        out.stdout, "ok\n1\n",
        "the statement before the error printed, none after"
    );
    assert!(!out.stdout.contains("nope"), "errors stay off stdout");
}

#[test]
fn continue_on_error_runs_the_rest_but_still_fails() {
    let out = sluice(&[
        "--continue-on-error",
        "-e",
        "SELECT 1 AS a; SELECT * FROM nope; SELECT 2 AS b; SELEC 3; SELECT 4 AS c",
    ]);
    let err = out.failed();
    assert_eq!(out.stdout, "a\n1\nb\n2\nc\n4\n");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("Error: ")).count(),
        2,
        "{err}"
    );
}

#[test]
fn continue_on_error_goes_on_to_the_next_file() {
    let dir = dir_with(&[
        ("bad.sql", "SELECT * FROM nope;"),
        ("good.sql", "SELECT 5 AS five;"),
    ]);
    let out = run(
        sluice_in(dir.path()).args(["--continue-on-error", "bad.sql", "good.sql"]),
        "",
    );
    out.failed();
    assert_eq!(out.stdout, "five\n5\n");
    let out = run(sluice_in(dir.path()).args(["bad.sql", "good.sql"]), "");
    out.failed();
    assert_eq!(
        out.stdout, "",
        "without the flag the first failure stops everything"
    );
}

#[test]
fn unknown_table_on_the_command_line_names_line_and_column() {
    let err = sluice(&["-e", "SELECT * FROM missing_table"])
        .failed()
        .to_string();
    assert!(err.starts_with("Error: <command line>:1:15: "), "{err}");
    assert!(err.contains("missing_table"), "{err}");
}

#[test]
fn unknown_table_in_a_file_names_the_file_and_line() {
    let dir = dir_with(&[("q.sql", "SELECT 1 AS x;\n\nSELECT * FROM\n  missing_table;\n")]);
    let out = run(sluice_in(dir.path()).arg("q.sql"), "");
    let err = out.failed();
    assert!(err.starts_with("Error: q.sql:4:3: "), "{err}");
    assert!(err.contains("missing_table"), "{err}");
    assert_eq!(out.stdout, "x\n1\n");
}

#[test]
fn planning_errors_point_at_the_offending_expression() {
    // An unknown column and a type mismatch, each past the statement's start
    // (which is where every planning error pointed before).
    let dir = dir_with(&[(
        "q.sql",
        "CREATE TABLE t (a INT, s VARCHAR) AS VALUES (1, 'x');\nSELECT a,\n  nope FROM t;\n",
    )]);
    let err = run(sluice_in(dir.path()).arg("q.sql"), "").failed().to_string();
    assert!(err.starts_with("Error: q.sql:3:3: No field named nope"), "{err}");
    let sql = "CREATE TABLE t (a INT, s VARCHAR) AS VALUES (1, 'x'); SELECT 1, a + s FROM t";
    let err = sluice(&["-e", sql]).failed().to_string();
    assert!(
        err.starts_with("Error: <command line>:1:65: Cannot coerce arithmetic expression Int32 + Utf8View"),
        "{err}"
    );
}

#[test]
fn syntax_errors_name_the_place() {
    let err = sluice(&["-e", "SELEC 1"]).failed().to_string();
    assert!(err.starts_with("Error: <command line>:1:1: "), "{err}");
    assert!(err.contains("SELEC"), "{err}");

    let dir = dir_with(&[("q.sql", "SELECT 1;\nSELECT 2;\nSELECT FROM WHERE;\n")]);
    let err = run(sluice_in(dir.path()).arg("q.sql"), "").failed().to_string();
    assert!(err.starts_with("Error: q.sql:3:"), "{err}");

    let err = run(sluice_in(Path::new(ROOT)), "SELECT 1;\nSELECT (1;\n")
        .failed()
        .to_string();
    assert!(err.starts_with("Error: <stdin>:"), "{err}");
}

#[test]
fn a_missing_data_file_says_file_not_found() {
    let err = sluice(&[
        "-e",
        "CREATE TABLE t (a INT) WITH ('connector' = 'file', 'path' = 'no/such/file.csv', 'format' = 'csv')",
    ])
    .failed()
    .to_string();
    assert!(err.starts_with("Error: <command line>:1:"), "{err}");
    assert!(err.contains("file not found"), "{err}");
    assert!(err.contains("no/such/file.csv"), "{err}");
}

#[test]
fn csv_columns_that_do_not_match_the_header_are_an_error() {
    let dir = dir_with(&[("h.csv", "a,b\n1,2\n")]);
    let create = |columns: &str| {
        format!("CREATE TABLE t ({columns}) WITH ('connector' = 'file', 'path' = 'h.csv', 'format' = 'csv')")
    };
    let out = run(sluice_in(dir.path()).args(["-e", &create("a INT, c INT")]), "");
    let err = out.failed();
    assert!(err.starts_with("Error: <command line>:1:"), "{err}");
    assert!(err.contains("'b'") && err.contains("'c'"), "{err}");

    let out = run(sluice_in(dir.path()).args(["-e", &create("a INT")]), "");
    let err = out.failed();
    assert!(err.contains("2 columns"), "{err}");
}

#[test]
fn a_bad_csv_value_names_its_file_line_and_column_from_1() {
    // The header is line 1, so the third row is line 4; the second column is column 2.
    let dir = dir_with(&[("small.csv", "a,b\n1,2\n3,4\n5,x\n")]);
    // Large enough for DataFusion to split it into byte ranges read in parallel.
    let mut big = String::from("a,b\n");
    for i in 0..900_000 {
        big.push_str(&format!("{i},{}\n", i * 7));
    }
    big.push_str("900000,oops\n");
    std::fs::write(dir.path().join("big.csv"), &big).expect("write");
    for (file, line, value) in [("small.csv", 4, "x"), ("big.csv", 900_002, "oops")] {
        let sql = format!(
            "CREATE TABLE t (a BIGINT, b BIGINT) WITH ('connector' = 'file', 'path' = '{file}', 'format' = 'csv'); SELECT sum(b) FROM t"
        );
        let out = run(sluice_in(dir.path()).args(["-e", &sql]), "");
        let err = out.failed();
        assert!(
            err.contains(&format!(
                "reading table 't' (file csv {file}): file {file} line {line}: "
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "parsing value '{value}' as type 'Int64' in column 2 ('b')"
            )),
            "{err}"
        );
    }
}

#[test]
fn a_continuous_replay_names_a_bad_rows_file_line_and_column_as_batch_does() {
    let dir = dir_with(&[
        ("small.csv", "a,b\n1,2\n3,4\n5,x\n"),
        ("t.ndjson", "{\"a\": 1}\n{\"a\": 5.7}\n"),
    ]);
    let cases = [
        (
            "a BIGINT, b BIGINT",
            "small.csv",
            "csv",
            "file small.csv line 4: Error while parsing value 'x' as type 'Int64' in column 2 ('b')",
        ),
        (
            "a BIGINT",
            "t.ndjson",
            "json",
            "file t.ndjson line 2: column 'a' is BIGINT but the value is 5.7, a number with a fraction",
        ),
    ];
    for (columns, file, format, place) in cases {
        let sql = format!(
            "CREATE TABLE t ({columns}) WITH ('connector' = 'file', 'path' = '{file}', 'format' = '{format}'); SELECT * FROM t"
        );
        let out = run(
            sluice_in(dir.path()).args(["--mode", "continuous", "-e", &sql]),
            "",
        );
        let err = out.failed();
        assert!(
            err.contains(&format!("reading table 't' (file {format} {file}): {place}")),
            "{err}"
        );
    }
}

#[test]
fn a_json_fraction_in_a_bigint_column_of_a_file_is_an_error_naming_its_line() {
    let dir = dir_with(&[(
        "t.ndjson",
        "{\"a\": 9007199254740993, \"s\": \"x\"}\n{\"a\": 2}\n{\"a\": 5.7}\n",
    )]);
    let table = "CREATE TABLE t (a BIGINT, s VARCHAR) WITH ('connector' = 'file', 'path' = 't.ndjson', 'format' = 'json')";
    let sql = format!("{table}; SELECT a, s FROM t");
    let out = run(sluice_in(dir.path()).args(["-e", &sql]), "");
    let err = out.failed();
    assert!(
        err.contains(
            "reading table 't' (file json t.ndjson): file t.ndjson line 3: column 'a' is BIGINT but the value is 5.7, a number with a fraction: declare the column DOUBLE or DECIMAL"
        ),
        "{err}"
    );
    // Without the bad row: integers beyond a float's 53 bits are exact, and
    // the table still takes INSERTs.
    std::fs::write(
        dir.path().join("t.ndjson"),
        "{\"a\": 9007199254740993, \"s\": \"x\"}\n",
    )
    .expect("write");
    let sql = format!("{table}; INSERT INTO t VALUES (5, 'w'); SELECT a, s FROM t ORDER BY a");
    let out = run(sluice_in(dir.path()).args(["-e", &sql]), "");
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stdout, "a,s\n5,w\n9007199254740993,x\n", "{out:#?}");
}

#[test]
fn a_bad_json_line_met_while_creating_a_table_is_named_by_file_and_line() {
    let mut text = "{\"a\": 1}\n".repeat(10);
    text.push_str("{\"a\": 2, \"b");
    let dir = dir_with(&[("t.ndjson", &text)]);
    let sql = "CREATE TABLE t (a BIGINT) WITH ('connector' = 'file', 'path' = 't.ndjson', 'format' = 'json')";
    let out = run(sluice_in(dir.path()).args(["-e", sql]), "");
    let err = out.failed();
    assert!(
        err.contains("reading the files of table 't': file t.ndjson line 11: "),
        "{err}"
    );
}

#[test]
fn bad_with_options_are_errors_naming_the_option() {
    let cases = [
        ("'bogus' = '1'", "bogus"),
        ("'format' = 'xml'", "xml"),
        ("'csv.header' = 'maybe'", "csv.header"),
        ("'csv.field-delimiter' = ';;'", "csv.field-delimiter"),
        ("'format' = 'parquet', 'csv.header' = 'false'", "csv"),
    ];
    for (option, named) in cases {
        let sql = format!(
            "CREATE TABLE t (a BIGINT) WITH ('connector' = 'file', 'path' = 'testdata/orders.csv', {option})"
        );
        let err = sluice(&["-e", &sql]).failed().to_string();
        assert!(err.starts_with("Error: <command line>:1:"), "{option}: {err}");
        assert!(err.contains(named), "{option}: {err}");
    }
    let err = sluice(&[
        "-e",
        "CREATE TABLE t (a INT) WITH ('connector' = 'fil', 'path' = 'x.csv')",
    ])
    .failed()
    .to_string();
    assert!(err.contains("'fil'"), "{err}");
}

#[test]
fn bad_data_is_an_error_naming_the_table_not_a_panic() {
    let dir = dir_with(&[("bad.csv", "x,y\n1,2\n3,abc\n")]);
    let out = run(
        sluice_in(dir.path()).args([
            "-e",
            "CREATE TABLE t (x INT, y INT) WITH ('connector' = 'file', 'path' = 'bad.csv', 'format' = 'csv'); \
             SELECT sum(y) FROM t",
        ]),
        "",
    );
    let err = out.failed();
    assert!(err.contains("'t'") && err.contains("abc"), "{err}");
}

#[test]
fn runtime_errors_fail_the_run() {
    let err = sluice(&["-e", "SELECT 1 / 0"]).failed().to_string();
    assert!(err.to_lowercase().contains("divide by zero"), "{err}");
}

// ---------------------------------------------------------------- statements

#[test]
fn a_connector_table_without_columns_takes_the_files_schema() {
    let out = sluice(&[
        "-e",
        "CREATE TABLE products WITH ('connector' = 'file', 'path' = 'testdata/products.parquet'); \
         SELECT count(*) AS n, count(DISTINCT category) AS categories FROM products",
    ]);
    assert_eq!(out.ok(), "n,categories\n200,8\n");
}

#[test]
fn copy_writes_its_file_and_it_reads_back() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let target = dir.path().join("paid.parquet");
    let target = target.to_str().expect("utf-8 path");
    let sql = format!(
        "{ORDERS_DDL}\n\
         COPY (SELECT order_id, amount FROM orders WHERE status = 'completed') TO '{target}' STORED AS PARQUET;\n\
         CREATE TABLE paid (order_id BIGINT, amount DOUBLE) \
         WITH ('connector' = 'file', 'path' = '{target}', 'format' = 'parquet');\n\
         SELECT (SELECT count(*) FROM paid) = (SELECT count(*) FROM orders WHERE status = 'completed') \
                AND (SELECT count(*) FROM paid) > 0 AS same;"
    );
    let out = sluice(&["-e", &sql]);
    // COPY says how many rows it wrote, on stderr: stdout stays the results.
    let completed = std::fs::read_to_string(Path::new(ROOT).join("testdata/orders.csv"))
        .expect("orders.csv")
        .lines()
        .filter(|l| l.contains(",completed"))
        .count();
    assert!(completed > 0);
    assert_eq!(
        out.ok_noting(&format!("{completed} rows written\n")),
        "same\ntrue\n"
    );
}

#[test]
fn insert_into_a_memory_table_takes_effect() {
    let out = sluice(&[
        "-e",
        "CREATE TABLE m (a INT); INSERT INTO m VALUES (1), (2), (3); SELECT sum(a) AS s FROM m",
    ]);
    assert!(out.ok_noting("3 rows written\n").ends_with("s\n6\n"), "{out:#?}");
}

// ---------------------------------------------------------------- sample data

#[test]
fn sample_tables_load_with_their_row_counts() {
    let sql = format!(
        "{ORDERS_DDL}\n\
         CREATE TABLE customers (customer_id BIGINT, name VARCHAR, country VARCHAR, signup_date DATE) \
         WITH ('connector' = 'file', 'path' = 'testdata/customers.csv', 'format' = 'csv');\n\
         CREATE TABLE products (product_id BIGINT, name VARCHAR, category VARCHAR, price DOUBLE) \
         WITH ('connector' = 'file', 'path' = 'testdata/products.parquet', 'format' = 'parquet');\n\
         CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, \
         date_time TIMESTAMP(3)) WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'json');\n\
         SELECT (SELECT count(*) FROM customers) AS customers, (SELECT count(*) FROM products) AS products, \
                (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM bids) AS bids, \
                (SELECT count(*) FROM orders o JOIN customers c USING (customer_id) \
                 JOIN products p USING (product_id)) AS joined, \
                (SELECT count(*) FROM bids WHERE date_time IS NULL) AS null_times;"
    );
    let out = sluice(&["--format", "json", "-e", &sql]);
    let rows = json_lines(out.ok());
    assert_eq!(
        rows,
        vec![serde_json::json!({
            "customers": 500, "products": 200, "orders": 5000, "bids": 5000,
            "joined": 5000, "null_times": 0
        })]
    );
}

#[test]
fn every_example_query_runs() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("queries"))
        .expect("queries/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let relative = file.strip_prefix(ROOT).expect("under the root");
        // A pipeline that reads its orders on stdin is fed the bundled ones,
        // as its header says to run it.
        let text = std::fs::read_to_string(&file).expect("the example reads");
        let stdin = match text.contains("'connector' = 'stdin'") {
            true => std::fs::read_to_string(Path::new(ROOT).join("testdata/orders.csv")).expect("orders.csv"),
            false => String::new(),
        };
        let mut command = sluice_in(Path::new(ROOT));
        command.args(["--format", "table", relative.to_str().expect("utf-8 path")]);
        let out = run(command, &stdin);
        assert_eq!(out.code, Some(0), "{}: {out:#?}", relative.display());
        // Only the counts of rows that COPY and INSERT wrote.
        assert!(
            out.stderr
                .lines()
                .all(|l| l.ends_with(" rows written") || l == "1 row written"),
            "{}: {out:#?}",
            relative.display()
        );
        assert!(out.stdout.lines().count() > 5, "{}: {out:#?}", relative.display());
    }
}

// ---------------------------------------------------------------- pipes

#[test]
fn a_closed_pipe_ends_the_query_quietly_with_success() {
    closed_pipe_succeeds("csv", "value\n");
}

#[test]
fn a_closed_pipe_ends_a_json_query_quietly_with_success() {
    closed_pipe_succeeds("json", "{\"value\":1}\n");
}

#[test]
fn a_table_in_a_pipe_streams_and_a_closed_pipe_ends_it() {
    // Columns as wide as the first batch's values (up to 8192): the table's
    // top border comes out at once, before the other 100 M rows are read.
    closed_pipe_succeeds("table", "+-------+\n");
}

/// Read the first line of a long result, close the pipe like `| head -1`,
/// and expect a quiet, successful exit.
fn closed_pipe_succeeds(format: &str, first_line: &str) {
    let mut child = sluice_in(Path::new(ROOT))
        .args([
            "--format",
            format,
            "-e",
            // Too many rows to format before the first line comes out.
            "SELECT * FROM generate_series(1, 100000000)",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a first line");
    assert_eq!(first, first_line);
    drop(stdout); // like `| head -1`
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sluice") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("sluice kept running after its output closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr is piped"), &mut stderr)
        .expect("stderr reads");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "a closed pipe is not an error: {stderr}");
}

#[test]
fn long_chains_of_union_all_and_or_are_planned_or_refused_never_aborted() {
    // Each of these overflowed the 8 MiB main stack (SIGABRT); planning now
    // runs on a larger one, and a chain past the nesting limit is refused.
    let unions = format!(
        "SELECT count(*) FROM (SELECT 1 AS x{}) t\n",
        " UNION ALL SELECT 1".repeat(1000)
    );
    let ors: Vec<String> = (0..2000).map(|i| format!("v = {i}")).collect();
    let ors = format!(
        "SELECT count(*) FROM (VALUES (1), (2)) t(v) WHERE {}\n",
        ors.join(" OR ")
    );
    let too_many: Vec<String> = (0..20_000).map(|i| format!("v = {i}")).collect();
    let too_many = format!(
        "SELECT count(*) FROM (VALUES (1)) t(v) WHERE {}\n",
        too_many.join(" OR ")
    );
    let dir = dir_with(&[
        ("unions.sql", &unions),
        ("ors.sql", &ors),
        ("too_many.sql", &too_many),
    ]);
    let file = |name: &str| dir.path().join(name).display().to_string();
    assert_eq!(sluice(&[&file("unions.sql")]).ok(), "count(*)\n1001\n");
    assert_eq!(sluice(&[&file("ors.sql")]).ok(), "count(*)\n2\n");
    let run = sluice(&[&file("too_many.sql")]);
    assert!(
        run.failed()
            .contains("this statement nests 20001 operators deep, more than the 10000 Sluice plans"),
        "{run:#?}"
    );
}

#[test]
fn json_output_gives_columns_of_one_name_unique_keys() {
    let sql =
        "CREATE TABLE x (a INT) AS VALUES (1); CREATE TABLE y (a INT) AS VALUES (2); SELECT * FROM x, y";
    assert_eq!(
        sluice(&["--format", "json", "-e", sql]).ok(),
        "{\"a\":1,\"a_1\":2}\n"
    );
}

#[test]
fn an_aggregate_over_the_wrong_type_names_the_function_and_types() {
    // DataFusion calls this an internal error; it is the query's.
    let sql = "CREATE TABLE words (s VARCHAR) AS VALUES ('a'); SELECT sum(s) FROM words";
    let err = sluice(&["-e", sql]).failed().to_string();
    assert!(
        err.contains(
            "sum() cannot take an argument of type Utf8View; it takes Decimal, UInt64, Int64, Float64, Duration or Interval: CAST the argument"
        ) && !err.contains("Internal"),
        "{err}"
    );
}

// ---------------------------------------------------------------- metrics and progress

/// 5,000 generated rows a second apart, replayed as a stream: a filter and
/// a 1 min window per minute.
const GENERATED_WINDOWS: &str = "CREATE TABLE g (k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) \
    WITH ('connector' = 'datagen', 'rows' = '5000', 'fields.k.min' = '1', 'fields.k.max' = '10', \
          'fields.ts.kind' = 'sequence');
    SELECT window_start, count(*) AS n FROM TABLE(TUMBLE(TABLE g, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) \
    WHERE k > 5 GROUP BY window_start, window_end;";

#[test]
fn metrics_are_one_json_object_a_second_with_the_source_rows() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let metrics = dir.path().join("metrics.ndjson");
    let out = sluice(&[
        "--mode",
        "continuous",
        "--metrics",
        metrics.to_str().expect("utf-8 path"),
        "-e",
        GENERATED_WINDOWS,
    ]);
    let windows = out.ok().lines().count() - 1;
    assert_eq!(windows, 84, "5,000 s make 84 minutes: {out:#?}");
    let text = std::fs::read_to_string(&metrics).expect("the metrics file");
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    let last = objects.last().expect("at least the final object");
    for field in [
        "ts",
        "rows_in",
        "rows_out",
        "rows_per_s",
        "watermark",
        "lag_ms",
        "late_rows",
        "null_time_rows",
        "state_rows",
        "state_bytes",
        "operators",
    ] {
        assert!(last.get(field).is_some(), "{field} missing: {last}");
    }
    // Every row the source made was counted, and every row printed; the
    // state, emptied at the end, is measured in bytes.
    assert_eq!(last["rows_in"], 5000, "{last}");
    assert_eq!(last["state_bytes"], 0, "{last}");
    assert_eq!(last["rows_out"], windows, "{last}");
    assert_eq!(last["late_rows"], 0, "{last}");
    let operators = last["operators"].as_array().expect("a list of operators");
    assert!(operators.len() >= 2, "{last}");
    for operator in operators {
        assert!(
            operator["name"].is_string()
                && operator["state_rows"].is_u64()
                && operator["state_bytes"].is_u64(),
            "{operator}"
        );
    }
    // The first operator takes every source row, the filter keeps some, the
    // last one gives the query's rows.
    assert_eq!(operators[0]["rows_in"], 5000, "{last}");
    let kept = operators[0]["rows_out"].as_u64().expect("a count");
    assert!(kept > 0 && kept < 5000, "{last}");
    assert_eq!(
        operators.last().expect("an operator")["rows_out"],
        windows,
        "{last}"
    );

    // A second run appends to the file.
    sluice(&[
        "--mode",
        "continuous",
        "--metrics",
        metrics.to_str().expect("utf-8 path"),
        "-e",
        GENERATED_WINDOWS,
    ])
    .ok();
    let again = std::fs::read_to_string(&metrics).expect("the metrics file");
    assert!(again.lines().count() > objects.len() && again.starts_with(&text));
}

#[test]
fn rows_left_out_for_a_null_event_time_are_in_the_metrics_and_the_status_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let metrics = dir.path().join("metrics.ndjson");
    // Slowed so that the status line is drawn while the query runs.
    let sql = "CREATE TABLE slow (k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) \
         WITH ('connector' = 'datagen', 'rows' = '1500', 'rows-per-second' = '1000', \
               'fields.ts.kind' = 'sequence', 'fields.ts.null-rate' = '0.1');
         SELECT window_start, count(*) AS n FROM TABLE(TUMBLE(TABLE slow, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) \
         GROUP BY window_start, window_end;";
    let out = sluice(&[
        "--mode",
        "continuous",
        "--progress",
        "--metrics",
        metrics.to_str().expect("utf-8 path"),
        "-e",
        sql,
    ]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    // The report at the end says how many; the metrics agree.
    let reported: u64 = out
        .stderr
        .lines()
        .find_map(|l| l.split_once(" rows had a NULL event time (ts)"))
        .and_then(|(n, _)| n.parse().ok())
        .expect("the NULL time report");
    assert!(reported > 0, "{out:#?}");
    let text = std::fs::read_to_string(&metrics).expect("the metrics file");
    let last: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("an object")).expect("JSON");
    assert_eq!(last["null_time_rows"], reported, "{last}");
    assert!(
        out.stderr.contains(" · late 0 · NULL time "),
        "the status line counts them: {out:#?}"
    );
    // A query without any shows none.
    let plain = sluice(&["--mode", "continuous", "--progress", "-e", GENERATED_WINDOWS]);
    assert!(!plain.stderr.contains("NULL time"), "{plain:#?}");
}

#[test]
fn progress_and_the_lag_alert_go_to_stderr() {
    let out = sluice(&["--mode", "continuous", "--progress", "-e", GENERATED_WINDOWS]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    // The status line (drawn over itself, cleared at the end), then the summary.
    assert!(out.stderr.contains(" rows/s) · out "), "{out:#?}");
    assert!(out.stderr.contains("\r\x1b[KQuery ended after "), "{out:#?}");
    assert!(
        out.stderr
            .ends_with(": 5,000 rows in, 84 rows out, 0 rows late\n"),
        "{out:#?}"
    );
    assert_eq!(out.stdout.lines().count(), 85, "{out:#?}");

    // Generated times are of 2015: the lag is years, above the limit. The
    // generator is slowed so that the query is looked at while it runs.
    let alerting = "SET 'sluice.alert.lag' = '30 s';
         CREATE TABLE slow (k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) \
         WITH ('connector' = 'datagen', 'rows' = '2000', 'rows-per-second' = '1000', \
               'fields.ts.kind' = 'sequence');
         SELECT k FROM slow WHERE k = 0;";
    let out = sluice(&["--mode", "continuous", "-e", alerting]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let alerts: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("Warning: lag "))
        .collect();
    // Once when the lag goes above the limit (again only every 10 s).
    assert_eq!(alerts.len(), 1, "{out:#?}");
    assert!(
        alerts[0].contains(" d is above sluice.alert.lag (30.0 s): the watermark is at 2015-07-15"),
        "{out:#?}"
    );
    // Without the setting, nothing.
    let quiet = sluice(&[
        "--mode",
        "continuous",
        "-e",
        &alerting.replace("'30 s'", "'none'"),
    ]);
    assert_eq!(quiet.stderr, "", "{quiet:#?}");
}

#[test]
fn explain_analyze_runs_a_bounded_replay_and_counts_each_operator() {
    let sql = GENERATED_WINDOWS.replace("SELECT window_start", "EXPLAIN ANALYZE SELECT window_start");
    let out = sluice(&["--mode", "continuous", "--format", "json", "-e", &sql]);
    let rows = json_lines(out.ok());
    let plans: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["plan_type"].as_str().expect("text"),
                r["plan"].as_str().expect("text"),
            )
        })
        .collect();
    assert!(
        plans[0]
            .1
            .starts_with("continuous (sluice.mode): replaying bounded sources g"),
        "{plans:?}"
    );
    // The filter takes every generated row and keeps about half; the
    // window aggregate gives one row per minute.
    let filter = plans
        .iter()
        .find(|(_, p)| p.starts_with("Filter: k@0 > 5"))
        .expect("the filter");
    assert!(filter.1.contains(": rows in 5000, rows out "), "{filter:?}");
    let aggregate = plans
        .iter()
        .find(|(_, p)| p.starts_with("WindowAggregate"))
        .expect("the window aggregate");
    assert!(
        aggregate.1.ends_with(", state rows at the end 0") && aggregate.1.contains(", rows out 84, "),
        "{aggregate:?}"
    );
    // Its time, and the state it held at its largest (windows open while
    // the replay ran), read after every push: more than it ends with.
    let peak = regex::Regex::new(r", (\d+\.\d) ms, peak state (\d+) rows \((\d+) bytes\)")
        .expect("a pattern")
        .captures(aggregate.1)
        .unwrap_or_else(|| panic!("no time and peak in {aggregate:?}"));
    assert!(peak[2].parse::<u64>().expect("rows") > 0, "{aggregate:?}");
    assert!(peak[3].parse::<u64>().expect("bytes") > 0, "{aggregate:?}");
    let total = plans.last().expect("a last row");
    assert_eq!(total.0, "continuous query");
    assert!(
        total.1.starts_with("rows in 5000, rows out 84, late rows 0, "),
        "{total:?}"
    );

    // A query that does not end cannot be run to its end.
    let out = sluice(&[
        "-e",
        "CREATE TABLE b (price BIGINT) WITH ('connector' = 'nexmark', 'table' = 'bid'); EXPLAIN ANALYZE SELECT * FROM b",
    ]);
    assert!(
        out.failed()
            .contains("EXPLAIN ANALYZE runs the query to its end, and this one does not end"),
        "{out:#?}"
    );
}

#[test]
fn sql_given_to_e_may_start_with_a_comment_or_a_minus() {
    let out = sluice(&["-e", "-- the daily job\nSELECT 1 AS one", "-e", "-1 AS minus"]);
    // The second is not SQL on its own: it fails, as SQL, not as an option.
    assert!(out.stdout.starts_with("one\n1\n"), "{out:#?}");
    assert!(out.stderr.starts_with("Error: <command line #2>"), "{out:#?}");
    let out = sluice(&["-e", "-- only a comment\nSELECT 2 AS two"]);
    assert_eq!(out.ok(), "two\n2\n");
}

#[test]
fn an_s3_path_without_credentials_says_which_settings_give_them() {
    let mut command = sluice_in(Path::new(ROOT));
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_SKIP_SIGNATURE",
    ] {
        command.env_remove(name);
    }
    command.args([
        "-e",
        "CREATE TABLE t (a BIGINT) WITH ('connector' = 'file', 'path' = 's3://some-bucket/x.csv', 'format' = 'csv')",
    ]);
    let out = run(command, "");
    let stderr = out.failed();
    // Unless this machine has an instance role (then S3 itself answers).
    if !stderr.contains("169.254.169.254") && !stderr.contains("no AWS credentials") {
        return;
    }
    assert!(
        stderr.contains("no AWS credentials were found for 's3://some-bucket/x.csv'")
            && stderr.contains("'s3.access_key_id'")
            && stderr.contains("AWS_ACCESS_KEY_ID"),
        "{stderr}"
    );
}

#[test]
fn a_long_batch_query_shows_a_progress_bar_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().expect("a temp dir");
    for part in 0..2 {
        let mut text = String::from("a,b\n");
        for i in 0..150_000 {
            text.push_str(&format!("{i},{}\n", i * 7 % 1000));
        }
        std::fs::write(dir.path().join(format!("part{part}.csv")), text).expect("write a part");
    }
    // Slow on purpose: an md5 per row keeps it running past the first second.
    let sql = format!(
        "CREATE TABLE t (a BIGINT, b BIGINT) WITH ('connector' = 'file', 'path' = '{}/', 'format' = 'csv');
         SELECT count(*) AS n FROM t WHERE md5(CAST(a * b AS VARCHAR)) LIKE 'ab%' OR md5(CAST(a AS VARCHAR)) LIKE 'cd%'",
        dir.path().display()
    );
    let shown = sluice(&["--progress", "-e", &sql]);
    assert_eq!(shown.code, Some(0), "{shown:#?}");
    let quiet = sluice(&["-e", &sql]);
    // The same rows; in a pipe no bar unless asked.
    assert_eq!(quiet.ok(), shown.stdout);
    // Drawn over itself while it runs (the bar is due after a second; the
    // query takes several), and cleared at the end.
    assert!(
        shown.stderr.contains("] ") && shown.stderr.contains(" of 2 file parts (3.0 MB) · "),
        "{shown:#?}"
    );
    assert!(
        shown.stderr.contains("% 1 of 2 file parts") || shown.stderr.contains("% 0 of 2 file parts"),
        "{shown:#?}"
    );
    assert!(shown.stderr.ends_with("\r\x1b[K"), "{shown:#?}");
}

#[test]
fn a_continuous_insert_says_how_many_rows_it_wrote_at_its_end() {
    let out = sluice(&[
        "--mode",
        "continuous",
        "-e",
        "CREATE TABLE g (k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) \
         WITH ('connector' = 'datagen', 'rows' = '5000', 'fields.ts.kind' = 'sequence');
         CREATE TABLE m (k BIGINT);
         INSERT INTO m SELECT k FROM g WHERE k > 0;
         SET sluice.mode = 'batch';
         SELECT count(*) AS n FROM m",
    ]);
    let stdout = out.stdout.clone();
    let written = stdout
        .strip_prefix("n\n")
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("the table's count");
    assert!(written > 0 && written < 5000, "{out:#?}");
    assert_eq!(out.ok_noting(&format!("{written} rows written\n")), stdout);
}

#[test]
fn progress_takes_a_value_only_after_an_equals_sign() {
    // `--progress q.sql` is the flag and a file, not a value.
    let on = sluice(&["--progress", "queries/quickstart.sql"]);
    assert_eq!(on.code, Some(0), "{on:#?}");
    let off = sluice(&["--progress=false", "queries/quickstart.sql"]);
    assert_eq!(off.ok(), on.stdout);
}

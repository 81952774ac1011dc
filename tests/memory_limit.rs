//! The continuous executor's state (windows, sessions, joins, ...) counts
//! against DataFusion's memory pool (`datafusion.runtime.memory_limit`), or
//! without one against a default derived from what the process may use:
//! state that does not fit is an error naming the operator and its state,
//! not a process that aborts.

use std::process::Command;

const QUERY: &str = "CREATE TABLE dg (id BIGINT, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
    WITH ('connector' = 'datagen', 'rows' = '300000', 'fields.id.kind' = 'sequence', \
    'fields.ts.min' = '2015-07-15 00:00:00', 'fields.ts.max' = '2015-07-15 23:59:59'); \
    SELECT window_start, count(*) AS keys FROM (SELECT window_start, id, count(*) AS n \
    FROM TABLE(TUMBLE(TABLE dg, DESCRIPTOR(ts), INTERVAL '1' DAY)) GROUP BY window_start, window_end, id) GROUP BY window_start";

/// One session per id, all open until the end: their rows wait in state.
const SESSIONS: &str = "CREATE TABLE dg (id BIGINT, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
    WITH ('connector' = 'datagen', 'rows' = '300000', 'fields.id.kind' = 'sequence', \
    'fields.ts.min' = '2015-07-15 00:00:00', 'fields.ts.max' = '2015-07-15 00:00:59'); \
    SELECT count(*) AS sessions FROM (SELECT id, count(*) AS n \
    FROM TABLE(SESSION(TABLE dg PARTITION BY id, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY id, window_start, window_end)";

fn run_query(setting: &str, query: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--mode", "continuous", "-e", setting, "-e", query])
        .output()
        .expect("sluice runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `query` under `SET datafusion.runtime.memory_limit = 'small'` fails with
/// an error holding every one of `expected`; under 1G it runs to its 300000.
fn check_limit(query: &str, small: &str, expected: &[&str]) {
    let (ok, _, err) = run_query(&format!("SET datafusion.runtime.memory_limit = '{small}'"), query);
    assert!(!ok);
    assert!(expected.iter().all(|e| err.contains(e)), "{err}");
    let (ok, out, err) = run_query("SET datafusion.runtime.memory_limit = '1G'", query);
    assert!(ok, "{err}");
    assert!(out.contains("300000"), "{out}");
}

#[test]
fn window_state_beyond_the_memory_limit_is_an_error_naming_it() {
    check_limit(
        QUERY,
        "2M",
        &[
            "the continuous WindowAggregate's state (window_partials: 1 open panes,",
            "does not fit in datafusion.runtime.memory_limit (2097152 bytes)",
        ],
    );
}

#[test]
fn session_rows_beyond_the_memory_limit_are_an_error_naming_them() {
    check_limit(
        SESSIONS,
        "1M",
        &[
            "the continuous SessionAggregate's state (session_rows: ",
            "rows of open sessions,",
            "does not fit in datafusion.runtime.memory_limit (1048576 bytes)",
        ],
    );
}

/// A join of two streams without a time bound: every row waits in state.
const JOIN: &str = "CREATE TABLE a (id BIGINT, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
    WITH ('connector' = 'datagen', 'rows' = '300000', 'fields.id.kind' = 'sequence', \
    'fields.ts.min' = '2015-07-15 00:00:00', 'fields.ts.max' = '2015-07-15 23:59:59'); \
    CREATE TABLE b (id BIGINT, w INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
    WITH ('connector' = 'datagen', 'rows' = '300000', 'fields.id.kind' = 'sequence', \
    'fields.ts.min' = '2015-07-15 00:00:00', 'fields.ts.max' = '2015-07-15 23:59:59'); \
    SELECT count(*) AS pairs FROM a JOIN b ON a.id = b.id";

#[test]
fn join_rows_beyond_the_memory_limit_are_an_error_naming_them() {
    check_limit(
        JOIN,
        "2M",
        &[
            "the continuous StreamJoin's state (join_left and join_right: ",
            "does not fit in datafusion.runtime.memory_limit (2097152 bytes)",
            "SET 'state.ttl'",
        ],
    );
}

/// Without a memory_limit, under `ulimit -v` (the address space a process
/// may map), the continuous state still has a limit: the default one, a
/// third of what the limit leaves the process. Its state outgrows that long
/// before an allocation fails, so the query ends with an error naming the
/// operator, exit code 1, not an abort (SIGABRT, "memory allocation of N
/// bytes failed"). Two worker threads keep the stacks the process maps
/// alike on any machine.
#[test]
fn under_ulimit_v_without_a_memory_limit_the_state_is_an_error_not_an_abort() {
    let query = QUERY.replace("'rows' = '300000'", "'rows' = '10000000'");
    let out = Command::new("sh")
        .args(["-c", "ulimit -v 1200000 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .args(["--mode", "continuous", "-e", &query])
        .env("TOKIO_WORKER_THREADS", "2")
        .output()
        .expect("sluice runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{:?}: {err}", out.status);
    assert!(
        err.contains("the continuous WindowAggregate's state (window_partials: 1 open panes,")
            && err.contains("does not fit in the default memory limit of continuous state (")
            && err.contains("a third of the address space ulimit -v leaves the process"),
        "{err}"
    );
}

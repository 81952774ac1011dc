//! Stateful operators resumed from a checkpoint, through the `sluice`
//! binary: a query over followed files is stopped by SIGINT (which takes a
//! checkpoint), rows are appended, and the query run again with the same
//! `--checkpoint-dir` goes on with the state it had. A session open across
//! the stop and a join row kept across it still give their results, which a
//! rerun without the state (it skips the rows read before) could not.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// One run of a query, its output lines as they come.
struct Run {
    child: Child,
    lines: Receiver<String>,
}

impl Run {
    fn start(dir: &Path, sql: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .current_dir(dir)
            .args(["--format", "csv", "--checkpoint-dir", "chk", "-e", sql])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sluice starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.expect("a line")).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line of output.
    fn next(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = self.child.kill();
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("no output line within 30 s; stderr:\n{err}");
            }
        }
    }

    /// Stop it with SIGINT (a last checkpoint), and check it said so.
    fn stop(self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let out = self.child.wait_with_output().expect("sluice ends");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("stopped by SIGINT"), "{err}");
        let rest = String::from_utf8_lossy(&out.stdout);
        assert!(rest.is_empty(), "no more rows after the stop: {rest}");
        let mut more = self.lines.try_iter().peekable();
        assert!(
            more.peek().is_none(),
            "no more rows: {:?}",
            more.collect::<Vec<_>>()
        );
    }
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    file.write_all(text.as_bytes()).expect("append");
}

/// A row `{k, ts, v}` at `second`.
fn row(k: i64, second: u32, v: &str) -> String {
    format!("{{\"k\":{k},\"ts\":\"2024-01-01 00:00:{second:02}\",\"v\":\"{v}\"}}\n")
}

fn table(name: &str, lag: u32) -> String {
    format!(
        "CREATE TABLE {name} (k BIGINT, ts TIMESTAMP(3), v VARCHAR, WATERMARK FOR ts AS ts - INTERVAL '{lag}' SECOND) \
         WITH ('connector' = 'file', 'path' = '{name}.ndjson', 'format' = 'json', 'follow' = 'true');"
    )
}

#[test]
fn a_session_open_at_a_checkpoint_goes_on_after_the_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hits = dir.path().join("hits.ndjson");
    let sql = format!(
        "{} SELECT k, window_start, window_end, count(*) AS n \
         FROM TABLE(SESSION(TABLE hits PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
         GROUP BY k, window_start, window_end",
        table("hits", 0)
    );
    // The row at 20 s closes both sessions before it and opens one for k = 1.
    append(
        &hits,
        &[row(1, 0, "a"), row(1, 3, "b"), row(2, 1, "c"), row(1, 20, "d")].concat(),
    );
    let mut run = Run::start(dir.path(), &sql);
    assert_eq!(run.next(), "k,window_start,window_end,n");
    let mut closed = [run.next(), run.next()];
    closed.sort();
    assert_eq!(
        closed,
        [
            "1,2024-01-01T00:00:00,2024-01-01T00:00:08,2",
            "2,2024-01-01T00:00:01,2024-01-01T00:00:06,1"
        ]
    );
    run.stop();

    // The open session [20 s, 25 s) takes the row at 23 s; the row at 40 s
    // closes it with both rows.
    append(&hits, &[row(1, 23, "e"), row(2, 40, "f")].concat());
    let mut run = Run::start(dir.path(), &sql);
    assert_eq!(run.next(), "k,window_start,window_end,n");
    assert_eq!(run.next(), "1,2024-01-01T00:00:20,2024-01-01T00:00:28,2");
    run.stop();
}

#[test]
fn a_join_row_kept_at_a_checkpoint_matches_after_the_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a.ndjson"), dir.path().join("b.ndjson"));
    let sql = format!(
        "{} {} SELECT a.v AS av, b.v AS bv FROM a JOIN b ON a.k = b.k \
         AND a.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts + INTERVAL '5' SECOND",
        table("a", 10),
        table("b", 10)
    );
    // Each file's last rows make a pair: once it is out, both files were read.
    append(&a, &[row(1, 10, "a1"), row(3, 10, "a3")].concat());
    append(&b, &[row(2, 10, "b2"), row(3, 11, "b3")].concat());
    let mut run = Run::start(dir.path(), &sql);
    assert_eq!(run.next(), "av,bv");
    assert_eq!(run.next(), "a3,b3");
    run.stop();

    // a1 waits in the join's state: the new right row 2 s before it matches.
    append(&b, &row(1, 8, "b1"));
    let mut run = Run::start(dir.path(), &sql);
    assert_eq!(run.next(), "av,bv");
    assert_eq!(run.next(), "a1,b1");
    run.stop();
}

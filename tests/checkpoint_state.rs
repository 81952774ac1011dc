//! Operators' state across a `kill -9`, through the binary: a continuous
//! query over a throttled, bounded Nexmark stream runs with
//! `--checkpoint-dir`, is killed once a checkpoint is complete, and runs
//! again. What the second run prints must be rows of the uninterrupted run
//! (a running sum, a sliding sum and a row number go on from where they
//! were, a dedup remembers its keys, a window Top-N its windows), and both
//! runs together print every row of it: stdout is at-least-once from the
//! last checkpoint, so rows after it may come twice, never changed.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 40,000 events at 8,000 a second: a run takes about 5 s.
const BIDS: &str = "
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
  WITH ('connector' = 'nexmark', 'table' = 'bid', 'events' = '40000', 'events.per.second' = '1000',
        'rate' = '8000');
SET 'checkpoint.interval' = '500 ms';
";

fn sluice(dir: &Path, script: &Path, checkpoints: Option<&Path>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .current_dir(dir)
        .args(["--mode", "continuous", "--format", "csv"])
        .arg(script);
    if let Some(checkpoints) = checkpoints {
        command.arg("--checkpoint-dir").arg(checkpoints);
    }
    command
}

/// Whether a checkpoint in `dir` is complete (its manifest is written last).
fn has_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join("_manifest.json").exists())
    })
}

/// The rows of a run's output, without its header.
fn rows(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("the output");
    text.lines().skip(1).map(str::to_string).collect()
}

fn check_resumes(name: &str, query: &str) {
    let dir = std::env::temp_dir().join(format!("sluice-checkpoint-state-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a work directory");
    let script = dir.join("query.sql");
    std::fs::write(&script, format!("{BIDS}{query}")).expect("the script");
    let checkpoints = dir.join("checkpoints");
    let output = |file: &str| std::fs::File::create(dir.join(file)).expect("an output file");

    let straight = sluice(&dir, &script, None)
        .stdout(output("straight.csv"))
        .status()
        .expect("runs");
    assert!(straight.success(), "{name}: the uninterrupted run fails");

    let mut first = sluice(&dir, &script, Some(&checkpoints))
        .stdout(output("first.csv"))
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let started = Instant::now();
    while !has_checkpoint(&checkpoints) && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().expect("killed"); // SIGKILL
    first.wait().expect("ended");

    let second = sluice(&dir, &script, Some(&checkpoints))
        .stdout(output("second.csv"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        second.status.success(),
        "{name}: the restarted run fails: {stderr}"
    );
    assert!(stderr.contains("resumed from checkpoint"), "{name}: {stderr}");

    let all = rows(&dir.join("straight.csv"));
    let (before, after) = (rows(&dir.join("first.csv")), rows(&dir.join("second.csv")));
    let mut left: HashMap<&str, usize> = HashMap::new();
    for row in &all {
        *left.entry(row).or_default() += 1;
    }
    for row in &after {
        let count = left.get_mut(row.as_str());
        assert!(
            count.is_some_and(|c| *c > 0),
            "{name}: after the restart '{row}' is not a row of the uninterrupted run"
        );
        if let Some(count) = left.get_mut(row.as_str()) {
            *count -= 1;
        }
    }
    let both: BTreeSet<&String> = before.iter().chain(&after).collect();
    let expected: BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        both, expected,
        "{name}: the two runs together do not print the uninterrupted run's rows"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn over_aggregates_go_on_after_a_kill() {
    check_resumes(
        "over",
        "SELECT bidder % 5 AS k, date_time, price,
           sum(price) OVER (PARTITION BY bidder % 5 ORDER BY date_time) AS running,
           sum(price) OVER (PARTITION BY bidder % 5 ORDER BY date_time
             ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS last4,
           row_number() OVER (PARTITION BY bidder % 5 ORDER BY date_time) AS rn
         FROM bid;",
    );
}

#[test]
fn a_dedup_remembers_its_keys_after_a_kill() {
    check_resumes(
        "dedup",
        "SET 'state.ttl' = '3 s';
         SELECT auction, bidder, price, date_time FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder % 300 ORDER BY date_time) AS rn FROM bid)
         WHERE rn = 1;",
    );
}

#[test]
fn a_window_top_n_keeps_its_windows_after_a_kill() {
    check_resumes(
        "window-top-n",
        "SELECT * FROM (
           SELECT window_start, window_end, auction, price,
             ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC, auction) AS rn
           FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '2' SECOND)))
         WHERE rn <= 3;",
    );
}

//! Output files through the `sluice` binary: batch `COPY` and `INSERT`
//! replace their target only when they succeed (a failed or killed run
//! leaves the old output and no half file), a `file` table can be created
//! where nothing exists yet, and a continuous `INSERT` commits part files
//! while it runs and when it is stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sluice(dir: &Path, sql: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(dir)
        .args(["--format", "csv", "-e", sql])
        .stdin(Stdio::null())
        .output()
        .expect("the sluice binary runs")
}

fn spawn(dir: &Path, sql: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(dir)
        .args(["--format", "csv", "-e", sql])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "sluice failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, relative, sorted (hidden staging included).
fn files(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("a name").to_string_lossy().into_owned();
        if path.is_dir() {
            out.extend(files(&path).into_iter().map(|f| format!("{name}/{f}")));
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}

const NUMBERS: &str = "CREATE TABLE src (n BIGINT) WITH ('connector' = 'datagen', 'rows' = '300000', \
    'fields.n.kind' = 'sequence');";

#[test]
fn a_copy_that_fails_midway_leaves_the_old_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    ok(&sluice(
        dir.path(),
        &format!("{NUMBERS} COPY (SELECT n FROM src) TO 'out.csv'"),
    ));
    let before = std::fs::read(dir.path().join("out.csv")).expect("written");
    assert_eq!(before.iter().filter(|b| **b == b'\n').count(), 300_001);
    // Division by zero at row 250,000: rows before it were already written.
    let failed = sluice(
        dir.path(),
        &format!("{NUMBERS} COPY (SELECT 10 / (n - 250000) AS q FROM src) TO 'out.csv'"),
    );
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("Divide by zero"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    let after = std::fs::read(dir.path().join("out.csv")).expect("still there");
    assert!(after == before, "the old file is intact");
    assert_eq!(files(dir.path()), vec!["out.csv"], "no staging or half file left");
}

#[test]
fn a_killed_copy_leaves_the_old_file_and_the_next_run_cleans_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    ok(&sluice(dir.path(), "COPY (SELECT 1 AS n) TO 'out.parquet'"));
    let before = std::fs::read(dir.path().join("out.parquet")).expect("written");
    let big = "CREATE TABLE bid WITH ('connector' = 'nexmark', 'table' = 'bid', 'events' = '50000000'); \
        COPY (SELECT * FROM bid) TO 'out.parquet'";
    let mut child = spawn(dir.path(), big);
    // Kill it once it has started writing (or after 20 s, whatever it did).
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) && files(dir.path()).len() < 2 {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let after = std::fs::read(dir.path().join("out.parquet")).expect("still there");
    assert!(after == before, "the old file is intact after kill -9");
    // The next write of the same file removes what the killed run left.
    ok(&sluice(dir.path(), "COPY (SELECT 2 AS n) TO 'out.parquet'"));
    assert_eq!(files(dir.path()), vec!["out.parquet"]);
    let out = ok(&sluice(
        dir.path(),
        "CREATE TABLE t WITH ('connector' = 'file', 'path' = 'out.parquet'); SELECT n FROM t",
    ));
    assert_eq!(out, "n\n2\n");
}

#[test]
fn copy_to_a_directory_replaces_its_files_unless_appending() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("d")).expect("mkdir");
    std::fs::write(dir.path().join("d").join("README.txt"), "not ours").expect("write");
    let copy = format!("{NUMBERS} COPY (SELECT n FROM src) TO 'd/' STORED AS CSV");
    ok(&sluice(dir.path(), &copy));
    ok(&sluice(dir.path(), &copy));
    let count = "CREATE TABLE t (n BIGINT) WITH ('connector' = 'file', 'path' = 'd', 'format' = 'csv'); \
        SELECT count(*) AS c FROM t";
    assert_eq!(
        ok(&sluice(dir.path(), count)),
        "c\n300000\n",
        "run twice: one copy"
    );
    ok(&sluice(dir.path(), &format!("{copy} OPTIONS ('append' 'true')")));
    assert_eq!(ok(&sluice(dir.path(), count)), "c\n600000\n", "appended");
    assert!(
        files(dir.path()).contains(&"d/README.txt".to_string()),
        "other files stay"
    );
    assert!(!files(dir.path()).iter().any(|f| f.contains(".sluice-staging")));
    let refused = sluice(
        dir.path(),
        "COPY (SELECT 1 AS n) TO 'x.csv' OPTIONS ('append' 'true')",
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("copy to a directory"));
}

#[test]
fn insert_into_a_new_path_an_empty_directory_and_a_single_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("empty")).expect("mkdir");
    std::fs::write(dir.path().join("one.csv"), "n\n1\n").expect("write");
    for (path, format) in [
        ("new", "csv"),
        ("empty", "json"),
        ("one.csv", "csv"),
        ("one.parquet", "parquet"),
    ] {
        let table = format!(
            "CREATE TABLE t (n BIGINT) WITH ('connector' = 'file', 'path' = '{path}', 'format' = '{format}');"
        );
        ok(&sluice(
            dir.path(),
            &format!("{table} INSERT INTO t VALUES (2), (3); INSERT INTO t VALUES (4)"),
        ));
        let rows = ok(&sluice(
            dir.path(),
            &format!("{table} SELECT n FROM t ORDER BY n"),
        ));
        let expected = if path == "one.csv" {
            "n\n1\n2\n3\n4\n"
        } else {
            "n\n2\n3\n4\n"
        };
        assert_eq!(rows, expected, "{path}");
    }
    // A single file keeps its rows in order: the old ones, then the new.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("one.csv")).expect("read"),
        "n\n1\n2\n3\n4\n"
    );
    assert!(!files(dir.path()).iter().any(|f| f.contains(".sluice-staging")));
    // INSERT OVERWRITE replaces.
    let table = "CREATE TABLE t (n BIGINT) WITH ('connector' = 'file', 'path' = 'new', 'format' = 'csv');";
    ok(&sluice(
        dir.path(),
        &format!("{table} INSERT OVERWRITE t VALUES (9)"),
    ));
    assert_eq!(
        ok(&sluice(dir.path(), &format!("{table} SELECT n FROM t"))),
        "n\n9\n"
    );
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open");
    f.write_all(text.as_bytes()).expect("append");
}

/// The values of column `n` in every committed CSV file under `dir`.
fn committed(dir: &Path) -> Vec<i64> {
    let mut values: Vec<i64> = files(dir)
        .iter()
        .filter(|f| !f.starts_with(".sluice-staging"))
        .flat_map(|f| {
            std::fs::read_to_string(dir.join(f))
                .expect("read")
                .lines()
                .skip(1)
                .map(|l| l.parse::<i64>().expect("a number"))
                .collect::<Vec<_>>()
        })
        .collect();
    values.sort();
    values
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn continuous_insert(rollover: &str) -> String {
    format!(
        "CREATE TABLE src (n BIGINT) WITH ('connector' = 'file', 'path' = 'in.ndjson', 'format' = 'json', 'follow' = 'true'); \
         CREATE TABLE out (n BIGINT) WITH ('connector' = 'file', 'path' = 'out', 'format' = 'csv', \
           'sink.rolling-policy.rollover-interval' = '{rollover}'); \
         INSERT INTO out SELECT n * 10 FROM src"
    )
}

fn sigterm(child: Child) -> Output {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    child.wait_with_output().expect("sluice ends")
}

#[test]
fn a_continuous_insert_commits_part_files_while_it_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input: PathBuf = dir.path().join("in.ndjson");
    append(&input, "{\"n\":1}\n{\"n\":2}\n");
    let child = spawn(dir.path(), &continuous_insert("200 ms"));
    let out = dir.path().join("out");
    wait_for("the first part", || committed(&out) == vec![10, 20]);
    append(&input, "{\"n\":3}\n");
    wait_for("the second part", || committed(&out) == vec![10, 20, 30]);
    let parts = files(&out).iter().filter(|f| f.ends_with(".csv")).count();
    assert!(parts >= 2, "parts roll over: {:?}", files(&out));
    let output = sigterm(child);
    assert!(String::from_utf8_lossy(&output.stderr).contains("stopped by SIGTERM"));
    assert_eq!(committed(&out), vec![10, 20, 30]);
}

#[test]
fn sigterm_commits_the_open_part() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input: PathBuf = dir.path().join("in.ndjson");
    append(&input, "{\"n\":1}\n{\"n\":2}\n");
    let child = spawn(dir.path(), &continuous_insert("1 h"));
    let out = dir.path().join("out");
    // The rows reach the sink (a followed file is polled every 100 ms) but
    // are not visible: the part has not rolled over.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(committed(&out), Vec::<i64>::new());
    let output = sigterm(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(committed(&out), vec![10, 20]);
    assert!(
        !files(&out).iter().any(|f| f.contains(".sluice-staging")),
        "{:?}",
        files(&out)
    );
}

#[test]
fn a_bad_rollover_interval_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = sluice(
        dir.path(),
        "CREATE TABLE out (n BIGINT) WITH ('connector' = 'file', 'path' = 'out', 'format' = 'csv', \
         'sink.rolling-policy.rollover-interval' = 'soon')",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a duration such as '10 s'"));
}

/// A full disk says so. Needs a small tmpfs, which only root can mount: the
/// test says on stderr when it cannot run.
#[test]
fn a_full_disk_says_no_space_left_on_device() {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&disk)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("a_full_disk_says_no_space_left_on_device: cannot mount a tmpfs here (not root); not run");
        return;
    }
    let bids = "CREATE TABLE src WITH ('connector' = 'nexmark', 'table' = 'bid', 'events' = '200000');";
    let insert = sluice(
        &disk,
        &format!(
            "{bids} CREATE TABLE sink (auction BIGINT, url VARCHAR) WITH ('connector' = 'file', 'path' = 'out', 'format' = 'csv'); \
             INSERT INTO sink SELECT auction, url FROM src"
        ),
    );
    let copy = sluice(&disk, &format!("{bids} COPY (SELECT * FROM src) TO 'out.csv'"));
    let leftovers = files(&disk);
    let _ = Command::new("umount").arg(&disk).status();
    for out in [insert, copy] {
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("No space left on device"), "{stderr}");
    }
    assert!(
        leftovers.is_empty(),
        "nothing half-written is left: {leftovers:?}"
    );
}

#[test]
fn a_continuous_insert_stopped_by_a_bad_row_commits_the_rows_before_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sql = "CREATE TABLE src (n BIGINT) WITH ('connector' = 'stdin', 'format' = 'json'); \
        CREATE TABLE out (n BIGINT) WITH ('connector' = 'file', 'path' = 'out.csv', 'format' = 'csv'); \
        INSERT INTO out SELECT n FROM src";
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(dir.path())
        .args(["-e", sql])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"{\"n\":1}\n{\"n\":2}\n{\"n\":\"x\"}\n{\"n\":4}\n")
            .expect("write");
    }
    let out = child.wait_with_output().expect("sluice ends");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin line 3"));
    // A single file: written whole, with the rows before the bad one.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.csv")).expect("committed"),
        "n\n1\n2\n"
    );
    assert_eq!(files(dir.path()), vec!["out.csv"]);
}

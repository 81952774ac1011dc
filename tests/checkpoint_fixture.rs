//! Checkpoints written by an earlier build still load: each fixture under
//! `tests/fixtures/checkpoints/` is the checkpoint directory and the file
//! sink's output of a run that died just after its third checkpoint's
//! manifest (`SLUICE_TEST_CRASH=after-manifest:3`). The test copies one to a
//! temporary directory and runs the same query again: it must resume from
//! that checkpoint and finish with exactly the batch result in the sink. A
//! change to the checkpoint format (or to a plan's fingerprint) that breaks
//! old checkpoints fails here; if the break is meant, say so in the README
//! and write the fixtures again with `SLUICE_BLESS=1 cargo test --test
//! checkpoint_fixture`.
//!
//! The same resume is the check after damage: the last checkpoint's state
//! file truncated, overwritten or deleted, and a checkpoint directory on a
//! disk that fills up mid-run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Two paced generators (12,000 orders and their payments over 120 s of
/// event time, 3,000 rows a second of wall-clock time in batches of 500), so
/// a checkpoint every 200 ms falls mid-stream.
const TABLES: &str = "SET 'datafusion.execution.batch_size' = '500'; \
     CREATE TABLE orders (id BIGINT, k BIGINT, amount BIGINT, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) \
     WITH ('connector' = 'datagen', 'rows' = '12000', 'rows-per-second' = '3000', 'seed' = '7', \
     'fields.id.kind' = 'sequence', 'fields.k.min' = '1', 'fields.k.max' = '5', \
     'fields.amount.min' = '1', 'fields.amount.max' = '100', \
     'fields.ts.kind' = 'sequence', 'fields.ts.start' = '2024-01-01 00:00:00', 'fields.ts.step' = '10 ms'); \
     CREATE TABLE payments (order_id BIGINT, paid BIGINT, pts TIMESTAMP(3), \
     WATERMARK FOR pts AS pts - INTERVAL '2' SECOND) \
     WITH ('connector' = 'datagen', 'rows' = '12000', 'rows-per-second' = '3000', 'seed' = '8', \
     'fields.order_id.kind' = 'sequence', 'fields.paid.min' = '1', 'fields.paid.max' = '100', \
     'fields.pts.kind' = 'sequence', 'fields.pts.start' = '2024-01-01 00:00:00.005', \
     'fields.pts.step' = '10 ms');";

/// A fixture: the state its query keeps, and the query.
struct Fixture {
    name: &'static str,
    /// The sink table's columns and format.
    sink: &'static str,
    /// The query whose rows go into the sink.
    query: &'static str,
}

const FIXTURES: [Fixture; 2] = [
    // An interval join of the two streams (both sides' buffers) under a
    // TUMBLE aggregate (its open windows' partials), into a CSV sink.
    Fixture {
        name: "window_over_join",
        sink: "(window_start TIMESTAMP(3), k BIGINT, n BIGINT, total BIGINT, paid BIGINT) \
               WITH ('connector' = 'file', 'path' = 'out/', 'format' = 'csv')",
        query: "SELECT window_start, k, count(*) AS n, sum(amount) AS total, sum(paid) AS paid \
                FROM TABLE(TUMBLE(TABLE ( \
                  SELECT o.k, o.amount, p.paid, o.ts FROM orders o JOIN payments p \
                    ON o.id = p.order_id AND p.pts BETWEEN o.ts AND o.ts + INTERVAL '1' SECOND \
                ), DESCRIPTOR(ts), INTERVAL '1' SECOND)) \
                GROUP BY window_start, window_end, k",
    },
    // An updating aggregate (its groups: a base and deltas), whose changelog
    // goes into a JSON sink with its op column.
    Fixture {
        name: "updating_aggregate",
        sink: "(k BIGINT, amount BIGINT, n BIGINT, total BIGINT) \
               WITH ('connector' = 'file', 'path' = 'out/', 'format' = 'json')",
        query: "SELECT k, amount % 7 AS amount, count(*) AS n, sum(amount) AS total \
                FROM orders GROUP BY k, amount % 7",
    },
];

fn script(fixture: &Fixture) -> String {
    format!(
        "{TABLES} CREATE TABLE out {}; SET 'checkpoint.interval' = '200 ms'; INSERT INTO out {}",
        fixture.sink, fixture.query
    )
}

fn sluice(dir: &Path, format: &str, args: &[&str], sql: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .current_dir(dir)
        .args(["--format", format])
        .args(args)
        .args(["-e", sql])
        .stdin(Stdio::null());
    command
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const CHECKPOINTED: [&str; 4] = ["--mode", "continuous", "--checkpoint-dir", "ck"];

fn fixture_dir(fixture: &Fixture) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checkpoints")
        .join(fixture.name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory to copy into");
    for entry in std::fs::read_dir(from).expect("a directory to copy") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a file copied");
        }
    }
}

/// Every line of the sink's visible files (not hidden staging), in path
/// order (the order they were committed in), after the CSV header if any.
fn sink_lines(out: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("the output directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || path.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("an output file");
        let csv = name.ends_with(".csv");
        lines.extend(
            text.lines()
                .skip(usize::from(csv))
                .filter(|l| !l.is_empty())
                .map(|l| l.replacen(' ', "T", 1)),
        );
    }
    lines
}

/// The batch result, sorted, in `format` (`csv`: header dropped, times as
/// the CSV sink writes them; `json`: one object a line).
fn batch_rows(dir: &Path, fixture: &Fixture, format: &str) -> Vec<String> {
    let out = sluice(
        dir,
        format,
        &["--mode", "batch"],
        &format!("{TABLES} {}", fixture.query),
    )
    .output()
    .expect("the batch run");
    assert!(out.status.success(), "batch failed: {}", stderr(&out));
    let mut rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(usize::from(format == "csv"))
        .filter(|l| !l.is_empty())
        .map(|l| match format {
            "csv" => l.replacen(' ', "T", 1),
            _ => l.to_owned(),
        })
        .collect();
    rows.sort();
    rows
}

/// A changelog's final table: each `+I`/`+U` row inserted, each `-U`/`-D`
/// removing an equal row, which must be there (else a row was applied twice
/// or never inserted). Rows as their JSON text without the op.
fn apply_changelog(lines: &[String]) -> Vec<String> {
    let mut table: Vec<String> = Vec::new();
    for line in lines {
        let (op, row) = line
            .strip_prefix("{\"op\":\"")
            .and_then(|rest| rest.split_once("\","))
            .unwrap_or_else(|| panic!("a changelog line with its op first: {line}"));
        let row = format!("{{{row}");
        match op {
            "+I" | "+U" => table.push(row),
            "-U" | "-D" => {
                let at = table
                    .iter()
                    .position(|r| *r == row)
                    .unwrap_or_else(|| panic!("{op} of a row not in the table: {row}"));
                table.swap_remove(at);
            }
            other => panic!("an unknown op {other:?} in {line}"),
        }
    }
    table.sort();
    table
}

/// Write a fixture again: a run that dies after its third checkpoint's
/// manifest, its checkpoint directory and output kept.
fn bless(fixture: &Fixture) {
    let dir = fixture_dir(fixture);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the fixture directory");
    let out = sluice(&dir, "csv", &CHECKPOINTED, &script(fixture))
        .env("SLUICE_TEST_CRASH", "after-manifest:3")
        .output()
        .expect("the run to bless");
    assert!(!out.status.success(), "the run dies after checkpoint 3");
}

/// Run `fixture`'s query again in `dir` (a copy of the fixture, perhaps
/// damaged): it must resume from checkpoint `from` and leave exactly the
/// batch result in the sink.
fn resume(dir: &Path, fixture: &Fixture, from: u64) -> String {
    let before = sink_lines(&dir.join("out"));
    let out = sluice(dir, "csv", &CHECKPOINTED, &script(fixture))
        .output()
        .expect("the resumed run");
    let err = stderr(&out);
    let name = fixture.name;
    assert!(out.status.success(), "{name}: the fixture's query fails: {err}");
    assert!(
        err.contains(&format!("resumed from checkpoint {from} ")),
        "{name}: the run does not resume from checkpoint {from} (a format change that breaks old \
         checkpoints? see this file's opening comment): {err}"
    );
    let lines = sink_lines(&dir.join("out"));
    assert!(
        lines.len() > before.len(),
        "{name}: the resumed run wrote nothing"
    );
    if fixture.sink.contains("'csv'") {
        assert!(!before.is_empty(), "{name}: the fixture holds committed output");
        let mut rows = lines;
        rows.sort();
        common::assert_same_multiset(name, &rows, &batch_rows(dir, fixture, "csv"));
    } else {
        common::assert_same_multiset(name, &apply_changelog(&lines), &batch_rows(dir, fixture, "json"));
    }
    err
}

fn copy_of(fixture: &Fixture) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    copy_dir(&fixture_dir(fixture), tmp.path());
    tmp
}

#[test]
fn checkpoints_written_by_an_earlier_build_resume_to_the_batch_result() {
    for fixture in &FIXTURES {
        if std::env::var_os("SLUICE_BLESS").is_some() {
            bless(fixture);
        }
        resume(copy_of(fixture).path(), fixture, 3);
    }
}

/// The last checkpoint's state files truncated, overwritten or gone: it is
/// reported and passed over, the one before is resumed from, and the parts
/// the damaged one staged never show.
#[test]
fn a_damaged_last_checkpoint_is_passed_over_for_the_one_before() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 3] = [
        ("truncated", |file| {
            let bytes = std::fs::read(file).expect("a state file");
            std::fs::write(file, &bytes[..bytes.len() / 2]).expect("truncated");
        }),
        ("overwritten", |file| {
            std::fs::write(file, b"not arrow").expect("overwritten")
        }),
        ("deleted", |file| std::fs::remove_file(file).expect("deleted")),
    ];
    for fixture in &FIXTURES {
        for (how, damage) in damages {
            let tmp = copy_of(fixture);
            let last = tmp.path().join("ck/chk-000003");
            let state = std::fs::read_dir(&last)
                .expect("the last checkpoint")
                .map(|e| e.expect("an entry").path())
                .find(|p| p.extension().is_some_and(|e| e == "arrow"))
                .expect("a state file");
            damage(&state);
            let err = resume(tmp.path(), fixture, 2);
            assert!(
                err.contains("checkpoint 3 is not usable"),
                "{}, state file {how}: the damage is reported: {err}",
                fixture.name
            );
        }
    }
}

/// Unmounts a tmpfs when dropped, whatever the test did.
struct Mounted(PathBuf);

impl Mounted {
    /// A tmpfs of `size` at `dir`, or `None` where only root may mount one.
    fn tmpfs(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("a mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A checkpoint directory whose disk fills up mid-run: the query stops with
/// the disk's error, what it committed stays whole, and once there is room
/// again the same command resumes from the last checkpoint that was written
/// whole, to exactly the batch result. Needs a small tmpfs, which only root
/// can mount: the test says on stderr when it cannot run.
#[test]
fn a_full_checkpoint_disk_stops_the_query_and_the_last_whole_checkpoint_resumes() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let ck = dir.join("ck");
    let Some(_disk) = Mounted::tmpfs(&ck, "4m") else {
        eprintln!("a_full_checkpoint_disk_...: cannot mount a tmpfs here (not root); not run");
        return;
    };
    let fixture = &FIXTURES[0];
    let child = sluice(dir, "csv", &CHECKPOINTED, &script(fixture))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    let start = std::time::Instant::now();
    while common::latest_checkpoint(&ck) < Some(2) && start.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Fill the disk: the next checkpoint cannot be written.
    let filler = ck.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).expect("a filler file");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).and_then(|()| file.sync_data()).is_ok() {}
    }
    let out = child.wait_with_output().expect("the run");
    let err = stderr(&out);
    assert!(!out.status.success(), "the run stops on the full disk: {err}");
    assert!(err.contains("No space left on device"), "{err}");
    std::fs::remove_file(&filler).expect("room again");
    let last = common::latest_checkpoint(&ck).expect("the checkpoints before the disk filled");
    resume(dir, fixture, last);
}

//! The Nexmark queries (Flink SQL, `../shared/conformance/nexmark/queries`)
//! run in batch through `sluice::Engine`, over bounded `nexmark` generator
//! tables behind views with Flink's column names.
//!
//! Each query's outcome must match its line in `tests/nexmark_status.txt`:
//! `qN pass` (runs as is), `qN pass-with-edits: <edits>` (runs after the
//! mechanical edits this runner applies, listed by [`edits`]), or
//! `qN fail: <why>`. A query listed as failing that now passes fails the test
//! too, so the file only ever improves. A few results are checked for sanity.
//!
//! Every query that passes in batch also runs its SELECT in continuous mode
//! over the same data, and must give batch's rows exactly; the continuous
//! executor's refusals are listed in `tests/nexmark_continuous_status.txt`
//! (see [`nexmark_continuous_equals_batch`]).

use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
use futures::TryStreamExt;
use rows::{Rows, render};
use sluice::Engine;
use sluice::plan::Executor;
use status::StatusFile;

mod rows;
mod status;

const QUERIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/nexmark/queries"
);
const STATUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nexmark_status.txt");
const CONTINUOUS_STATUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nexmark_continuous_status.txt");

/// Bounded generator tables (100,000 events: 2,000 people, 6,000 auctions,
/// 92,000 bids, over 100 s of event time) with Flink's watermark, and the views
/// that give them the column names of Nexmark's Flink DDL (`ddl_views.sql`).
/// `dateTime` is quoted in the queries, so its column is exactly that; the
/// other camelCase names are unquoted, which DataFusion lowercases.
const PRELUDE: &str = "
CREATE TABLE nexmark_person (
  id BIGINT, name VARCHAR, email_address VARCHAR, credit_card VARCHAR, city VARCHAR, state VARCHAR,
  date_time TIMESTAMP(3), extra VARCHAR,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'nexmark', 'table' = 'person', 'events' = '100000', 'events.per.second' = '1000', 'seed' = '7');
CREATE TABLE nexmark_auction (
  id BIGINT, item_name VARCHAR, description VARCHAR, initial_bid BIGINT, reserve BIGINT,
  date_time TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra VARCHAR,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'nexmark', 'table' = 'auction', 'events' = '100000', 'events.per.second' = '1000', 'seed' = '7');
CREATE TABLE nexmark_bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
  date_time TIMESTAMP(3), extra VARCHAR,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'nexmark', 'table' = 'bid', 'events' = '100000', 'events.per.second' = '1000', 'seed' = '7');
CREATE VIEW person AS
  SELECT id, name, email_address AS emailaddress, credit_card AS creditcard, city, state,
         date_time AS \"dateTime\", extra
  FROM nexmark_person;
CREATE VIEW auction AS
  SELECT id, item_name AS itemname, description, initial_bid AS initialbid, reserve,
         date_time AS \"dateTime\", expires, seller, category, extra
  FROM nexmark_auction;
CREATE VIEW bid AS
  SELECT auction, bidder, price, channel, url, date_time AS \"dateTime\", extra
  FROM nexmark_bid;
";

/// Bids among the 100,000 events (46 of every 50).
const BIDS: u64 = 92_000;

/// The query files, by name (`q0` ... `q23`), in numeric order.
fn query_files() -> Vec<(String, String)> {
    let mut files: Vec<(u32, String, String)> = std::fs::read_dir(QUERIES)
        .unwrap_or_else(|e| panic!("{QUERIES}: {e}"))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_stem()?.to_str()?.to_string();
            let number: u32 = name.strip_prefix('q')?.parse().ok()?;
            let sql = std::fs::read_to_string(&path).ok()?;
            Some((number, name, sql))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, name, sql)| (name, sql)).collect()
}

/// The mechanical edits the runner makes to a query before running it, each
/// with the description that its status line lists.
fn edits(name: &str, sql: &str) -> (String, Vec<&'static str>) {
    let mut sql = sql.to_string();
    let mut applied = Vec::new();
    // q14 declares Nexmark's Java UDF; Sluice has count_char built in.
    if let Some(start) = sql.find("CREATE FUNCTION count_char") {
        let end = sql[start..].find(';').map_or(sql.len(), |i| start + i + 1);
        sql.replace_range(start..end, "");
        applied.push("the CREATE FUNCTION count_char statement is dropped (count_char is built in)");
    }
    // q10 writes partitioned CSV files under ${NEXMARK_DIR}; a blackhole sink
    // with the same columns keeps the query as it is.
    if let Some(start) = sql.find("PARTITIONED BY") {
        let end = sql[start..].find(';').map_or(sql.len(), |i| start + i);
        sql.replace_range(start..end, "WITH ('connector' = 'blackhole')");
        applied.push(
            "the partitioned filesystem sink (PARTITIONED BY, a ${NEXMARK_DIR} path, sink.* options) becomes a blackhole table with the same columns",
        );
    }
    // q13's side input is a CSV file under Flink's install, declared with
    // Flink 1.10's legacy options; the same table over a generated file.
    if let Some(start) = sql.find("'connector.type' = 'filesystem'") {
        let open = sql[..start].rfind('(').unwrap_or(start);
        let close = sql[start..].find(')').map_or(sql.len(), |i| start + i + 1);
        let options = format!(
            "('connector' = 'file', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'false')",
            side_input().display()
        );
        sql.replace_range(open..close, &options);
        applied.push(
            "the side input's legacy filesystem options ('connector.type', 'connector.path' under ${FLINK_HOME}, 'format.type') become the file connector's, over a generated side_input.txt (keys 0 to 9999, each value its key as text)",
        );
    }
    // q23 alone writes dateTime unquoted, which DataFusion lowercases.
    if name == "q23" && sql.contains("A.dateTime") {
        sql = sql.replace("A.dateTime", "A.`dateTime`");
        applied.push("A.dateTime is quoted, A.`dateTime`, as every other query writes it");
    }
    (sql, applied)
}

/// Nexmark q13's side input, written once per test run: `key,value` lines
/// for keys 0 to 9999 (the query joins `mod(auction, 10000)`), each value
/// its key as text, as RisingWave's Nexmark set-up fills the table.
fn side_input() -> &'static std::path::Path {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("sluice-nexmark-side-input-{}.txt", std::process::id()));
        let lines: String = (0..10_000).map(|k| format!("{k},{k}\n")).collect();
        std::fs::write(&path, lines).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    })
}

/// The rows an `INSERT` reported writing.
fn inserted(results: &[Vec<RecordBatch>]) -> Option<u64> {
    let batch = results.last()?.iter().find(|b| b.num_rows() > 0)?;
    let counts = batch.column(0).as_primitive_opt::<UInt64Type>()?;
    Some(counts.value(0))
}

/// Run one query after the prelude: the rows its INSERT wrote, or the error.
async fn run(sql: &str) -> Result<u64, String> {
    let engine = Engine::new();
    engine
        .run_script(PRELUDE)
        .await
        .map_err(|e| format!("prelude: {e}"))?;
    let results = engine.run_script(sql).await.map_err(|e| e.to_string())?;
    inserted(&results).ok_or_else(|| "the last statement is not an INSERT".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nexmark_queries_match_their_status() {
    let status = StatusFile::read(STATUS, "tests/nexmark_status.txt");
    let files = query_files();
    assert!(
        files.len() >= 24,
        "found only {} queries in {QUERIES}",
        files.len()
    );
    let mut problems = Vec::new();
    let mut report = Vec::new();
    let started = Instant::now();
    for (name, sql) in &files {
        let (edited, applied) = edits(name, sql);
        let began = Instant::now();
        let outcome = run(&edited).await;
        report.push(format!(
            "{name:>4} {:>8.2?} {}",
            began.elapsed(),
            match &outcome {
                Ok(rows) => format!("{rows} rows"),
                Err(e) => format!("error: {e}"),
            }
        ));
        problems.extend(status.check(name, &outcome, &applied));
    }
    let names: Vec<String> = files.into_iter().map(|(name, _)| name).collect();
    problems.extend(status.strays(&names));
    eprintln!(
        "Nexmark in batch ({} total):\n{}",
        fmt(started.elapsed()),
        report.join("\n")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Columns compared as a placeholder, by query, because the query leaves
/// their values open; the rest of each row must match.
/// - q12's windows are TUMBLEs over `PROCTIME()`, which batch and a bounded
///   replay evaluate once, as the query's start time, so every row lands in one
///   window whose bounds depend on when the run started (batch and continuous
///   runs may fall either side of a 10 s boundary).
/// - q19 numbers each auction's bids by `ROW_NUMBER() OVER (... ORDER BY
///   price DESC)`: bids of equal price may take either number (batch's own
///   order of ties varies with its partitioning), so which bid holds a rank
///   is open; each auction's rank and the price at it are not.
const MASKED: &[(&str, &[&str])] = &[
    ("q12", &["starttime", "endtime"]),
    ("q19", &["bidder", "channel", "url", "dateTime", "extra"]),
];

/// How a run of a query's SELECT went.
enum Run {
    Rows(Rows),
    /// Planning refused it (an operator the executor lacks): may be listed.
    Refused(String),
    /// Anything else (an error while running, the wrong executor): never listed.
    Broken(String),
}

/// Run the set-up of a query (its DDL) after the prelude, then its SELECT,
/// in batch or continuous mode.
async fn run_select(setup: &str, select: &str, masked: &[&str], continuous: bool) -> Run {
    let engine = Engine::new();
    let mut script = format!("{PRELUDE}{setup}");
    if continuous {
        script.push_str("\nSET sluice.mode = 'continuous';");
    }
    if let Err(e) = engine.run_script(&script).await {
        return Run::Broken(format!("set-up: {e}"));
    }
    let statement = match engine.split(select).and_then(|tokens| {
        let [one] = tokens.as_slice() else {
            panic!("not one statement: {select}")
        };
        engine.parse(one)
    }) {
        Ok(statement) => statement,
        Err(e) => return Run::Broken(format!("parse: {e}")),
    };
    if continuous {
        // Every join of two streams streams both sides in the replay: none is
        // read in batch and looked up (a lookup of constant rows, or of a
        // table that is bounded on the unbounded generator too, is fine).
        if let Ok(explain) = engine.run_script(&format!("EXPLAIN {select}")).await {
            let plan = explain
                .last()
                .map(|batches| render(&batches[0].schema(), batches, &[]).rows.join("\n"))
                .unwrap_or_default();
            if plan
                .lines()
                .any(|l| l.contains("LookupJoin") && l.contains("bounded table nexmark_"))
            {
                return Run::Broken(format!("a join of two streams looks one side up:\n{plan}"));
            }
        }
    }
    let output = match engine.execute(&statement).await {
        Ok(output) => output,
        Err(e) => return Run::Refused(e.to_string()),
    };
    let expected = if continuous {
        Executor::Continuous
    } else {
        Executor::Batch
    };
    let executor = output.executor.as_ref().map(|c| c.executor);
    if executor != Some(expected) {
        return Run::Broken(format!("ran on {executor:?}, not {expected}"));
    }
    let schema = output.stream.schema();
    match output.stream.try_collect::<Vec<RecordBatch>>().await {
        // An updating result, applied in order, must end at batch's rows.
        Ok(batches) if continuous && rows::is_changelog(&schema) => {
            match rows::apply_changelog(&schema, &batches, masked) {
                Ok(rows) => Run::Rows(rows),
                Err(e) => Run::Broken(format!("a bad changelog: {e}")),
            }
        }
        Ok(batches) => Run::Rows(render(&schema, &batches, masked).sorted()),
        Err(e) => Run::Broken(format!("error while running: {e}")),
    }
}

/// What differs between two results: columns, then the first rows found in
/// one multiset and not the other.
fn difference(batch: &Rows, continuous: &Rows) -> String {
    if batch.columns != continuous.columns {
        return format!(
            "columns differ\n  batch:      {:?}\n  continuous: {:?}",
            batch.columns, continuous.columns
        );
    }
    let (mut only_batch, mut only_continuous) = (Vec::new(), Vec::new());
    let (mut b, mut c) = (batch.rows.iter().peekable(), continuous.rows.iter().peekable());
    loop {
        match (b.peek(), c.peek()) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                c.next();
            }
            (Some(x), Some(y)) if x < y => only_batch.extend(b.next()),
            (Some(_), Some(_)) => only_continuous.extend(c.next()),
            (Some(_), None) => only_batch.extend(b.next()),
            (None, Some(_)) => only_continuous.extend(c.next()),
            (None, None) => break,
        }
    }
    let first = |rows: &[&String]| {
        rows.iter()
            .take(5)
            .map(|r| format!("\n      {r}"))
            .collect::<String>()
    };
    format!(
        "{} rows in batch, {} in continuous; columns {:?}\n  {} rows only in batch, first:{}\n  {} rows only in continuous, first:{}",
        batch.rows.len(),
        continuous.rows.len(),
        batch.columns,
        only_batch.len(),
        first(&only_batch),
        only_continuous.len(),
        first(&only_continuous),
    )
}

/// Every query that passes in batch (its line in `tests/nexmark_status.txt`)
/// runs its SELECT again with `SET sluice.mode = 'continuous'`, a replay of
/// the same bounded generator tables that ends with a watermark closing every
/// window, and must give batch's rows: the same columns (names and types) and
/// the same multiset of rendered rows. The SELECT, not the INSERT, is what
/// runs, as the continuous executor has no sinks; the sink's and views' DDL
/// before it runs first in both modes.
///
/// Each query's outcome must match its line in
/// `tests/nexmark_continuous_status.txt`: `qN pass`, or `qN fail: <why>` when
/// the continuous executor refuses to plan it (an operator it lacks; a query
/// failing in batch is not run and is listed as failing too). A difference in
/// results, an error while running or the wrong executor fails the test
/// whatever the file says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nexmark_continuous_equals_batch() {
    let batch_status = StatusFile::read(STATUS, "tests/nexmark_status.txt");
    let status = StatusFile::read(CONTINUOUS_STATUS, "tests/nexmark_continuous_status.txt");
    let files = query_files();
    let mut problems = Vec::new();
    let mut report = Vec::new();
    let (mut passed, mut run) = (0, 0);
    let started = Instant::now();
    for (name, sql) in &files {
        let began = Instant::now();
        let mut continuous_time = Duration::ZERO;
        let outcome: Result<usize, String> = if !batch_status.listed_passing(name) {
            Err("fails in batch".to_string())
        } else {
            run += 1;
            let (edited, _) = edits(name, sql);
            let Some((setup, select)) = split_insert(&edited) else {
                problems.push(format!("{name}: no INSERT INTO ... SELECT to take the SELECT of"));
                continue;
            };
            let masked = MASKED
                .iter()
                .find(|(n, _)| n == name)
                .map_or(&[][..], |(_, columns)| columns);
            let continuous = run_select(setup, &select, masked, true).await;
            continuous_time = began.elapsed();
            match continuous {
                Run::Refused(e) => Err(e),
                Run::Broken(e) => {
                    problems.push(format!("{name}: continuous: {e}\n  query: {select}"));
                    continue;
                }
                Run::Rows(continuous) => match run_select(setup, &select, masked, false).await {
                    Run::Rows(batch) if batch == continuous => Ok(batch.rows.len()),
                    Run::Rows(batch) => {
                        problems.push(format!(
                            "{name}: continuous differs from batch: {}\n  query: {select}",
                            difference(&batch, &continuous)
                        ));
                        continue;
                    }
                    Run::Refused(e) | Run::Broken(e) => {
                        problems.push(format!("{name}: the batch run of its SELECT failed: {e}"));
                        continue;
                    }
                },
            }
        };
        report.push(format!(
            "{name:>4} {:>8.2?} {}",
            began.elapsed(),
            match &outcome {
                Ok(rows) => format!(
                    "same {rows} rows as batch (continuous run {:.2?})",
                    continuous_time
                ),
                Err(e) => format!("refused: {e}"),
            }
        ));
        if outcome.is_ok() {
            passed += 1;
        }
        problems.extend(status.check(name, &outcome, &[]));
    }
    let names: Vec<String> = files.into_iter().map(|(name, _)| name).collect();
    problems.extend(status.strays(&names));
    eprintln!(
        "Nexmark in continuous mode ({} total):\n{}",
        fmt(started.elapsed()),
        report.join("\n")
    );
    println!(
        "nexmark continuous: {passed}/{run} queries that pass in batch give batch's rows in continuous mode"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn fmt(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The SELECT of a query's `INSERT INTO sink SELECT ...`, to look at its rows.
fn select_of(name: &str) -> String {
    let (_, sql) = query_files()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"));
    let (sql, _) = edits(name, &sql);
    split_insert(&sql)
        .unwrap_or_else(|| panic!("{name} has no INSERT ... SELECT"))
        .1
}

/// An (edited) query script cut at its `INSERT INTO sink SELECT ...`: the
/// statements before it (the sink's and views' DDL), and the SELECT.
fn split_insert(sql: &str) -> Option<(&str, String)> {
    let insert = sql.find("INSERT INTO")?;
    let select = insert + sql[insert..].find("SELECT")?;
    let body = sql[select..].trim().trim_end_matches(';');
    // Comments would swallow the closing parenthesis of a wrapping query.
    let body = body
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    Some((&sql[..insert], body))
}

/// The first row of the last statement of `PRELUDE` + `sql`.
async fn first_row(sql: &str) -> RecordBatch {
    let engine = Engine::new();
    let results = engine
        .run_script(&format!("{PRELUDE}{sql}"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    results
        .into_iter()
        .last()
        .and_then(|b| b.into_iter().find(|b| b.num_rows() > 0))
        .unwrap_or_else(|| panic!("{sql}: no rows"))
}

fn int(batch: &RecordBatch, column: usize) -> i64 {
    batch.column(column).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn q0_writes_every_bid() {
    let (_, sql) = query_files().into_iter().find(|(n, _)| n == "q0").expect("q0");
    assert_eq!(run(&sql).await, Ok(BIDS));
}

#[tokio::test]
async fn q1_converts_prices_to_euros() {
    let sql = format!(
        "SELECT sum(q.price) / (SELECT sum(price) FROM bid) AS ratio, count(*) AS n FROM ({}) AS q",
        select_of("q1")
    );
    let row = first_row(&sql).await;
    let ratio = row.column(0).as_primitive::<Float64Type>().value(0);
    assert!((ratio - 0.908).abs() < 1e-9, "{ratio}");
    assert_eq!(int(&row, 1), BIDS as i64);
}

#[tokio::test]
async fn q2_keeps_auctions_divisible_by_123() {
    let sql = format!(
        "SELECT count(*) AS n, count(*) FILTER (WHERE auction % 123 <> 0) AS wrong FROM ({}) AS q",
        select_of("q2")
    );
    let row = first_row(&sql).await;
    assert!(int(&row, 0) > 0, "no bids on auctions divisible by 123");
    assert_eq!(int(&row, 1), 0);
}

#[tokio::test]
async fn q14_and_q22_use_the_flink_functions() {
    // count_char counts what a plain length difference counts.
    let sql = format!(
        "SELECT count(*) AS n,
                count(*) FILTER (WHERE c_counts <> length(extra) - length(replace(extra, 'c', ''))) AS wrong,
                count(DISTINCT bidTimeType) AS kinds
         FROM ({}) AS q",
        select_of("q14")
    );
    let row = first_row(&sql).await;
    assert!(int(&row, 0) > 0);
    assert_eq!(int(&row, 1), 0);
    // SPLIT_INDEX agrees with split_part (1-based, '' past the end) where
    // no piece is empty (the one between the slashes of https:// is).
    let sql = format!(
        "SELECT count(*) AS n, count(*) FILTER (WHERE dir1 IS NULL OR dir2 IS NULL OR dir3 IS NULL) AS missing
         FROM ({}) AS q;
         SELECT count(*) FILTER (WHERE SPLIT_INDEX(url, '/', i) IS DISTINCT FROM nullif(split_part(url, '/', i + 1), '')) AS wrong
         FROM bid CROSS JOIN (VALUES (0), (2), (3), (5), (6), (7), (9)) AS v(i)",
        select_of("q22")
    );
    let engine = Engine::new();
    let results = engine
        .run_script(&format!("{PRELUDE}{sql}"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let count = |batches: &Vec<RecordBatch>, column: usize| int(&batches[0], column);
    let [.., pieces, wrong] = results.as_slice() else {
        panic!("two queries")
    };
    assert_eq!(count(pieces, 0), BIDS as i64);
    assert_eq!(count(pieces, 1), 0);
    assert_eq!(count(wrong, 0), 0);
}

const UNBOUNDED_STATUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nexmark_unbounded_status.txt");

/// How long a query on the unbounded generator may take to produce its
/// first rows; longer is listed as producing nothing.
const UNBOUNDED_PATIENCE: Duration = Duration::from_secs(5);

/// Non-empty batches a query must produce on the unbounded generator.
const UNBOUNDED_BATCHES: usize = 3;

/// Queries that need more time, or fewer batches, than the others: q12's
/// 10 s windows over `PROCTIME()` close on the wall clock, one batch each, so
/// two closed windows take up to 20 s after the query starts.
const UNBOUNDED_SLOW: &[(&str, Duration, usize)] = &[("q12", Duration::from_secs(25), 2)];

/// Every query (after the runner's edits) runs its SELECT on the unbounded
/// generator (the prelude without an `events` count): it must plan on the
/// continuous executor and keep producing, [`UNBOUNDED_BATCHES`] non-empty
/// batches within [`UNBOUNDED_PATIENCE`] (or as [`UNBOUNDED_SLOW`] says); then the query is dropped, which
/// stops it. Each outcome must match its line in
/// `tests/nexmark_unbounded_status.txt`, which only improves. Unlike the
/// replay test, nothing here can be read in batch: every source is a stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nexmark_runs_on_the_unbounded_generator() {
    let status = StatusFile::read(UNBOUNDED_STATUS, "tests/nexmark_unbounded_status.txt");
    let prelude = PRELUDE.replace("'events' = '100000', ", "");
    assert!(!prelude.contains("'events'"), "the prelude's tables are bounded");
    let files = query_files();
    let mut problems = Vec::new();
    let mut report = Vec::new();
    let mut running = 0;
    for (name, sql) in &files {
        let (edited, _) = edits(name, sql);
        let began = Instant::now();
        let outcome = match split_insert(&edited) {
            Some((setup, select)) => {
                let (patience, wanted) = UNBOUNDED_SLOW
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map_or((UNBOUNDED_PATIENCE, UNBOUNDED_BATCHES), |&(_, p, b)| (p, b));
                run_unbounded(&prelude, setup, &select, patience, wanted).await
            }
            None => Err("no INSERT INTO ... SELECT to take the SELECT of".to_string()),
        };
        report.push(format!(
            "{name:>4} {:>8.2?} {}",
            began.elapsed(),
            match &outcome {
                Ok(rows) => format!("{rows} rows"),
                Err(e) => format!("fails: {e}"),
            }
        ));
        running += usize::from(outcome.is_ok());
        problems.extend(status.check(name, &outcome, &[]));
    }
    let names: Vec<String> = files.into_iter().map(|(name, _)| name).collect();
    problems.extend(status.strays(&names));
    eprintln!(
        "Nexmark on the unbounded generator: {running}/{} run\n{}",
        names.len(),
        report.join("\n")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Run one SELECT over unbounded tables until it has produced `wanted`
/// non-empty batches within `patience`: the rows it produced, or why not.
async fn run_unbounded(
    prelude: &str,
    setup: &str,
    select: &str,
    patience: Duration,
    wanted: usize,
) -> Result<usize, String> {
    use futures::StreamExt;
    let engine = Engine::new();
    engine
        .run_script(&format!("{prelude}{setup}"))
        .await
        .map_err(|e| format!("set-up: {e}"))?;
    let tokens = engine.split(select).map_err(|e| e.to_string())?;
    let [one] = tokens.as_slice() else {
        return Err(format!("not one statement: {select}"));
    };
    let statement = engine.parse(one).map_err(|e| e.to_string())?;
    let output = engine.execute(&statement).await.map_err(|e| e.to_string())?;
    let executor = output.executor.as_ref().map(|c| c.executor);
    if executor != Some(Executor::Continuous) {
        return Err(format!("ran on {executor:?}, not continuous"));
    }
    let mut stream = output.stream;
    let (mut batches, mut rows) = (0, 0);
    let deadline = tokio::time::Instant::now() + patience;
    while batches < wanted {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                return Err(format!("produced {batches} non-empty batches in {patience:?}"));
            }
            Ok(None) => return Err(format!("ended after {batches} batches; a stream never ends")),
            Ok(Some(Err(e))) => return Err(format!("error while running: {e}")),
            Ok(Some(Ok(batch))) if batch.num_rows() > 0 => {
                batches += 1;
                rows += batch.num_rows();
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    Ok(rows)
}

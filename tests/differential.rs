//! The invariant, tested: a continuous run over bounded data gives exactly
//! the batch result.
//!
//! Cases, each run on a fresh engine in batch and then with
//! `SET sluice.mode = 'continuous'` (a replay that ends with a watermark
//! closing every window), results compared as multisets of rows with the
//! same column names and types:
//! * every windowed `query` of `sqllogictests/*.slt` (one that calls TUMBLE,
//!   HOP, CUMULATE or SESSION and expects rows), after replaying the file's
//!   `statement ok` records before it;
//! * every statement that returns rows in `tests/differential/*.sql` and
//!   `queries/windows.sql` (the others are its set-up). To add a case, add a query there. `$BIDS_SHUFFLED`
//!   names a copy of `testdata/bids.ndjson` whose rows are moved out of order,
//!   each by less than the table's 4 s watermark delay, so no row is late and
//!   the continuous result must still equal batch's.
//!
//! A query the continuous executor refuses (an operator it lacks) must be
//! listed as `fail` in `tests/differential_status.txt` with the reason; a
//! query that runs must give batch's result, always: a difference is never
//! allowed by the status file.

mod rows;
mod status;

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use futures::TryStreamExt;
use rows::{Rows, render};
use sluice::Engine;
use sqllogictest::{DefaultColumnType, QueryExpect, Record, StatementExpect};
use status::StatusFile;

const STATUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/differential_status.txt");

/// One query with what must run before it.
struct Case {
    name: String,
    setup: Vec<String>,
    query: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_windowed(sql: &str) -> bool {
    let upper = sql.to_uppercase();
    ["TUMBLE", "HOP", "CUMULATE", "SESSION"].iter().any(|w| {
        upper.match_indices(w).any(|(i, _)| {
            let before = upper[..i].chars().next_back();
            let after = upper[i + w.len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

/// The windowed queries of our sqllogictest files.
fn slt_cases(scratch: &Path) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("sqllogictests"))
        .expect("sqllogictests/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let stem = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let records = sqllogictest::parse_file::<DefaultColumnType>(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        std::fs::create_dir_all(scratch.join(&stem)).expect("scratch dir");
        let substitute = |sql: &str| sql.replace("$SCRATCH", &scratch.join(&stem).display().to_string());
        let mut setup = Vec::new();
        for record in records {
            match record {
                // The mode is the harness's to choose: a file's own
                // `SET sluice.mode` (to run its queries both ways) is left out.
                Record::Statement {
                    sql,
                    expected: StatementExpect::Ok | StatementExpect::Count(_),
                    ..
                } if !sql.trim_start().to_lowercase().starts_with("set sluice.mode") => {
                    setup.push(substitute(&sql))
                }
                Record::Query {
                    sql,
                    expected: QueryExpect::Results { .. },
                    loc,
                    ..
                } if is_windowed(&sql) && !sql.trim_start().to_uppercase().starts_with("EXPLAIN") => {
                    cases.push(Case {
                        name: format!("{stem}:{}", loc.line()),
                        setup: setup.clone(),
                        query: substitute(&sql),
                    });
                }
                // Queries that write data (COPY ... TO, INSERT) set up later ones.
                Record::Query { sql, .. }
                    if ["COPY", "INSERT"]
                        .iter()
                        .any(|w| sql.trim_start().to_uppercase().starts_with(w)) =>
                {
                    setup.push(substitute(&sql))
                }
                _ => {}
            }
        }
    }
    cases
}

/// The queries of `tests/differential/*.sql`.
async fn sql_file_cases(bids_shuffled: &Path) -> Vec<Case> {
    let dir = root().join("tests/differential");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/differential/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    // The example of windows in queries/ is held to the invariant too.
    files.push(root().join("queries/windows.sql"));
    let engine = Engine::new();
    let mut cases = Vec::new();
    for file in files {
        let stem = file
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&file)
            .expect("readable")
            .replace("$BIDS_SHUFFLED", &bids_shuffled.display().to_string());
        let mut setup = Vec::new();
        for (i, tokens) in engine.split(&text).expect("splits").iter().enumerate() {
            let sql = tokens.text.clone();
            let statement = engine.parse(tokens).unwrap_or_else(|e| panic!("{stem}: {e}"));
            if is_query(&statement.statement) {
                cases.push(Case {
                    name: format!("{stem}.sql#{}", i + 1),
                    setup: setup.clone(),
                    query: sql,
                });
            } else {
                setup.push(sql);
            }
        }
    }
    cases
}

fn is_query(statement: &sluice::sql::Statement) -> bool {
    use datafusion::sql::parser::Statement as DFStatement;
    match statement {
        sluice::sql::Statement::DataFusion(df) => matches!(
            df.as_ref(),
            DFStatement::Statement(s) if matches!(s.as_ref(), sqlparser::ast::Statement::Query(_))
        ),
        _ => false,
    }
}

/// `testdata/bids.ndjson` with rows moved later by less than 4 s of event
/// time each (sorted by time plus a deterministic jitter in [0, 4 s)).
fn shuffle_bids(to: &Path) {
    let text = std::fs::read_to_string(root().join("testdata/bids.ndjson")).expect("bids data");
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut keyed: Vec<(i64, &str)> = text
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("json line");
            let time = value["date_time"].as_str().expect("date_time");
            let time = chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%.f")
                .expect("timestamp")
                .and_utc()
                .timestamp_millis();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (time + (state % 3_999) as i64, line)
        })
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    let shuffled: Vec<&str> = keyed.into_iter().map(|(_, l)| l).collect();
    assert_ne!(
        shuffled,
        text.lines().collect::<Vec<_>>(),
        "the shuffle moved rows"
    );
    std::fs::write(to, shuffled.join("\n") + "\n").expect("write shuffled bids");
}

/// `EXPLAIN query` as text.
async fn explain_text(engine: &Engine, query: &str) -> Result<String, String> {
    let explain = engine
        .run_script(&format!("EXPLAIN {query}"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(explain
        .last()
        .map(|batches| render(&batches[0].schema(), batches, &[]).rows.join("\n"))
        .unwrap_or_default())
}

/// Run the set-up, then the query; its rows.
async fn run(case: &Case, continuous: bool) -> Result<Rows, String> {
    let engine = Engine::new();
    for sql in &case.setup {
        engine
            .run_script(sql)
            .await
            .map_err(|e| format!("set-up failed: {e}"))?;
    }
    if continuous {
        engine
            .run_script("SET sluice.mode = 'continuous'")
            .await
            .map_err(|e| e.to_string())?;
    }
    if continuous && case.name.starts_with("streams.sql") {
        // Two streams meet here: in the replay both sides must stream, none
        // read in batch and looked up.
        let plan = explain_text(&engine, &case.query).await?;
        if plan.contains("LookupJoin") {
            return Err(format!(
                "a side of a join of two streams is looked up, not streamed:\n{plan}"
            ));
        }
    }
    if continuous && case.name.starts_with("updating_windows.sql") {
        // The window takes the updating input's changes as they come: no
        // GROUP BY under it waits for the end of the replay, and the window
        // aggregate is one that takes rows back.
        let plan = explain_text(&engine, &case.query).await?;
        let takes_changes = [
            "rows taken back from open sessions",
            "per window, emitted when it closes",
        ]
        .iter()
        .any(|what| plan.contains(what));
        if plan.contains("at end of input") || !takes_changes {
            return Err(format!(
                "the window does not take its updating input's changes as they come:\n{plan}"
            ));
        }
    }
    if continuous && case.name.starts_with("over.sql") {
        // Window functions here stream (OverAggregate, WindowTopN): none
        // waits for the end of the replay.
        let plan = explain_text(&engine, &case.query).await?;
        if plan.contains("at end of input") {
            return Err(format!("a window function waits for the end of input:\n{plan}"));
        }
    }
    let tokens = engine.split(&case.query).map_err(|e| e.to_string())?;
    let statement = engine.parse(&tokens[0]).map_err(|e| e.to_string())?;
    let output = engine.execute(&statement).await.map_err(|e| e.to_string())?;
    let executor = output.executor.as_ref().map(|c| c.executor);
    let schema = output.stream.schema();
    let batches: Vec<RecordBatch> = output.stream.try_collect().await.map_err(|e| e.to_string())?;
    let expected = if continuous {
        sluice::plan::Executor::Continuous
    } else {
        sluice::plan::Executor::Batch
    };
    if executor != Some(expected) {
        return Err(format!("ran on {executor:?}, not {expected}"));
    }
    if continuous && rows::is_changelog(&schema) {
        // An updating result: applied in order, it must end at batch's rows.
        return rows::apply_changelog(&schema, &batches, &[]);
    }
    Ok(render(&schema, &batches, &[]).sorted())
}

/// Every case: the windowed queries of the slt files and of the SQL files
/// (their shuffled bids written into `scratch`).
async fn all_cases(scratch: &Path) -> Vec<Case> {
    let bids = scratch.join("bids_shuffled.ndjson");
    shuffle_bids(&bids);
    let mut cases = slt_cases(scratch);
    cases.extend(sql_file_cases(&bids).await);
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_equals_batch() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let cases = all_cases(scratch.path()).await;
    let status = StatusFile::read(STATUS, "tests/differential_status.txt");
    let mut problems = Vec::new();
    let mut passed = 0;
    for case in &cases {
        let batch = match run(case, false).await {
            Ok(rows) => rows,
            Err(e) => {
                problems.push(format!("{}: the batch run failed: {e}", case.name));
                continue;
            }
        };
        let outcome = match run(case, true).await {
            Ok(rows) if rows == batch => Ok(()),
            Ok(rows) => {
                problems.push(format!(
                    "{}: continuous differs from batch\n  query: {}\n  batch:      {:?}\n  continuous: {:?}",
                    case.name, case.query, batch, rows
                ));
                continue;
            }
            Err(e) => Err(e),
        };
        if outcome.is_ok() {
            passed += 1;
        }
        problems.extend(status.check(&case.name, &outcome, &[]));
        if let Err(e) = &outcome
            && status.check(&case.name, &outcome, &[]).is_some()
        {
            problems.push(format!("{}: continuous run failed: {e}", case.name));
        }
    }
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    problems.extend(status.strays(&names));
    println!(
        "differential: {passed}/{} windowed queries give batch's result in continuous mode",
        cases.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Run the set-up, then the query continuously with checkpoints in `dir`
/// after every batch of 7 rows; with `stop_after`, drop the result (as a
/// crash would stop the query) once that many rows came. The rows it gave.
async fn run_checkpointed(case: &Case, dir: &Path, stop_after: Option<usize>) -> Result<Rows, String> {
    let engine = Engine::new();
    for sql in &case.setup {
        engine
            .run_script(sql)
            .await
            .map_err(|e| format!("set-up failed: {e}"))?;
    }
    let settings = format!(
        "SET sluice.mode = 'continuous'; SET datafusion.execution.batch_size = 7; \
         SET 'checkpoint.interval' = '1 ms'; SET 'checkpoint.dir' = '{}'",
        dir.display()
    );
    engine.run_script(&settings).await.map_err(|e| e.to_string())?;
    let tokens = engine.split(&case.query).map_err(|e| e.to_string())?;
    let statement = engine.parse(&tokens[0]).map_err(|e| e.to_string())?;
    let mut output = engine.execute(&statement).await.map_err(|e| e.to_string())?;
    let schema = output.stream.schema();
    if rows::is_changelog(&schema) {
        return Err("an updating result".into());
    }
    let mut batches = Vec::new();
    let mut rows = 0;
    while let Some(batch) = output.stream.try_next().await.map_err(|e| e.to_string())? {
        rows += batch.num_rows();
        batches.push(batch);
        if stop_after.is_some_and(|n| rows >= n) {
            break;
        }
    }
    drop(output);
    // The dropped query's task stops at its next step: let it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    Ok(render(&schema, &batches, &[]).sorted())
}

/// The invariant across a crash: each windowed case that appends rows, run
/// continuously with a checkpoint after every batch, stopped halfway (its
/// result dropped, its task aborted) and run again on the same checkpoint
/// directory, gives batch's rows: every row of batch's result came in one
/// of the two runs, and the resumed run gave nothing batch's result lacks
/// (stdout is at-least-once: rows after the last checkpoint come twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_resumed_from_a_checkpoint_equals_batch() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let cases = all_cases(scratch.path()).await;
    let status = StatusFile::read(STATUS, "tests/differential_status.txt");
    let mut problems = Vec::new();
    let mut checked = 0;
    for (i, case) in cases.iter().enumerate() {
        // Updating results are checked through their changelog elsewhere;
        // refused queries are listed in the status file.
        if !status.listed_passing(&case.name) {
            continue;
        }
        let Ok(batch) = run(case, false).await else {
            continue;
        };
        if batch.rows.len() < 2 {
            continue;
        }
        let dir = scratch.path().join(format!("ck-{i}"));
        let first = match run_checkpointed(case, &dir, Some(batch.rows.len() / 2)).await {
            Ok(rows) => rows,
            // Its changelog is checked against batch's elsewhere.
            Err(e) if e == "an updating result" => continue,
            Err(e) => {
                problems.push(format!("{}: the checkpointed run failed: {e}", case.name));
                continue;
            }
        };
        let second = match run_checkpointed(case, &dir, None).await {
            Ok(rows) => rows,
            Err(e) => {
                problems.push(format!("{}: the resumed run failed: {e}", case.name));
                continue;
            }
        };
        let mut remaining = batch.rows.clone();
        let mut extra = Vec::new();
        for row in &second.rows {
            match remaining.iter().position(|r| r == row) {
                Some(at) => {
                    remaining.remove(at);
                }
                None => extra.push(row.clone()),
            }
        }
        let missing: Vec<&String> = remaining.iter().filter(|r| !first.rows.contains(r)).collect();
        if !missing.is_empty() || !extra.is_empty() || second.columns != batch.columns {
            problems.push(format!(
                "{}: resumed from a checkpoint, the result differs from batch's\n  query: {}\n  in neither run: {missing:?}\n  resumed run's rows batch lacks: {extra:?}",
                case.name, case.query
            ));
            continue;
        }
        checked += 1;
    }
    println!("differential: {checked} windowed queries resumed from a checkpoint give batch's result");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 50, "only {checked} cases were checked");
}

/// The shuffled bids as a table, in `scratch`.
fn shuffled_bids_table(scratch: &Path) -> String {
    let bids = scratch.join("bids_shuffled.ndjson");
    shuffle_bids(&bids);
    format!(
        "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
           date_time TIMESTAMP(3), WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
         WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json')",
        bids.display()
    )
}

/// Run `query` over `table` in batch, and continuously (with `suffix`) in
/// batches of 50 rows: the changelog must update early (`-U` or `-D` rows) and,
/// applied in order, end at batch's result.
async fn changelog_ends_at_the_batch_result(table: &str, query: &str, suffix: &str) {
    let case = Case {
        name: "changelog".into(),
        setup: vec![table.to_string()],
        query: query.to_string(),
    };
    let batch = run(&case, false).await.expect("batch runs");
    let engine = Engine::new();
    engine.run_script(table).await.expect("table");
    engine
        .run_script("SET sluice.mode = 'continuous'; SET datafusion.execution.batch_size = 50")
        .await
        .expect("settings");
    let results = engine
        .run_script(&format!("{query} {suffix}"))
        .await
        .expect("continuous runs");
    let changes = &results[0];
    let schema = changes
        .first()
        .map_or_else(arrow::datatypes::Schema::empty, |b| b.schema().as_ref().clone());
    let updates = render(&schema, changes, &[])
        .rows
        .iter()
        .filter(|r| r.starts_with("-U") || r.starts_with("-D"))
        .count();
    assert!(
        updates > 0,
        "small batches update early (rows taken back): {query}"
    );
    assert_eq!(
        rows::apply_changelog(&schema, changes, &[]).expect("a valid changelog"),
        batch,
        "{query}"
    );
}

/// With `SET sluice.emit.interval`, an updating aggregate folds its changes
/// between emissions: far fewer changelog rows than after every batch, and
/// applied in order they end at the same batch result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_interval_folds_changes_and_ends_at_the_batch_result() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let table = shuffled_bids_table(scratch.path());
    let queries = [
        "SELECT channel, count(*) AS n, sum(price) AS total, max(price) AS top FROM bids GROUP BY channel",
        "SELECT n, count(*) AS auctions, max(top) AS highest_top
         FROM (SELECT auction, count(*) AS n, max(price) AS top FROM bids GROUP BY auction) GROUP BY n",
    ];
    for query in queries {
        let case = Case {
            name: "emit interval".into(),
            setup: vec![table.clone()],
            query: query.to_string(),
        };
        let batch = run(&case, false).await.expect("batch runs");
        let mut sizes = Vec::new();
        for interval in ["none", "1 min"] {
            let engine = Engine::new();
            engine.run_script(&table).await.expect("table");
            engine
                .run_script(&format!(
                    "SET sluice.mode = 'continuous'; SET datafusion.execution.batch_size = 50; \
                     SET sluice.emit.interval = '{interval}'"
                ))
                .await
                .expect("settings");
            let results = engine.run_script(query).await.expect("continuous runs");
            let changes = &results[0];
            let schema = changes
                .first()
                .map_or_else(arrow::datatypes::Schema::empty, |b| b.schema().as_ref().clone());
            assert_eq!(
                rows::apply_changelog(&schema, changes, &[]).expect("a valid changelog"),
                batch,
                "{query} with sluice.emit.interval = '{interval}'"
            );
            sizes.push(changes.iter().map(|b| b.num_rows()).sum::<usize>());
        }
        // A minute is longer than the replay: the first batch's changes go
        // out, then everything else once, at the end.
        assert!(sizes[1] * 4 < sizes[0], "{query}: {sizes:?} changelog rows");
    }
}

/// `EMIT CHANGES` sends early results and their updates; applied in order,
/// the changelog ends at batch's result. Small batches make many updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_changes_ends_at_the_batch_result() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let table = shuffled_bids_table(scratch.path());
    let queries = [
        "SELECT window_start, window_end, auction, count(*) AS n, max(price) AS top
         FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end, auction",
        "SELECT window_start, window_end, channel, sum(price) AS total
         FROM TABLE(HOP(TABLE bids, DESCRIPTOR(date_time), INTERVAL '5' SECOND, INTERVAL '20' SECOND))
         GROUP BY window_start, window_end, channel HAVING count(*) > 10",
    ];
    for query in queries {
        changelog_ends_at_the_batch_result(&table, query, "EMIT CHANGES").await;
    }
}

/// A Top-N not ordered by event time updates its ranks as rows come (`-U`
/// the row that held a rank, `+U` the one that holds it now); applied in
/// order, the changelog ends at batch's ranks. Every ORDER BY is total, so
/// batch has one answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_n_changelog_ends_at_the_batch_result() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let table = shuffled_bids_table(scratch.path());
    let queries = [
        // Nexmark q19's shape: the dearest bids per auction, with their rank.
        "SELECT * FROM (SELECT auction, bidder, price,
           ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, bidder) AS rn FROM bids)
         WHERE rn <= 3",
        // Nexmark q18's: each bidder's last bid, the rank dropped.
        "SELECT bidder, auction, price, date_time FROM (SELECT *,
           ROW_NUMBER() OVER (PARTITION BY bidder ORDER BY date_time DESC) AS rn FROM bids)
         WHERE rn = 1",
        // Over an updating GROUP BY: a count that grows moves its row up,
        // and the row it passes moves down (or out).
        "SELECT * FROM (SELECT channel, auction, n,
           ROW_NUMBER() OVER (PARTITION BY channel ORDER BY n DESC, auction) AS rn
           FROM (SELECT channel, auction, count(*) AS n FROM bids GROUP BY channel, auction))
         WHERE rn <= 3",
        // ORDER BY ... LIMIT over an updating GROUP BY (RisingWave's q105):
        // the top rows, no rank shown.
        "SELECT auction, count(*) AS n FROM bids GROUP BY auction ORDER BY n DESC, auction LIMIT 5",
        // ... and with an OFFSET, Flink's rank range: ranks 4 to 8.
        "SELECT auction, count(*) AS n FROM bids GROUP BY auction ORDER BY n DESC, auction LIMIT 5 OFFSET 3",
        // One partition, ranks shifting as better rows come.
        "SELECT * FROM (SELECT channel, auction, bidder, price,
           ROW_NUMBER() OVER (ORDER BY price DESC, bidder, auction) AS rn FROM bids)
         WHERE rn < 6",
    ];
    for query in queries {
        changelog_ends_at_the_batch_result(&table, query, "").await;
    }
}

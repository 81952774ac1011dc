//! RisingWave's Nexmark queries with golden results, as a correctness oracle
//! (windows, joins, top-N): `../shared/conformance/risingwave/e2e_test`.
//!
//! The fixed data set (`nexmark/create_tables.slt.part`, `insert_*.slt.part`)
//! is loaded into memory tables; each view of `streaming/nexmark/views/`
//! (PostgreSQL dialect) is created as a plain `CREATE VIEW` (batch has no
//! materialized views) and the query of `streaming/nexmark/qN.slt.part` is
//! compared with its expected rows. Each view's outcome must match its line in
//! `tests/nexmark_rw_status.txt`, which may only improve, as in `tests/nexmark.rs`.
//!
//! Values are compared as RisingWave prints them, after normalizing what is
//! formatting rather than value: runs of whitespace, numbers (`6221.50` =
//! `6221.5`; floats to 6 decimals), booleans (`t`/`f`), `NULL`, `(empty)`.

use std::path::{Path, PathBuf};

use rw_slt::{Record, format_rows, records};
use sluice::Engine;
use status::StatusFile;

mod rw_slt;
mod status;

const E2E: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/risingwave/e2e_test"
);
const STATUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nexmark_rw_status.txt");

/// Create the tables and load the fixed data set.
async fn load(engine: &Engine) {
    let data = Path::new(E2E).join("nexmark");
    for file in [
        "create_tables.slt.part",
        "insert_person.slt.part",
        "insert_auction.slt.part",
        "insert_bid.slt.part",
    ] {
        for record in records(&data.join(file)) {
            if let Record::Statement(sql) = record {
                engine
                    .run_script(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{file}: {e}\n{sql}"));
            }
        }
    }
}

/// The mechanical edits made to a view's statements, with the description
/// that its status line lists. `CREATE MATERIALIZED VIEW` becoming `CREATE
/// VIEW` is the harness, not an edit, and is not listed.
fn edit(sql: &str) -> (Option<String>, Option<&'static str>) {
    if sql.trim_start().starts_with("CREATE FUNCTION count_char") {
        return (
            None,
            Some("the CREATE FUNCTION count_char statement (a SQL UDF) is dropped (count_char is built in)"),
        );
    }
    (
        Some(sql.replacen("CREATE MATERIALIZED VIEW", "CREATE VIEW", 1)),
        None,
    )
}

/// Run view `name` and its query on loaded data: `Ok(())` when every row
/// matches, else what differs.
async fn check(name: &str, applied: &mut Vec<&'static str>) -> Result<(), String> {
    let dir = Path::new(E2E).join("streaming/nexmark");
    let engine = Engine::new();
    load(&engine).await;
    for record in records(&dir.join("views").join(format!("{name}.slt.part"))) {
        let Record::Statement(sql) = record else { continue };
        let (sql, description) = edit(&sql);
        applied.extend(description);
        if let Some(sql) = sql {
            engine.run_script(&sql).await.map_err(|e| format!("view: {e}"))?;
        }
    }
    let mut checked = 0;
    for record in records(&dir.join(format!("{name}.slt.part"))) {
        let Record::Query { sql, rowsort, rows } = record else {
            continue;
        };
        let results = engine.run_script(&sql).await.map_err(|e| format!("query: {e}"))?;
        let mut actual = format_rows(results.last().map_or(&[][..], Vec::as_slice));
        let mut expected = rows;
        if rowsort {
            actual.sort();
            expected.sort();
        }
        if actual != expected {
            let missing: Vec<&String> = expected.iter().filter(|r| !actual.contains(r)).take(3).collect();
            let extra: Vec<&String> = actual.iter().filter(|r| !expected.contains(r)).take(3).collect();
            return Err(format!(
                "{} rows, expected {}; missing e.g. {missing:?}; unexpected e.g. {extra:?}",
                actual.len(),
                expected.len()
            ));
        }
        checked += 1;
    }
    match checked {
        0 => Err("no query to check".to_string()),
        _ => Ok(()),
    }
}

/// The views with golden results (`q0` ... `q106`, `q6_group_top1`).
fn views() -> Vec<String> {
    let dir: PathBuf = Path::new(E2E).join("streaming/nexmark/views");
    let mut names: Vec<(u32, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry
                .ok()?
                .path()
                .file_name()?
                .to_str()?
                .strip_suffix(".slt.part")?
                .to_string();
            let number = name.trim_start_matches('q').split('_').next()?.parse().ok()?;
            Some((number, name))
        })
        .collect();
    names.sort();
    names.into_iter().map(|(_, name)| name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risingwave_nexmark_views_match_golden_results() {
    let status = StatusFile::read(STATUS, "tests/nexmark_rw_status.txt");
    let names = views();
    assert!(names.len() >= 26, "found only {} views", names.len());
    let mut problems = Vec::new();
    let mut report = Vec::new();
    for name in &names {
        let mut applied = Vec::new();
        let outcome = check(name, &mut applied).await;
        report.push(format!(
            "{name:>14} {}",
            outcome.as_ref().err().map_or("ok", String::as_str)
        ));
        problems.extend(status.check(name, &outcome, &applied));
    }
    problems.extend(status.strays(&names));
    eprintln!("RisingWave Nexmark views:\n{}", report.join("\n"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

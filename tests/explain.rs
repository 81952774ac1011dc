//! Snapshots of `EXPLAIN` for continuous queries: the operator graph each
//! plans to, with the state each operator keeps and what frees it.
//!
//! Each `tests/explain/NAME.sql` is a script whose last statement is a query;
//! the test runs its set-up, then `EXPLAIN` of the query, and compares the
//! `continuous operator` rows with `tests/explain/NAME.txt`, exactly. After a
//! deliberate change, `SLUICE_BLESS=1 cargo test --test explain` rewrites the
//! expected files; review their diff before committing.

use arrow::array::{AsArray, RecordBatch};
use sluice::Engine;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/explain");

/// The continuous operator rows of EXPLAIN's output, one per line.
fn operators(batches: &[RecordBatch]) -> String {
    let mut lines = Vec::new();
    for batch in batches {
        let (kinds, plans) = (
            batch.column(0).as_string::<i32>(),
            batch.column(1).as_string::<i32>(),
        );
        for row in 0..batch.num_rows() {
            if kinds.value(row) == "continuous operator" {
                lines.push(plans.value(row).to_string());
            }
        }
    }
    lines.join("\n") + "\n"
}

#[tokio::test]
async fn continuous_plans_match_their_snapshots() {
    let mut cases: Vec<_> = std::fs::read_dir(DIR)
        .expect("tests/explain is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {DIR}");
    let bless = std::env::var_os("SLUICE_BLESS").is_some();
    let mut problems = Vec::new();
    for case in &cases {
        let sql = std::fs::read_to_string(case).expect("read the case");
        let (setup, query) = match sql.trim().trim_end_matches(';').rsplit_once(';') {
            Some((setup, query)) => (setup.to_string() + ";", query.trim().to_string()),
            None => (String::new(), sql.trim().trim_end_matches(';').to_string()),
        };
        let engine = Engine::new();
        let results = engine
            .run_script(&format!("{setup}\nEXPLAIN {query};"))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        let actual = operators(results.last().map_or(&[][..], |b| b.as_slice()));
        let expected_path = case.with_extension("txt");
        if bless {
            std::fs::write(&expected_path, &actual).expect("write the snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            problems.push(format!(
                "{}: EXPLAIN differs from {} (SLUICE_BLESS=1 rewrites it)\n--- expected\n{expected}--- actual\n{actual}",
                case.display(),
                expected_path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

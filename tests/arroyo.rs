//! Arroyo's SQL smoke tests (`../shared/conformance/arroyo/sql-testing`):
//! each query of `queries/` runs in continuous mode over its bounded input
//! from `inputs/`, and its result, a changelog folded to its end, must equal
//! the golden output of `golden_outputs/` folded the same way.
//!
//! Arroyo's DDL and window syntax are translated mechanically by [`translate`];
//! every edit it makes is listed in the case's status line in
//! `tests/arroyo_status.txt`, which may only improve (see `tests/status`).
//! The harness itself, not an edit: a sink table (`type = 'sink'`) is not
//! created, and `INSERT INTO sink SELECT ...` runs as the `SELECT`, whose
//! columns take the sink's column names (by position) to meet the golden rows.
//!
//! Golden outputs are Debezium JSON for `debezium_json` sinks (`c`/`r` put
//! `after` in, `u` takes `before` out and puts `after` in, `d` takes `before`
//! out) or plain JSON rows. Both sides are compared as multisets of rows whose
//! values are normalized: numbers to 15 significant digits (a float
//! tolerance; the queries round their float aggregates to 4 decimals), timestamps to `YYYY-MM-DDTHH:MM:SS[.fff]` with no zone.
//!
//! Approximate aggregates are the exception: a column of the sink's SELECT
//! computed with a t-digest ([`APPROXIMATE`]: `approx_median`,
//! `approx_percentile_cont`, `approx_percentile_cont_with_weight`) is an
//! estimate that depends on the digest's implementation and on the order rows
//! reach it (Arroyo's digest gives 150 for a median DataFusion 55's, which
//! interpolates between centroids, gives as 150.36). Such columns must agree
//! within [`APPROXIMATE_TOLERANCE`] (relative); every other column of the row
//! must still be equal. `approx_distinct` (HyperLogLog) is compared exactly.

mod conformance_streaming;
mod status;

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use conformance_streaming::{read_until_quiet, waits_for_the_end};
use futures::TryStreamExt;
use serde_json::Value;
use sluice::Engine;
use sluice::plan::Executor;
use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, SelectItem, SetExpr,
    Value as SqlValue, VisitMut, VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use status::StatusFile;

const SUITE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/arroyo/sql-testing"
);
const STATUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/arroyo_status.txt");

/// The aggregates whose result is a t-digest's estimate (see the module's
/// comment).
const APPROXIMATE: &[&str] = &[
    "approx_median",
    "approx_percentile_cont",
    "approx_percentile_cont_with_weight",
];

/// How far (relative) an estimate of an [`APPROXIMATE`] aggregate may be
/// from the golden one: 1 %, four times the two digests' disagreement on
/// the median here (150.36 against 150), and well below the gap between
/// neighbouring percentiles of these inputs (driver ids 100 to 200, about
/// 1 apart per percentile, 10 from the 40th to the 50th): a digest that
/// estimated another percentile would not pass.
const APPROXIMATE_TOLERANCE: f64 = 0.01;

/// Arroyo's watermark for a source that names its event time column
/// (`event_time_field`) but declares no watermark: one second behind the
/// largest event time seen.
const DEFAULT_LATENESS: &str = "INTERVAL '1' SECOND";

/// A query translated for Sluice.
struct Translated {
    /// The statements before the SELECT (source tables, views).
    setup: String,
    /// The SELECT the sink's INSERT inserts.
    select: String,
    /// The sink's declared columns (empty when it declares none).
    sink_columns: Vec<String>,
    /// Whether the sink writes Debezium JSON (golden rows are changes).
    debezium_sink: bool,
    /// Whether a source is a followed file (unbounded: read until quiet).
    follows: bool,
    /// The positions of the SELECT's columns computed by an [`APPROXIMATE`]
    /// aggregate.
    approximate: Vec<usize>,
    /// The descriptions of the edits made.
    applied: Vec<&'static str>,
}

/// The `WITH (...)` options of a CREATE TABLE statement, and where the
/// clause starts in it.
fn with_options(statement: &str) -> Option<(usize, Vec<(String, String)>)> {
    let lower = statement.to_lowercase();
    let start = lower.rfind("with (")?;
    let body = statement[start + "with (".len()..].trim_end().strip_suffix(')')?;
    let options = body
        .split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let unquote = |s: &str| s.trim().trim_matches('\'').to_string();
            Some((unquote(key), unquote(value)))
        })
        .collect();
    Some((start, options))
}

/// The column names of a CREATE TABLE's column list (none if it has none).
fn declared_columns(statement: &str, with_at: usize) -> Vec<String> {
    let head = &statement[..with_at];
    let (Some(open), Some(close)) = (head.find('('), head.rfind(')')) else {
        return Vec::new();
    };
    head[open + 1..close]
        .split(',')
        .filter_map(|c| c.split_whitespace().next())
        .filter(|name| !name.eq_ignore_ascii_case("watermark"))
        .map(str::to_lowercase)
        .collect()
}

/// Translate one query file (see the module's comment); `Err` when a
/// statement is of a kind the translation does not know.
fn translate(sql: &str) -> Result<Translated, String> {
    let inputs = Path::new(SUITE).join("inputs");
    let mut setup = Vec::new();
    let mut select = None;
    let mut sink_columns = Vec::new();
    let mut debezium_sink = false;
    let mut follows = false;
    let mut applied = Vec::new();
    let mut event_time = None;
    let note = |applied: &mut Vec<&'static str>, description: &'static str| {
        if !applied.contains(&description) {
            applied.push(description);
        }
    };
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        // `--pk=...` and `--fail=...` header lines are SQL comments: left as they are.
        let code: String = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let code = code.trim();
        if code.is_empty() {
            continue;
        }
        let lower = code.to_lowercase();
        if lower.starts_with("create table") {
            let (with_at, options) = with_options(code).ok_or_else(|| format!("no WITH (...) in {code}"))?;
            let option = |key: &str| options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
            if option("type") == Some("sink") {
                sink_columns = declared_columns(code, with_at);
                debezium_sink = option("format") == Some("debezium_json");
                continue;
            }
            if option("connector") != Some("single_file") {
                return Err(format!("a source of connector {:?}", option("connector")));
            }
            let path = option("path")
                .and_then(|p| p.strip_prefix("$input_dir/"))
                .ok_or_else(|| format!("a source path not under $input_dir: {:?}", option("path")))?;
            let format = match option("format") {
                Some("json") => "json",
                Some("debezium_json") => {
                    note(
                        &mut applied,
                        "format = 'debezium_json' becomes 'format' = 'debezium-json', 'follow' = 'true' (Sluice reads a changelog from stdin or a followed file; the run is read until quiet)",
                    );
                    follows = true;
                    "debezium-json', 'follow' = 'true"
                }
                other => return Err(format!("a source of format {other:?}")),
            };
            note(
                &mut applied,
                "a source's WITH (connector = 'single_file', path = '$input_dir/F', type = 'source') becomes ('connector' = 'file', 'path' = '<inputs>/F')",
            );
            let mut head = code[..with_at].trim_end().to_string();
            // The watermark: Arroyo's `WATERMARK FOR ts` (no expression) is
            // zero lateness; `event_time_field` alone is Arroyo's default.
            let watermark = lower.find("watermark for ");
            if let Some(at) = watermark {
                let rest = &head[at + "watermark for ".len()..];
                let column = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let after = rest[column.len()..].trim_start();
                if !after.to_lowercase().starts_with("as") {
                    let end = at + "watermark for ".len() + column.len();
                    head.insert_str(end, &format!(" AS {column}"));
                    note(&mut applied, "WATERMARK FOR ts becomes WATERMARK FOR ts AS ts");
                }
                event_time = Some(column);
            } else if let Some(column) = option("event_time_field") {
                let close = head.rfind(')').ok_or("no column list")?;
                head.insert_str(
                    close,
                    &format!(",\n  WATERMARK FOR {column} AS {column} - {DEFAULT_LATENESS}\n"),
                );
                note(
                    &mut applied,
                    "event_time_field = 'ts' becomes WATERMARK FOR ts AS ts - INTERVAL '1' SECOND (Arroyo's default)",
                );
                event_time = Some(column.to_string());
            }
            let path = inputs.join(path);
            setup.push(format!(
                "{head} WITH ('connector' = 'file', 'path' = '{}', 'format' = '{format}')",
                path.display()
            ));
        } else if lower.starts_with("create view") {
            setup.push(edit_query(code, event_time.as_deref(), &mut applied)?);
        } else if lower.starts_with("insert into") {
            let at = lower
                .find("select")
                .ok_or_else(|| format!("an INSERT without SELECT: {code}"))?;
            select = Some(edit_query(&code[at..], event_time.as_deref(), &mut applied)?);
        } else {
            return Err(format!("a statement the translation does not know: {code}"));
        }
    }
    let select = select.ok_or("no INSERT INTO ... SELECT")?;
    Ok(Translated {
        setup: setup.join(";\n") + ";",
        approximate: approximate_columns(&select),
        select,
        sink_columns,
        debezium_sink,
        follows,
        applied,
    })
}

/// The positions of `select`'s items that call an [`APPROXIMATE`] aggregate.
fn approximate_columns(select: &str) -> Vec<usize> {
    let Ok(statements) = Parser::parse_sql(&GenericDialect {}, select) else {
        return Vec::new();
    };
    let Some(sqlparser::ast::Statement::Query(query)) = statements.first() else {
        return Vec::new();
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Vec::new();
    };
    let calls_approximate = |item: &SelectItem| {
        let mut found = false;
        let _ = sqlparser::ast::visit_expressions(item, |expr| {
            if let Expr::Function(f) = expr {
                found |= APPROXIMATE.contains(&f.name.to_string().to_lowercase().as_str());
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        found
    };
    (0..select.projection.len())
        .filter(|&i| calls_approximate(&select.projection[i]))
        .collect()
}

/// Whether `actual` and `expected` (each sorted) hold the same rows, the
/// cells at `approximate` within [`APPROXIMATE_TOLERANCE`] of each other
/// (rows paired in the order of their other cells).
fn approximately_equal(actual: &Rows, expected: &Rows, approximate: &[usize]) -> bool {
    let exact = |row: &Vec<String>| -> Vec<String> {
        let mut row = row.clone();
        for &i in approximate {
            if let Some(cell) = row.get_mut(i) {
                *cell = String::new();
            }
        }
        row
    };
    let paired = |rows: &Rows| {
        let mut rows: Vec<(Vec<String>, Vec<String>)> = rows.iter().map(|r| (exact(r), r.clone())).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    };
    let (actual, expected) = (paired(actual), paired(expected));
    let close = |a: &str, b: &str| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() <= APPROXIMATE_TOLERANCE * a.abs().max(b.abs()),
        _ => a == b,
    };
    actual.len() == expected.len()
        && actual.iter().zip(&expected).all(|((a_exact, a), (e_exact, e))| {
            a_exact == e_exact && approximate.iter().all(|&i| close(&a[i], &e[i]))
        })
}

/// The edits to a view or a sink's SELECT: `==` becomes `=`, and Arroyo's
/// windows become Flink's legacy group windows (see [`ArroyoWindows`]).
fn edit_query(
    sql: &str,
    event_time: Option<&str>,
    applied: &mut Vec<&'static str>,
) -> Result<String, String> {
    let mut sql = sql.to_string();
    if sql.contains("==") {
        sql = sql.replace("==", "=");
        applied.push("`==` becomes `=`");
    }
    let mut statements = Parser::parse_sql(&GenericDialect {}, &sql).map_err(|e| format!("parse: {e}"))?;
    let mut windows = ArroyoWindows {
        event_time: event_time.unwrap_or("timestamp").to_string(),
        found: false,
    };
    let _ = statements.visit(&mut windows);
    if !windows.found {
        return Ok(sql);
    }
    let description = "Arroyo's window (TUMBLE(size) AS w in the select list, GROUP BY w or its position; HOP, SESSION alike) becomes Flink's group window over the event time (named_struct('start', TUMBLE_START(ts, size), 'end', TUMBLE_END(ts, size)) AS w, GROUP BY TUMBLE(ts, size))";
    if !applied.contains(&description) {
        applied.push(description);
    }
    Ok(statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(";\n"))
}

/// Arroyo's windows: `TUMBLE(INTERVAL '1' HOUR) AS window` in a select list,
/// grouped by `window` (its alias) or its position, read as a struct
/// `window.start` / `window.end` above. Each becomes Flink's legacy group
/// window over the event time column, which Sluice plans as a window TVF.
struct ArroyoWindows {
    event_time: String,
    found: bool,
}

/// `f(args)` with unnamed arguments.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    let sql = format!(
        "{name}({})",
        args.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Parser::new(&GenericDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
        .expect("a call parses")
}

/// The window function and its interval arguments, if `expr` is an Arroyo window.
fn arroyo_window(expr: &Expr) -> Option<(String, Vec<Expr>)> {
    let Expr::Function(f) = expr else { return None };
    let name = f.name.to_string().to_uppercase();
    if !matches!(name.as_str(), "TUMBLE" | "HOP" | "SESSION") {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args: Vec<Expr> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e @ Expr::Interval(_))) => Some(e.clone()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!args.is_empty()).then_some((name, args))
}

impl VisitorMut for ArroyoWindows {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut sqlparser::ast::Query) -> std::ops::ControlFlow<()> {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return std::ops::ControlFlow::Continue(());
        };
        let time = Expr::Identifier(Ident::with_quote('"', &self.event_time));
        for (index, item) in select.projection.iter_mut().enumerate() {
            let (expr, alias) = match item {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
                _ => continue,
            };
            let Some((name, args)) = arroyo_window(expr) else {
                continue;
            };
            self.found = true;
            let with_time: Vec<Expr> = std::iter::once(time.clone()).chain(args).collect();
            let start = call(&format!("{name}_START"), with_time.clone());
            let end = call(&format!("{name}_END"), with_time.clone());
            *expr = call(
                "named_struct",
                vec![
                    Expr::value(SqlValue::SingleQuotedString("start".into())),
                    start,
                    Expr::value(SqlValue::SingleQuotedString("end".into())),
                    end,
                ],
            );
            let group = call(&name, with_time);
            if let GroupByExpr::Expressions(keys, _) = &mut select.group_by {
                for key in keys.iter_mut() {
                    let names_it = match &*key {
                        Expr::Value(v) => v.value.to_string() == (index + 1).to_string(),
                        Expr::Identifier(id) => alias
                            .as_ref()
                            .is_some_and(|a| a.value.eq_ignore_ascii_case(&id.value)),
                        other => arroyo_window(other).is_some(),
                    };
                    if names_it {
                        *key = group.clone();
                    }
                }
            }
        }
        std::ops::ControlFlow::Continue(())
    }
}

/// A value as compared: numbers to 15 significant digits, timestamps without
/// zone or trailing zeros, `NULL`.
fn normalize(text: &str) -> String {
    if let Ok(number) = text.parse::<f64>() {
        let number = if number == 0.0 { 0.0 } else { number };
        return format!("{number:.14e}");
    }
    let bytes = text.as_bytes();
    let looks_like_time = bytes.len() >= 19 && bytes[4] == b'-' && bytes[7] == b'-' && bytes[13] == b':';
    if looks_like_time {
        let mut t = text.replacen(' ', "T", 1);
        for zone in ["Z", "+00:00"] {
            if let Some(stripped) = t.strip_suffix(zone) {
                t = stripped.to_string();
            }
        }
        if t.contains('.') {
            t = t.trim_end_matches('0').trim_end_matches('.').to_string();
        }
        return t;
    }
    text.to_string()
}

fn json_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "NULL".to_string(),
        Some(Value::String(s)) => normalize(s),
        Some(other) => normalize(&other.to_string()),
    }
}

/// A multiset of rows, sorted.
type Rows = Vec<Vec<String>>;

/// Take one row equal to `row` out of `rows`, or say it was never there.
fn take_out(rows: &mut Rows, row: &[String], what: &str) -> Result<(), String> {
    let at = rows
        .iter()
        .position(|r| r == row)
        .ok_or_else(|| format!("{what} of a row not there: {row:?}"))?;
    rows.swap_remove(at);
    Ok(())
}

/// The golden rows of case `name`.
fn golden(name: &str, columns: &[String], debezium: bool) -> Result<Rows, String> {
    fold_golden(
        &Path::new(SUITE)
            .join("golden_outputs")
            .join(format!("{name}.json")),
        columns,
        debezium,
    )
}

/// The rows of a golden file, folded when they are Debezium changes.
fn fold_golden(path: &Path, columns: &[String], debezium: bool) -> Result<Rows, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let row_of =
        |object: &Value| -> Vec<String> { columns.iter().map(|c| json_cell(object.get(c))).collect() };
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("golden {name}: {e}: {line}"))?;
        // Every column compared must be in the golden rows (a missing key
        // would read as NULL on both sides).
        let object = if debezium { &value["after"] } else { &value };
        if let Some(column) = columns
            .iter()
            .find(|c| object.is_object() && object.get(c.as_str()).is_none())
        {
            return Err(format!("golden {name}: no column {column} in {line}"));
        }
        if !debezium {
            rows.push(row_of(&value));
            continue;
        }
        let op = value.get("op").and_then(Value::as_str).unwrap_or_default();
        if matches!(op, "u" | "d") {
            take_out(&mut rows, &row_of(&value["before"]), "golden `before`")?;
        }
        if matches!(op, "c" | "r" | "u") {
            rows.push(row_of(&value["after"]));
        }
    }
    rows.sort();
    Ok(rows)
}

/// Our rows, a changelog (first column `op`) folded in the order it came.
fn ours(batches: &[RecordBatch], changelog: bool) -> Result<Rows, String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows: Rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            let mut cells = formatters.iter().map(|f| f.value(row).to_string());
            if !changelog {
                rows.push(cells.map(|c| normalize(&c)).collect());
                continue;
            }
            let op = cells.next().unwrap_or_default();
            let cells: Vec<String> = cells.map(|c| normalize(&c)).collect();
            match op.as_str() {
                "+I" | "+U" => rows.push(cells),
                "-U" | "-D" => take_out(&mut rows, &cells, &op)?,
                other => return Err(format!("unknown change {other}")),
            }
        }
    }
    rows.sort();
    Ok(rows)
}

/// Run one case: `Ok` when its folded result equals the folded golden rows.
/// A case that matched: its rows, and whether its plan waits for the end of
/// the input somewhere (an operator a bounded replay allows, which the same
/// query over an unbounded source would not have).
struct Matched {
    rows: usize,
    at_end_of_input: bool,
}

async fn check(name: &str, translated: &Translated) -> Result<Matched, String> {
    let engine = Engine::new();
    engine
        .run_script(&format!("{}\nSET sluice.mode = 'continuous';", translated.setup))
        .await
        .map_err(|e| format!("set-up: {e}"))?;
    let statement = engine
        .split(&translated.select)
        .and_then(|tokens| match tokens.as_slice() {
            [one] => engine.parse(one),
            _ => panic!("not one statement: {}", translated.select),
        })
        .map_err(|e| format!("parse: {e}"))?;
    let output = engine.execute(&statement).await.map_err(|e| e.to_string())?;
    let at_end_of_input = waits_for_the_end(&engine, &translated.select).await?;
    let executor = output.executor.as_ref().map(|c| c.executor);
    if executor != Some(Executor::Continuous) {
        return Err(format!("ran on {executor:?}, not continuous"));
    }
    let schema = output.stream.schema();
    let batches: Vec<RecordBatch> = match translated.follows {
        true => read_until_quiet(output.stream).await?,
        false => output
            .stream
            .try_collect()
            .await
            .map_err(|e| format!("error while running: {e}"))?,
    };
    let changelog = schema.fields().first().is_some_and(|f| f.name() == "op");
    let names: Vec<String> = schema
        .fields()
        .iter()
        .skip(usize::from(changelog))
        .map(|f| f.name().to_lowercase())
        .collect();
    let columns = match translated.sink_columns.as_slice() {
        [] => names,
        declared if declared.len() == names.len() => declared.to_vec(),
        declared => return Err(format!("{} columns, the sink declares {declared:?}", names.len())),
    };
    let expected = golden(name, &columns, translated.debezium_sink)?;
    let actual = ours(&batches, changelog).map_err(|e| format!("a bad changelog: {e}"))?;
    if actual == expected || approximately_equal(&actual, &expected, &translated.approximate) {
        return Ok(Matched {
            rows: actual.len(),
            at_end_of_input,
        });
    }
    let missing: Vec<&Vec<String>> = expected.iter().filter(|r| !actual.contains(r)).take(2).collect();
    let extra: Vec<&Vec<String>> = actual.iter().filter(|r| !expected.contains(r)).take(2).collect();
    Err(format!(
        "{} rows, expected {} (columns {columns:?}); missing e.g. {missing:?}; unexpected e.g. {extra:?}",
        actual.len(),
        expected.len()
    ))
}

/// The queries, by name, in name order.
fn queries() -> Vec<(String, String)> {
    let dir = Path::new(SUITE).join("queries");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_stem()?.to_str()?.to_string();
            Some((name, std::fs::read_to_string(&path).ok()?))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arroyo_smoke_tests_match_their_status() {
    let status = StatusFile::read(STATUS, "tests/arroyo_status.txt");
    let files = queries();
    assert!(files.len() >= 18, "found only {} queries", files.len());
    let mut problems = Vec::new();
    let mut report = Vec::new();
    let mut passed = 0;
    for (name, sql) in &files {
        let (outcome, applied) = match translate(sql) {
            Ok(translated) => (check(name, &translated).await, translated.applied),
            Err(e) => (Err(format!("translation: {e}")), Vec::new()),
        };
        passed += usize::from(outcome.is_ok());
        report.push(format!(
            "{name:>28} {}",
            match &outcome {
                Ok(Matched {
                    rows,
                    at_end_of_input: false,
                }) => format!("ok ({rows} rows)"),
                Ok(Matched { rows, .. }) =>
                    format!("ok ({rows} rows; a step waits for the end of the replay)"),
                Err(e) => e.clone(),
            }
        ));
        problems.extend(status.check(name, &outcome, &applied));
    }
    let names: Vec<String> = files.into_iter().map(|(name, _)| name).collect();
    problems.extend(status.strays(&names));
    eprintln!(
        "Arroyo smoke tests: {passed}/{} pass\n{}",
        names.len(),
        report.join("\n")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn only_approximate_columns_compare_within_the_tolerance() {
    let select = "SELECT k, approx_median(v) AS m, round(approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY v), 4) AS p, median(v) FROM t GROUP BY k";
    assert_eq!(approximate_columns(select), vec![1, 2]);
    let row =
        |k: &str, m: &str, p: &str, median: &str| vec![k, m, p, median].into_iter().map(normalize).collect();
    let golden: Rows = vec![row("a", "150", "150", "150"), row("b", "104", "105", "104")];
    let near: Rows = vec![
        row("a", "150.36", "150.36", "150"),
        row("b", "104", "105.5", "104"),
    ];
    assert!(approximately_equal(&near, &golden, &[1, 2]));
    let far: Rows = vec![row("a", "152", "150", "150"), row("b", "104", "105", "104")];
    assert!(!approximately_equal(&far, &golden, &[1, 2]));
    let exact_differs: Rows = vec![row("a", "150", "150", "151"), row("b", "104", "105", "104")];
    assert!(!approximately_equal(&exact_differs, &golden, &[1, 2]));
    assert!(!approximately_equal(&near, &golden, &[]));
}

#[test]
fn normalizing_meets_golden_values() {
    assert_eq!(
        normalize("2023-10-09T17:13:20+00:00"),
        normalize("2023-10-09 17:13:20")
    );
    assert_eq!(normalize("2023-10-09T17:13:59.800"), "2023-10-09T17:13:59.8");
    assert_eq!(normalize("4175.077"), normalize("4175.077000000001"));
    assert_ne!(normalize("4175.077"), normalize("4175.0771"));
    assert_ne!(normalize("1695067737.1303"), normalize("1695067737.1304"));
    assert_eq!(normalize("-0.0"), normalize("0"));
}

#[test]
fn debezium_changes_fold() {
    let before = |v: &str| format!(r#"{{"before":{{"k":"a","n":{v}}},"after":null,"op":"d"}}"#);
    let rows = |lines: &[String]| -> Result<Rows, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("x.json"), lines.join("\n")).expect("write");
        fold_golden(
            &dir.path().join("x.json"),
            &["k".to_string(), "n".to_string()],
            true,
        )
    };
    let insert = r#"{"before":null,"after":{"k":"a","n":1},"op":"c"}"#.to_string();
    let update = r#"{"before":{"k":"a","n":1},"after":{"k":"a","n":2},"op":"u"}"#.to_string();
    assert_eq!(
        rows(&[insert.clone(), update.clone()]),
        Ok(vec![vec!["a".to_string(), normalize("2")]])
    );
    assert_eq!(rows(&[insert.clone(), update, before("2")]), Ok(vec![]));
    assert!(
        rows(&[insert, before("5")]).is_err(),
        "a delete of a row never inserted"
    );
}

/// The comparison can fail: the right rows under the wrong column names do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_under_other_column_names_differs() {
    let (name, sql) = queries()
        .into_iter()
        .find(|(name, _)| name == "grouped_aggregates")
        .expect("grouped_aggregates");
    let mut translated = translate(&sql).expect("translates");
    assert!(check(&name, &translated).await.is_ok());
    translated.sink_columns.swap(1, 2); // min and max
    assert!(check(&name, &translated).await.is_err());
}

//! RisingWave's streaming cases (`../shared/conformance/risingwave/e2e_test/streaming`:
//! `time_window*.slt`, `watermark.slt`, `eowc/*.slt`, and `nexmark_snapshot.slt`,
//! the Nexmark views of `tests/nexmark_rw.rs` run as streams) against their
//! expected rows. (`nexmark_upstream.slt` inserts after creating the views;
//! as each view is computed at its query here, it would be the same run.)
//!
//! RisingWave keeps each materialized view up to date as rows are inserted;
//! its `query` records read the views between inserts. The runner maps that
//! onto Sluice as follows (the harness, not edits):
//! * `CREATE TABLE t (...)` is remembered, and each `INSERT INTO t VALUES`
//!   appended to the rows of `t` so far; `SET ...` and `FLUSH` do nothing
//!   (every query sees every row inserted before it).
//! * `CREATE MATERIALIZED VIEW mv AS SELECT ...` is remembered (`DROP` forgets).
//! * At a `query`, each view it reads is computed: the rows of each table so
//!   far are written to an NDJSON file (in insert order), the table is created
//!   over it as a `file` table (with its watermark), and the view's SELECT runs
//!   in continuous mode, its changelog folded to its end. A view without
//!   `EMIT ON WINDOW CLOSE` is a bounded replay, which ends with a watermark
//!   that closes every window: RisingWave's view of a table with no
//!   watermark, or its windowed aggregates updated as rows come, hold the same
//!   rows. A view with `EMIT ON WINDOW CLOSE` holds only what the watermark
//!   has closed so far: its tables are followed files (`'follow' = 'true'`,
//!   unbounded, so no closing watermark), read until it is quiet
//!   ([`read_until_quiet`]). The folded rows become a table under the view's name, and the
//!   `query` runs over it in batch.
//! * `statement error` on a `CREATE MATERIALIZED VIEW`: its SELECT must fail
//!   to plan or run in continuous mode.
//!
//! Each case (a `query` or `statement error` record, named `file#n`) must
//! match its line in `tests/risingwave_streaming_status.txt`, which may only
//! improve. The mechanical edits, listed in the status lines, are
//! [`edit_table`]'s and [`edit_insert`]'s. Values are compared as RisingWave prints them, after
//! normalizing formatting (whitespace, `6221.50` = `6221.5`, `t`/`f`, `NULL`).

mod conformance_streaming;
mod rw_slt;
mod status;

use std::path::{Path, PathBuf};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use conformance_streaming::{read_until_quiet, waits_for_the_end};
use futures::TryStreamExt;
use rw_slt::{Record, format_rows, records};
use sluice::Engine;
use sluice::plan::Executor;
use status::StatusFile;

const STREAMING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/risingwave/e2e_test/streaming"
);
const STATUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/risingwave_streaming_status.txt"
);

/// The files run, relative to [`STREAMING`].
const FILES: &[&str] = &[
    "time_window.slt",
    "time_window_join.slt",
    "watermark.slt",
    "eowc/eowc_select.slt",
    "eowc/eowc_group_agg.slt",
    "eowc/eowc_group_top_n.slt",
    "eowc/eowc_over_window.slt",
    "nexmark_snapshot.slt",
];

/// A table as RisingWave declared it, with the rows inserted so far.
struct Table {
    name: String,
    /// Its column definitions, the watermark clause apart.
    columns: Vec<String>,
    /// `WATERMARK FOR ...`, if it declares one.
    watermark: Option<String>,
    /// The columns of its `PRIMARY KEY`, if it declares one.
    primary_key: Option<String>,
    /// Each `INSERT INTO` it had, in order.
    inserts: Vec<String>,
    /// The mechanical edits its statements had.
    edits: Vec<&'static str>,
}

/// The edits the tables' statements had, each once, in order.
fn edits_of(tables: &[Table]) -> Vec<&'static str> {
    let mut edits = Vec::new();
    for edit in tables.iter().flat_map(|t| &t.edits) {
        if !edits.contains(edit) {
            edits.push(*edit);
        }
    }
    edits
}

/// A materialized view: its SELECT, and whether it emits on window close.
struct View {
    name: String,
    select: String,
    on_window_close: bool,
}

/// Split `text` at the commas outside parentheses and quotes.
fn top_level_split(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0, false);
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current.trim().to_string());
    parts.retain(|p| !p.is_empty());
    parts
}

/// The mechanical edits to a table: RisingWave's `APPEND ONLY` after the
/// columns is dropped (a replayed table only appends; Sluice has no such
/// keyword), and so is a `PRIMARY KEY` (Sluice's tables have none; RisingWave
/// upserts on it, so [`write_tables`] checks that no key repeats). Returns the
/// table, with the edits' descriptions in its `edits`.
fn edit_table(sql: &str) -> Result<Table, String> {
    let open = sql.find('(').ok_or("no column list")?;
    let close = sql.rfind(')').ok_or("no column list")?;
    let name = sql[..open]
        .split_whitespace()
        .last()
        .ok_or("no table name")?
        .to_lowercase();
    let mut edits = Vec::new();
    let rest = sql[close + 1..].trim().trim_end_matches(';').trim();
    match rest.to_lowercase().as_str() {
        "" => {}
        "append only" => edits.push("APPEND ONLY after the columns is dropped"),
        other => return Err(format!("a table clause the runner does not know: {other}")),
    }
    let (mut columns, mut watermark, mut primary_key) = (Vec::new(), None, None);
    for item in top_level_split(&sql[open + 1..close]) {
        let lower = item.to_lowercase();
        if lower.starts_with("watermark") {
            watermark = Some(item);
        } else if lower.starts_with("primary key") {
            let keys = item[item.find('(').ok_or("PRIMARY KEY without columns")? + 1..]
                .trim_end_matches(')')
                .to_string();
            primary_key = Some(keys);
        } else if let Some(column) = lower.strip_suffix(" primary key") {
            primary_key = item.split_whitespace().next().map(str::to_string);
            columns.push(item[..column.len()].to_string());
        } else {
            columns.push(item);
        }
    }
    if primary_key.is_some() {
        edits.push("PRIMARY KEY is dropped (no inserted key repeats, checked)");
    }
    Ok(Table {
        name,
        columns,
        watermark,
        primary_key,
        inserts: Vec::new(),
        edits,
    })
}

/// The second mechanical edit: a time literal without seconds in an
/// INSERT (`'2020-04-15 12:02'`, which PostgreSQL reads and arrow's parser
/// refuses) gets them (`'2020-04-15 12:02:00'`).
fn edit_insert(sql: &str) -> (String, Option<&'static str>) {
    let mut parts: Vec<String> = sql.split('\'').map(str::to_string).collect();
    let mut edited = false;
    // Odd pieces are inside quotes.
    for piece in parts.iter_mut().skip(1).step_by(2) {
        let b = piece.as_bytes();
        let minutes = b.len() == 16
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b' '
            && b[13] == b':'
            && piece.chars().filter(char::is_ascii_digit).count() == 12;
        if minutes {
            piece.push_str(":00");
            edited = true;
        }
    }
    let description = "a time literal without seconds in an INSERT ('2020-04-15 12:02') gets them (':00')";
    (parts.join("'"), edited.then_some(description))
}

/// The name a statement's first words give (`create materialized view NAME`, ...).
fn name_after(sql: &str, words: usize) -> String {
    sql.split_whitespace()
        .nth(words)
        .unwrap_or_default()
        .trim_end_matches(';')
        .to_lowercase()
}

/// A view's SELECT and whether it ends with `EMIT ON WINDOW CLOSE`.
fn view_of(sql: &str) -> Result<View, String> {
    // `create materialized view NAME as SELECT ...`: the SELECT is what
    // follows the fifth word.
    let mut rest = sql.trim_start();
    for word in 0..5 {
        let end = rest.find(char::is_whitespace).ok_or("no SELECT")?;
        if word == 4 && !rest[..end].eq_ignore_ascii_case("as") {
            return Err("no AS after the view's name".to_string());
        }
        rest = rest[end..].trim_start();
    }
    let select = rest.trim_end().trim_end_matches(';').trim_end().to_string();
    Ok(View {
        name: name_after(sql, 3),
        on_window_close: select.to_lowercase().ends_with("emit on window close"),
        select,
    })
}

/// Write each table's rows so far to `dir/<table>.ndjson`, through a batch
/// engine (a memory table, the inserts, COPY to JSON).
async fn write_tables(tables: &[Table], dir: &Path) -> Result<(), String> {
    let engine = Engine::new();
    for table in tables {
        let path = dir.join(format!("{}.ndjson", table.name));
        let create = format!("CREATE TABLE {} ({})", table.name, table.columns.join(", "));
        engine
            .run_script(&create)
            .await
            .map_err(|e| format!("{create}: {e}"))?;
        for insert in &table.inserts {
            engine
                .run_script(insert)
                .await
                .map_err(|e| format!("{insert}: {e}"))?;
        }
        if let Some(key) = &table.primary_key {
            let repeats = format!(
                "SELECT count(*) FROM (SELECT {key} FROM {} GROUP BY {key} HAVING count(*) > 1)",
                table.name
            );
            let results = engine
                .run_script(&repeats)
                .await
                .map_err(|e| format!("{repeats}: {e}"))?;
            if format_rows(results.last().map_or(&[][..], Vec::as_slice)) != ["0"] {
                return Err(format!(
                    "{}: a PRIMARY KEY ({key}) repeats, which RisingWave would upsert",
                    table.name
                ));
            }
        }
        if table.inserts.is_empty() {
            std::fs::write(&path, "").map_err(|e| e.to_string())?;
            continue;
        }
        let copy = format!(
            "COPY (SELECT * FROM {}) TO '{}' STORED AS JSON",
            table.name,
            path.display()
        );
        engine
            .run_script(&copy)
            .await
            .map_err(|e| format!("{copy}: {e}"))?;
    }
    Ok(())
}

/// Create the tables over their files (followed, or bounded).
async fn create_tables(engine: &Engine, tables: &[Table], dir: &Path, follow: bool) -> Result<(), String> {
    for table in tables {
        let mut columns = table.columns.clone();
        columns.extend(table.watermark.clone());
        let create = format!(
            "CREATE TABLE {} ({}) WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json'{})",
            table.name,
            columns.join(", "),
            dir.join(format!("{}.ndjson", table.name)).display(),
            if follow { ", 'follow' = 'true'" } else { "" }
        );
        engine
            .run_script(&create)
            .await
            .map_err(|e| format!("{create}: {e}"))?;
    }
    Ok(())
}

/// Run `select` in continuous mode over the tables so far: its changelog
/// folded to what it ends at, and whether its plan waits for the end of the
/// replay ([`waits_for_the_end`]). Over followed files (`follow`), the output is
/// read until it is quiet ([`read_until_quiet`]).
async fn run_continuous(
    select: &str,
    tables: &[Table],
    views: &[View],
    dir: &Path,
    follow: bool,
) -> Result<(RecordBatch, bool), String> {
    let engine = Engine::new();
    create_tables(&engine, tables, dir, follow).await?;
    // Views the SELECT reads are plain views over the same tables (an EMIT
    // clause belongs to a query, not a view, in Sluice).
    for view in views.iter().filter(|v| mentions(select, &v.name)) {
        let body = match view.on_window_close {
            true => &view.select[..view.select.len() - "emit on window close".len()],
            false => view.select.as_str(),
        };
        let sql = format!("CREATE VIEW {} AS {body}", view.name);
        engine.run_script(&sql).await.map_err(|e| format!("{sql}: {e}"))?;
    }
    engine
        .run_script("SET sluice.mode = 'continuous'")
        .await
        .map_err(|e| e.to_string())?;
    let tokens = engine.split(select).map_err(|e| e.to_string())?;
    let [one] = tokens.as_slice() else {
        return Err(format!("not one statement: {select}"));
    };
    let statement = engine.parse(one).map_err(|e| e.to_string())?;
    let output = engine.execute(&statement).await.map_err(|e| e.to_string())?;
    let waits = waits_for_the_end(&engine, select).await?;
    let executor = output.executor.as_ref().map(|c| c.executor);
    if executor != Some(Executor::Continuous) {
        return Err(format!("ran on {executor:?}, not continuous"));
    }
    let schema = output.stream.schema();
    let batches: Vec<RecordBatch> = if follow {
        read_until_quiet(output.stream).await?
    } else {
        output
            .stream
            .try_collect()
            .await
            .map_err(|e| format!("error while running: {e}"))?
    };
    let all = concat_batches(&schema, &batches).map_err(|e| e.to_string())?;
    Ok((fold(&all)?, waits))
}

/// A changelog (first column `op`) applied in order: the rows it ends at,
/// without the `op` column; a result that is not a changelog as it is.
fn fold(all: &RecordBatch) -> Result<RecordBatch, String> {
    if all.schema().fields().first().is_none_or(|f| f.name() != "op") {
        return Ok(all.clone());
    }
    let options = FormatOptions::default().with_null("NULL");
    let formatters: Vec<ArrayFormatter> = all
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let mut live: Vec<(String, u32)> = Vec::new();
    for row in 0..all.num_rows() {
        let op = formatters[0].value(row).to_string();
        let key: Vec<String> = formatters[1..].iter().map(|f| f.value(row).to_string()).collect();
        let key = key.join("\u{1f}");
        match op.as_str() {
            "+I" | "+U" => live.push((key, row as u32)),
            "-U" | "-D" => {
                let at = live
                    .iter()
                    .position(|(k, _)| *k == key)
                    .ok_or_else(|| format!("a bad changelog: {op} of a row not there: {key}"))?;
                live.swap_remove(at);
            }
            other => return Err(format!("unknown change {other}")),
        }
    }
    let indices = UInt32Array::from_iter_values(live.into_iter().map(|(_, row)| row));
    let kept = take_record_batch(all, &indices).map_err(|e| e.to_string())?;
    let columns: Vec<usize> = (1..kept.num_columns()).collect();
    kept.project(&columns).map_err(|e| e.to_string())
}

/// A `CREATE TABLE` RisingWave refuses (the files have one: its watermark)
/// must be refused for its watermark, over a file of one row of nulls.
async fn check_table_refused(sql: &str, dir: &Path) -> Result<Passed, String> {
    let mut table = edit_table(sql)?;
    table.name = format!("refused_{}", table.name);
    let nulls: Vec<String> = table
        .columns
        .iter()
        .filter_map(|c| c.split_whitespace().next())
        .map(|c| format!("\"{}\": null", c.to_lowercase()))
        .collect();
    std::fs::write(
        dir.join(format!("{}.ndjson", table.name)),
        format!("{{{}}}\n", nulls.join(", ")),
    )
    .map_err(|e| e.to_string())?;
    match create_tables(&Engine::new(), &[table], dir, false).await {
        Ok(()) => Err("RisingWave refuses it; Sluice created it".to_string()),
        Err(e) if e.to_lowercase().contains("watermark") => Ok(Refused(e)),
        Err(e) => Err(format!("refused, but not for its watermark: {e}")),
    }
}

/// Whether `sql` names `name` as a whole word.
fn mentions(sql: &str, name: &str) -> bool {
    sql.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == name)
}

/// Run a `query` record: each view it reads computed, then the query in batch.
async fn run_query(
    sql: &str,
    rowsort: bool,
    expected: &[String],
    tables: &[Table],
    views: &[View],
    dir: &Path,
) -> Result<Passed, String> {
    write_tables(tables, dir).await?;
    let mut waits = false;
    let engine = Engine::new();
    create_tables(&engine, tables, dir, false).await?;
    for (i, view) in views.iter().enumerate() {
        if !mentions(sql, &view.name) {
            continue;
        }
        let (rows, view_waits) = run_continuous(&view.select, tables, &views[..i], dir, view.on_window_close)
            .await
            .map_err(|e| format!("{}: {e}", view.name))?;
        waits |= view_waits;
        engine
            .context()
            .register_batch(view.name.as_str(), rows)
            .map_err(|e| e.to_string())?;
    }
    let results = engine.run_script(sql).await.map_err(|e| format!("query: {e}"))?;
    let mut actual = format_rows(results.last().map_or(&[][..], Vec::as_slice));
    let mut expected = expected.to_vec();
    if rowsort {
        actual.sort();
        expected.sort();
    }
    if actual == expected {
        return Ok(Checked {
            rows: actual.len(),
            waits,
        });
    }
    let missing: Vec<&String> = expected.iter().filter(|r| !actual.contains(r)).take(3).collect();
    let extra: Vec<&String> = actual.iter().filter(|r| !expected.contains(r)).take(3).collect();
    Err(format!(
        "{} rows, expected {}; missing e.g. {missing:?}; unexpected e.g. {extra:?}",
        actual.len(),
        expected.len()
    ))
}

/// What a case that passed did.
enum Passed {
    /// A query gave its expected rows: this many, and whether a view's plan
    /// waits for the end of the replay.
    Checked { rows: usize, waits: bool },
    /// A statement RisingWave refuses was refused, with this error.
    Refused(String),
}
use Passed::{Checked, Refused};

/// One case's outcome and the edits its tables had.
struct Outcome {
    name: String,
    result: Result<Passed, String>,
    applied: Vec<&'static str>,
}

/// The records of `path` with its `include`s in their place, each with the
/// stem of the file it is in (`q5` of `nexmark/q5.slt.part`).
fn expanded(path: &Path) -> Vec<(String, Record)> {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .trim_end_matches(".part")
        .trim_end_matches(".slt")
        .to_string();
    let mut out = Vec::new();
    for record in records(path) {
        match record {
            Record::Include(included) => {
                out.extend(expanded(&path.parent().unwrap_or(Path::new(".")).join(included)));
            }
            record => out.push((stem.clone(), record)),
        }
    }
    out
}

/// SQL functions a file declares, dropped because Sluice has them built in.
const BUILT_IN_FUNCTIONS: &[&str] = &["count_char"];

/// The edit of dropping a function's declaration.
const FUNCTION_DROPPED: &str =
    "the CREATE FUNCTION count_char statement (a SQL UDF) is dropped (count_char is built in)";

/// Run the records of one file, each `query` and `statement error` a case:
/// `file#n` for the n-th of the file, `file/part#n` for the n-th of a file
/// it includes.
async fn run_file(file: &str, scratch: &Path) -> Vec<Outcome> {
    let stem = file.trim_end_matches(".slt");
    let dir: PathBuf = scratch.join(stem.replace('/', "_"));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut tables: Vec<Table> = Vec::new();
    let mut views: Vec<View> = Vec::new();
    let mut outcomes = Vec::new();
    let base = stem.rsplit('/').next().unwrap_or(stem);
    let mut cases: Vec<(String, usize)> = Vec::new();
    let mut case_name = |origin: &str| {
        let n = match cases.iter_mut().find(|(o, _)| o == origin) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                cases.push((origin.to_string(), 1));
                1
            }
        };
        match origin == base {
            true => format!("{stem}#{n}"),
            false => format!("{stem}/{origin}#{n}"),
        }
    };
    let mut dropped_functions: Vec<&str> = Vec::new();
    let mut broken: Option<String> = None;
    for (origin, record) in expanded(&Path::new(STREAMING).join(file)) {
        match record {
            Record::Include(_) => {}
            Record::Statement(sql) => {
                let lower = sql.trim().to_lowercase();
                let function = BUILT_IN_FUNCTIONS
                    .iter()
                    .find(|f| lower.starts_with(&format!("create function {f}(")));
                if let Some(function) = function {
                    dropped_functions.push(function);
                } else if lower.starts_with("create table") {
                    match edit_table(&sql) {
                        Ok(table) => tables.push(table),
                        Err(e) => broken = Some(format!("{e}: {sql}")),
                    }
                } else if lower.starts_with("insert into") {
                    let name = name_after(&sql, 2);
                    match tables.iter_mut().find(|t| t.name == name) {
                        Some(table) => {
                            let (sql, edit) = edit_insert(&sql);
                            table.inserts.push(sql);
                            table.edits.extend(edit.filter(|e| !table.edits.contains(e)));
                        }
                        None => broken = Some(format!("an insert into an unknown table: {sql}")),
                    }
                } else if lower.starts_with("create materialized view") {
                    match view_of(&sql) {
                        Ok(view) => views.push(view),
                        Err(e) => broken = Some(format!("{e}: {sql}")),
                    }
                } else if lower.starts_with("drop materialized view") {
                    let name = name_after(&sql, 3);
                    views.retain(|v| v.name != name);
                } else if lower.starts_with("drop table") {
                    let name = name_after(&sql, 2);
                    tables.retain(|t| t.name != name);
                } else if !(lower.starts_with("set ") || lower.starts_with("flush")) {
                    broken = Some(format!("a statement the runner does not know: {sql}"));
                }
            }
            Record::StatementError(sql) => {
                let name = case_name(&origin);
                let result = match view_of(&sql) {
                    Ok(view) if sql.trim().to_lowercase().starts_with("create materialized view") => {
                        match write_tables(&tables, &dir).await {
                            Err(e) => Err(e),
                            Ok(()) => {
                                match run_continuous(&view.select, &tables, &views, &dir, false).await {
                                    Ok((rows, _)) => Err(format!(
                                        "RisingWave refuses it; Sluice ran it ({} rows)",
                                        rows.num_rows()
                                    )),
                                    Err(e) => Ok(Refused(e)),
                                }
                            }
                        }
                    }
                    _ if sql.trim().to_lowercase().starts_with("create table") => {
                        check_table_refused(&sql, &dir).await
                    }
                    _ => Err(format!("a statement error the runner does not check: {sql}")),
                };
                outcomes.push(Outcome {
                    name,
                    result,
                    applied: edits_of(&tables),
                });
            }
            Record::Query { sql, rowsort, rows } => {
                let name = case_name(&origin);
                let result = match &broken {
                    Some(e) => Err(e.clone()),
                    None => run_query(&sql, rowsort, &rows, &tables, &views, &dir).await,
                };
                let mut applied = edits_of(&tables);
                let reads_a_dropped_function = views
                    .iter()
                    .filter(|v| mentions(&sql, &v.name))
                    .any(|v| dropped_functions.iter().any(|f| mentions(&v.select, f)));
                if reads_a_dropped_function {
                    applied.push(FUNCTION_DROPPED);
                }
                outcomes.push(Outcome {
                    name,
                    result,
                    applied,
                });
            }
        }
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risingwave_streaming_cases_match_their_status() {
    let status = StatusFile::read(STATUS, "tests/risingwave_streaming_status.txt");
    let scratch = tempfile::tempdir().expect("scratch dir");
    let mut problems = Vec::new();
    let mut report = Vec::new();
    let mut names = Vec::new();
    let mut passed = 0;
    for file in FILES {
        for outcome in run_file(file, scratch.path()).await {
            passed += usize::from(outcome.result.is_ok());
            report.push(format!(
                "{:>28} {}",
                outcome.name,
                match &outcome.result {
                    Ok(Checked { rows, waits: false }) => format!("ok ({rows} rows)"),
                    Ok(Checked { rows, waits: true }) => {
                        format!("ok ({rows} rows; a step waits for the end of the replay)")
                    }
                    Ok(Refused(e)) => format!("ok, refused: {e}"),
                    Err(e) => e.clone(),
                }
            ));
            problems.extend(status.check(&outcome.name, &outcome.result, &outcome.applied));
            names.push(outcome.name);
        }
    }
    problems.extend(status.strays(&names));
    eprintln!(
        "RisingWave streaming cases: {passed}/{} pass\n{}",
        names.len(),
        report.join("\n")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_changelog_folds_to_its_live_rows() {
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;
    let batch = RecordBatch::try_from_iter([
        (
            "op",
            Arc::new(StringArray::from(vec!["+I", "+I", "-U", "+U", "-D"])) as _,
        ),
        ("v", Arc::new(Int64Array::from(vec![1, 2, 1, 3, 2])) as _),
    ])
    .expect("a batch");
    let folded = fold(&batch).expect("folds");
    assert_eq!(format_rows(&[folded]), vec!["3"]);
    let bad = batch.slice(2, 3);
    assert!(fold(&bad).is_err(), "a -U of a row never inserted");
}

//! The interactive shell: multi-line statements ended by `;`, history,
//! completion of keywords and table names, backslash commands, and Ctrl-C
//! that cancels the running query rather than the shell.

use std::borrow::Cow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Config, Context, Editor, Helper};

use super::{Outcome, OutputFormat, Runner};

const HELP: &str = "\
Statements end with ';' and may span lines (later lines prompt '   ...> '). Commands:
  \\d              list tables
  \\d NAME         describe a table (SQL types)
  \\i FILE         run a SQL file
  \\format NAME    table, csv, json or changelog
  \\maxrows N      rows a table shows at most
  \\timing         toggle elapsed time under results
  \\help, \\?       this help
  \\q              quit (or Ctrl-D)
A continuous query (over a stream) is shown as SET 'sluice.result.mode' says:
  table            one live table updated in place, with a status line (default)
  changelog        every change as it comes, with its op (+I, -U, +U, -D)
  tableau          plain rows as they come, a table per emission
Ctrl-C stops a running query (a continuous one leaves its table and a summary),
or clears the line being typed.";

/// The prompt of a statement's first line, and of the lines after it.
const PROMPT: &str = "sluice> ";
const CONTINUATION: &str = "   ...> ";

/// Run the shell until `\q` or Ctrl-D.
pub async fn run(runner: &mut Runner) -> ExitCode {
    // Ctrl-C cancels the running statement here (`run_cancellable`).
    crate::stream::leave_signals_to_the_shell();
    let names = Arc::new(Mutex::new(Names::default()));
    let helper = SqlHelper {
        names: Arc::clone(&names),
        files: FilenameCompleter::new(),
    };
    let config = Config::builder().auto_add_history(false).build();
    let mut editor: Editor<SqlHelper, rustyline::history::DefaultHistory> = match Editor::with_config(config)
    {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("Error: cannot start the shell: {e}");
            return ExitCode::FAILURE;
        }
    };
    editor.set_helper(Some(helper));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!(
        "Sluice {} — type \\help for help, \\q to quit.",
        env!("CARGO_PKG_VERSION")
    );
    refresh_names(runner, &names).await;

    while let Some(input) = read_statement(&mut editor) {
        let input = input.trim();
        if input.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(input);
        if let Some(path) = &history {
            let _ = editor.append_history(path);
        }
        if let Some(command) = input.strip_prefix('\\') {
            match run_command(runner, command).await {
                Command::Quit => break,
                Command::Done => {}
            }
        } else {
            run_cancellable(runner, "<repl>", input).await;
        }
        refresh_names(runner, &names).await;
    }
    ExitCode::SUCCESS
}

/// Read lines until they make a statement (ended by `;`) or a command (a
/// line starting with `\\`): the first line under [`PROMPT`], the others
/// under [`CONTINUATION`]. `None`: Ctrl-D on an empty statement, or the
/// terminal failed. Ctrl-C drops what was typed.
fn read_statement(editor: &mut Editor<SqlHelper, rustyline::history::DefaultHistory>) -> Option<String> {
    let mut text = String::new();
    loop {
        let prompt = if text.is_empty() { PROMPT } else { CONTINUATION };
        match editor.readline(prompt) {
            Ok(line) => {
                if text.is_empty() && line.trim().is_empty() {
                    continue;
                }
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&line);
                let trimmed = text.trim();
                if trimmed.starts_with('\\')
                    || crate::sql::is_complete(trimmed, &sqlparser::dialect::GenericDialect {})
                {
                    return Some(text);
                }
            }
            Err(ReadlineError::Interrupted) => text.clear(),
            // Ctrl-D runs what was typed (psql's way), or leaves.
            Err(ReadlineError::Eof) if text.trim().is_empty() => return None,
            Err(ReadlineError::Eof) => return Some(text),
            Err(e) => {
                eprintln!("Error: {e}");
                return None;
            }
        }
    }
}

enum Command {
    Quit,
    Done,
}

async fn run_command(runner: &mut Runner, command: &str) -> Command {
    let (name, arg) = match command.split_once(char::is_whitespace) {
        Some((name, arg)) => (name, arg.trim().trim_end_matches(';').trim()),
        None => (command.trim_end_matches(';'), ""),
    };
    match (name, arg) {
        ("q" | "quit", _) => return Command::Quit,
        ("?" | "help" | "h", _) => println!("{HELP}"),
        ("timing", _) => {
            let timing = !runner.options().timing;
            runner.options_mut().timing = timing;
            println!("Timing is {}.", if timing { "on" } else { "off" });
        }
        ("d", "") => runner.list_tables().await,
        ("d", table) => runner.describe(table).await,
        ("format", "") => println!(
            "Format is {}; \\format table, csv, json or changelog changes it.",
            format_name(runner.options().format)
        ),
        ("format", name) => match <OutputFormat as clap::ValueEnum>::from_str(name, true) {
            Ok(format) if format.is_text() => {
                runner.options_mut().format = format;
                println!("Format is {}.", format_name(format));
            }
            _ => eprintln!("Error: \\format takes table, csv, json or changelog, not '{name}'"),
        },
        ("maxrows", n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => {
                runner.options_mut().max_rows = n;
                println!("Tables show at most {n} rows.");
            }
            _ => eprintln!("Error: \\maxrows takes a number of rows above 0, such as \\maxrows 100"),
        },
        ("i", "") => eprintln!("Error: \\i needs a file: \\i queries/quickstart.sql"),
        ("i", path) => match std::fs::read_to_string(path) {
            Ok(sql) => run_cancellable(runner, path, &sql).await,
            Err(e) => eprintln!("Error: cannot read '{path}': {e}"),
        },
        _ => eprintln!("Error: unknown command '\\{name}'; \\help lists the commands"),
    }
    Command::Done
}

/// Run SQL until it finishes or Ctrl-C arrives. Ctrl-C drops a batch query;
/// a continuous query is told, and stops itself (its last table and a
/// summary stay on screen).
async fn run_cancellable(runner: &mut Runner, name: &str, sql: &str) {
    let interrupt = runner.interrupt();
    let run = runner.run_text(name, sql);
    tokio::pin!(run);
    loop {
        tokio::select! {
            biased;
            outcome = &mut run => {
                if outcome == Outcome::OutputClosed {
                    eprintln!("Error: output closed");
                }
                return;
            }
            _ = tokio::signal::ctrl_c() => {
                if interrupt.is_watched() {
                    interrupt.interrupt();
                } else {
                    // Over a batch query's progress line, if one is drawn.
                    eprintln!("\r\x1b[KQuery cancelled.");
                    return;
                }
            }
        }
    }
}

/// What completion offers besides keywords: the session's tables, their
/// columns and its functions, read again after each statement.
#[derive(Default)]
struct Names {
    tables: Vec<String>,
    columns: Vec<String>,
    functions: Vec<String>,
}

async fn refresh_names(runner: &Runner, names: &Mutex<Names>) {
    let engine = runner.engine();
    let Ok(rows) = engine.tables().await else {
        return;
    };
    let tables: Vec<String> = rows.into_iter().map(|[_, name, _, _]| name).collect();
    let mut columns = std::collections::BTreeSet::new();
    for table in &tables {
        if let Ok(provider) = engine.context().table_provider(table.as_str()).await {
            columns.extend(provider.schema().fields().iter().map(|f| f.name().clone()));
        }
    }
    let state = engine.context().state();
    let mut functions: Vec<String> = state
        .scalar_functions()
        .keys()
        .chain(state.aggregate_functions().keys())
        .chain(state.window_functions().keys())
        .cloned()
        .collect();
    functions.sort();
    functions.dedup();
    if let Ok(mut names) = names.lock() {
        *names = Names {
            tables,
            columns: columns.into_iter().collect(),
            functions,
        };
    }
}

/// `--format`'s name for a format.
fn format_name(format: OutputFormat) -> String {
    clap::ValueEnum::to_possible_value(&format).map_or_else(String::new, |v| v.get_name().to_string())
}

fn history_path() -> Option<PathBuf> {
    let dir = dirs::data_dir()?.join("sluice");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history.txt"))
}

/// Completion of keywords, tables, columns and functions, and of file
/// paths after `\\i`.
struct SqlHelper {
    names: Arc<Mutex<Names>>,
    files: FilenameCompleter,
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT JOIN",
    "INNER JOIN",
    "ON",
    "AS",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "UNION ALL",
    "WITH",
    "CREATE TABLE",
    "CREATE EXTERNAL TABLE",
    "CREATE VIEW",
    "DROP TABLE",
    "INSERT INTO",
    "VALUES",
    "COPY",
    "EXPLAIN",
    "DESCRIBE",
    "SHOW TABLES",
    "SET",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "INTERVAL",
    "TIMESTAMP",
    "WATERMARK FOR",
    "CAST",
];

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        if line.trim_start().starts_with("\\i ") {
            return self.files.complete(line, pos, ctx);
        }
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let upper = word.to_uppercase();
        let lower = word.to_lowercase();
        let pair = |text: String| Pair {
            display: text.clone(),
            replacement: text,
        };
        let mut candidates: Vec<Pair> = Vec::new();
        if let Ok(names) = self.names.lock() {
            let mut seen = std::collections::HashSet::new();
            for name in names.tables.iter().chain(&names.columns) {
                if name.to_lowercase().starts_with(&lower) && seen.insert(name.clone()) {
                    candidates.push(pair(name.clone()));
                }
            }
            candidates.extend(
                names
                    .functions
                    .iter()
                    .filter(|f| f.starts_with(&lower) && seen.insert((*f).clone()))
                    .map(|f| pair(format!("{f}("))),
            );
        }
        let lowercase_input = word.chars().all(|c| !c.is_uppercase());
        candidates.extend(KEYWORDS.iter().filter(|k| k.starts_with(&upper)).map(|k| {
            pair(if lowercase_input {
                k.to_lowercase()
            } else {
                (*k).to_string()
            })
        }));
        Ok((start, candidates))
    }
}

// Statements are gathered line by line in `read_statement`, each line
// under its own prompt, rather than by a validator.
impl Validator for SqlHelper {}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Helper for SqlHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::DefaultHistory;

    #[test]
    fn completes_tables_columns_functions_and_keywords_in_the_case_typed() {
        let helper = SqlHelper {
            names: Arc::new(Mutex::new(Names {
                tables: vec!["orders".into(), "customers".into()],
                columns: vec!["order_id".into(), "price".into()],
                functions: vec!["power".into(), "sum".into()],
            })),
            files: FilenameCompleter::new(),
        };
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let (start, found) = helper.complete("select * from ord", 17, &ctx).expect("completes");
        assert_eq!(start, 14);
        assert_eq!(
            found.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(),
            vec!["orders", "order_id", "order by"]
        );
        let (_, found) = helper.complete("SELECT p", 8, &ctx).expect("completes");
        assert_eq!(
            found.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(),
            vec!["price", "power("]
        );
        let (_, found) = helper.complete("SEL", 3, &ctx).expect("completes");
        assert_eq!(found[0].replacement, "SELECT");
    }

    #[test]
    fn completes_file_paths_after_include() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("quickstart.sql"), "SELECT 1;").expect("write");
        let helper = SqlHelper {
            names: Arc::new(Mutex::new(Names::default())),
            files: FilenameCompleter::new(),
        };
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let line = format!("\\i {}/quick", dir.path().display());
        let (_, found) = helper.complete(&line, line.len(), &ctx).expect("completes");
        assert!(
            found.iter().any(|p| p.replacement.ends_with("quickstart.sql")),
            "{:?}",
            found.iter().map(|p| &p.replacement).collect::<Vec<_>>()
        );
    }
}

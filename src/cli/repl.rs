//! The interactive shell: multi-line statements ended by `;`, history,
//! completion of keywords and table names, backslash commands, and Ctrl-C
//! that cancels the running query rather than the shell.

use std::borrow::Cow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, Helper};

use super::{Outcome, Runner};

const HELP: &str = "\
Statements end with ';' and may span lines. Commands:
  \\d            list tables
  \\d NAME       describe a table
  \\i FILE       run a SQL file
  \\timing       toggle elapsed time under results
  \\help, \\?     this help
  \\q            quit (or Ctrl-D)
Ctrl-C cancels a running query, or clears the line being typed.";

/// Run the shell until `\q` or Ctrl-D.
pub async fn run(runner: &mut Runner) -> ExitCode {
    // Ctrl-C cancels the running statement here (`run_cancellable`).
    crate::stream::leave_signals_to_the_shell();
    let tables = Arc::new(Mutex::new(Vec::new()));
    let helper = SqlHelper {
        tables: Arc::clone(&tables),
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
    refresh_tables(runner, &tables).await;

    loop {
        let line = match editor.readline("sluice> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue, // Ctrl-C clears the line
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("Error: {e}");
                break;
            }
        };
        let input = line.trim();
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
        refresh_tables(runner, &tables).await;
    }
    ExitCode::SUCCESS
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
        ("d", table) => {
            let sql = format!("DESCRIBE {table};");
            run_cancellable(runner, "\\d", &sql).await;
        }
        ("i", "") => eprintln!("Error: \\i needs a file: \\i queries/quickstart.sql"),
        ("i", path) => match std::fs::read_to_string(path) {
            Ok(sql) => run_cancellable(runner, path, &sql).await,
            Err(e) => eprintln!("Error: cannot read '{path}': {e}"),
        },
        _ => eprintln!("Error: unknown command '\\{name}'; \\help lists the commands"),
    }
    Command::Done
}

/// Run SQL until it finishes or Ctrl-C arrives; Ctrl-C drops the query.
async fn run_cancellable(runner: &mut Runner, name: &str, sql: &str) {
    tokio::select! {
        outcome = runner.run_text(name, sql) => {
            if outcome == Outcome::OutputClosed {
                eprintln!("Error: output closed");
            }
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("Query cancelled.");
        }
    }
}

async fn refresh_tables(runner: &Runner, tables: &Mutex<Vec<String>>) {
    let names = match runner.engine().tables().await {
        Ok(rows) => rows.into_iter().map(|[_, name, _, _]| name).collect(),
        Err(_) => return,
    };
    if let Ok(mut tables) = tables.lock() {
        *tables = names;
    }
}

fn history_path() -> Option<PathBuf> {
    let dir = dirs::data_dir()?.join("sluice");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history.txt"))
}

/// Completion, and multi-line input until a statement ends with `;`.
struct SqlHelper {
    tables: Arc<Mutex<Vec<String>>>,
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

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let upper = word.to_uppercase();
        let lower = word.to_lowercase();
        let tables = self.tables.lock().map(|t| t.clone()).unwrap_or_default();
        let mut candidates: Vec<Pair> = tables
            .iter()
            .filter(|t| t.to_lowercase().starts_with(&lower))
            .map(|t| Pair {
                display: t.clone(),
                replacement: t.clone(),
            })
            .collect();
        let lowercase_input = word.chars().all(|c| !c.is_uppercase());
        candidates.extend(KEYWORDS.iter().filter(|k| k.starts_with(&upper)).map(|k| {
            let text = if lowercase_input {
                k.to_lowercase()
            } else {
                (*k).to_string()
            };
            Pair {
                display: text.clone(),
                replacement: text,
            }
        }));
        Ok((start, candidates))
    }
}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || input.starts_with('\\') {
            return Ok(ValidationResult::Valid(None));
        }
        let complete = crate::sql::is_complete(input, &sqlparser::dialect::GenericDialect {});
        Ok(if complete {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

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
    fn completes_tables_and_keywords_in_the_case_typed() {
        let helper = SqlHelper {
            tables: Arc::new(Mutex::new(vec!["orders".into(), "customers".into()])),
        };
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let (start, found) = helper.complete("select * from ord", 17, &ctx).expect("completes");
        assert_eq!(start, 14);
        assert_eq!(
            found.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(),
            vec!["orders", "order by"]
        );
        let (_, found) = helper.complete("SEL", 3, &ctx).expect("completes");
        assert_eq!(found[0].replacement, "SELECT");
    }
}

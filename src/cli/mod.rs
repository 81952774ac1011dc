//! The `sluice` command line: script mode (files, `-e`, piped stdin) and the REPL.
//!
//! This is the only module that prints. Results go to stdout (or `--output`),
//! everything else to stderr; any failed statement makes the exit code 1.

mod live;
mod output;
mod progress;
mod repl;
mod report;
mod runner;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

pub use output::{OutputError, OutputFormat, ResultWriter};
pub use runner::{Interrupt, Runner, RunnerOptions};

use crate::Engine;

/// Sluice: one SQL over files (batch) and streams (continuous).
///
/// With no FILE and no -e, reads SQL from stdin when it is piped, or opens
/// the interactive shell on a terminal.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Args {
    /// SQL files to run, in order (after any -e).
    pub files: Vec<PathBuf>,
    /// SQL to run; may be given several times. It may start with '-' (a
    /// leading `-- comment`).
    #[arg(short = 'e', long = "execute", value_name = "SQL", allow_hyphen_values = true)]
    pub execute: Vec<String>,
    /// Output format [default: table on a terminal, csv otherwise].
    #[arg(short = 'f', long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Write results to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Go on after a failing statement (the exit code is still 1).
    #[arg(long)]
    pub continue_on_error: bool,
    /// Rows a table shows at most [default: 40 on a terminal, all otherwise].
    #[arg(long, value_name = "N")]
    pub max_rows: Option<usize>,
    /// Show how long each statement took.
    #[arg(long)]
    pub timing: bool,
    /// Which executor runs queries: auto (batch when every source is bounded,
    /// continuous otherwise), batch, or continuous (replays bounded tables as
    /// streams; at their end every window closes). Same as SET sluice.mode.
    #[arg(long, value_enum, default_value_t = crate::Mode::Auto)]
    pub mode: crate::Mode,
    /// Keep a continuous query's status line (rows/s, watermark, lag, state,
    /// late rows) on stderr [default: when stderr is a terminal]; the shell
    /// shows it under its live table instead.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub progress: Option<bool>,
    /// Append a continuous query's metrics to FILE: one JSON object a second
    /// and one at its end (fields in the README).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Keep checkpoints of continuous queries in DIR (a path or s3:// URL)
    /// and resume from the last one when run again. Same as SET
    /// 'checkpoint.dir'; the interval is SET 'checkpoint.interval' (10 s).
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<String>,
}

/// The stack of the thread that parses, plans and drives statements: SQL
/// trees are walked recursively (by sqlparser, DataFusion's planner and
/// optimizer), so 3,000 chained `UNION ALL`s or 8,000 `OR`s overflowed the
/// main thread's 8 MiB and aborted the process. Only touched pages are
/// memory, so a large reserve costs nothing for small queries.
const PLANNING_STACK: usize = 256 * 1024 * 1024;

/// The stack of the runtime's worker threads, which evaluate (deep)
/// expressions of running queries.
const WORKER_STACK: usize = 64 * 1024 * 1024;

/// Run the command line; the process's exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let planning = std::thread::Builder::new()
        .name("sluice-main".into())
        .stack_size(PLANNING_STACK)
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(WORKER_STACK)
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("Error: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run(args))
        });
    match planning.map(|thread| thread.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("Error: cannot start the main thread: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let interactive = args.files.is_empty() && args.execute.is_empty() && std::io::stdin().is_terminal();
    let stdout_is_tty = args.output.is_none() && std::io::stdout().is_terminal();
    let format = match args.format {
        Some(format) => format,
        None => match default_format(args.output.as_deref(), stdout_is_tty) {
            Ok(format) => format,
            Err(e) => {
                eprintln!("Error: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    if !format.is_text() && stdout_is_tty {
        eprintln!(
            "Error: --format parquet and arrow write a binary file: give --output FILE or redirect stdout"
        );
        return ExitCode::FAILURE;
    }
    let out: Box<dyn std::io::Write + Send> = match &args.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(std::io::BufWriter::new(file)),
            Err(e) => {
                eprintln!("Error: cannot write '{}': {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::stdout()),
    };
    let options = RunnerOptions {
        format,
        max_rows: args
            .max_rows
            .unwrap_or(if stdout_is_tty { 40 } else { usize::MAX }),
        timing: args.timing || interactive,
        continue_on_error: args.continue_on_error,
        unicode: stdout_is_tty && utf8_locale(),
        detailed_errors: std::io::stderr().is_terminal(),
        live: stdout_is_tty,
        progress: args.progress.unwrap_or_else(|| std::io::stderr().is_terminal()),
    };
    let config = datafusion::execution::context::SessionConfig::new()
        .with_information_schema(true)
        .with_option_extension(crate::SluiceOptions {
            mode: args.mode,
            ..Default::default()
        })
        .with_option_extension(crate::stream::checkpoint::CheckpointOptions {
            dir: args.checkpoint_dir.clone(),
            ..Default::default()
        });
    let mut runner = Runner::new(Engine::with_config(config), out, options);
    if let Some(path) = &args.metrics {
        match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => runner.set_metrics_file(file),
            Err(e) => {
                eprintln!("Error: cannot write the metrics file '{}': {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }

    if interactive {
        return repl::run(&mut runner).await;
    }
    let mut sources: Vec<(String, SqlSource)> = Vec::new();
    for (i, sql) in args.execute.iter().enumerate() {
        let name = match args.execute.len() {
            1 => "<command line>".to_string(),
            _ => format!("<command line #{}>", i + 1),
        };
        sources.push((name, SqlSource::Text(sql.clone())));
    }
    for path in &args.files {
        sources.push((path.display().to_string(), SqlSource::File(path.clone())));
    }
    if sources.is_empty() {
        sources.push(("<stdin>".to_string(), SqlSource::Stdin));
        runner.engine().set_stdin_is_script(true);
    }

    let mut ok = true;
    for (name, source) in sources {
        let outcome = match source.read() {
            Ok(sql) => runner.run_text(&name, &sql).await,
            Err(e) => {
                eprintln!("Error: cannot read '{name}': {e}");
                Outcome::Failed
            }
        };
        match outcome {
            Outcome::Ok => {}
            Outcome::Failed | Outcome::Interrupted => {
                ok = false;
                if !runner.options().continue_on_error {
                    break;
                }
            }
            // `| head` has what it wants: stop, without an error.
            Outcome::OutputClosed => break,
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Where a script comes from; files and stdin are read when their turn comes.
enum SqlSource {
    Text(String),
    File(PathBuf),
    Stdin,
}

impl SqlSource {
    fn read(self) -> std::io::Result<String> {
        match self {
            SqlSource::Text(sql) => Ok(sql),
            SqlSource::File(path) => std::fs::read_to_string(path),
            SqlSource::Stdin => {
                let mut sql = String::new();
                std::io::stdin().read_to_string(&mut sql)?;
                Ok(sql)
            }
        }
    }
}

/// The format when none is given: by the output file's extension, else a
/// table for a terminal and CSV for a pipe. An extension it does not know
/// is an error (writing CSV under another name would mislead).
fn default_format(output: Option<&std::path::Path>, stdout_is_tty: bool) -> Result<OutputFormat, String> {
    let Some(path) = output else {
        return Ok(if stdout_is_tty {
            OutputFormat::Table
        } else {
            OutputFormat::Csv
        });
    };
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    OutputFormat::from_extension(extension).ok_or_else(|| {
        format!(
            "cannot tell the format of '{}' from its extension; name it .csv, .json (.ndjson), .parquet, .arrow or .txt (a table), or give --format",
            path.display()
        )
    })
}

/// How a run of one source of SQL ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every statement succeeded.
    Ok,
    /// Some statement failed (already reported).
    Failed,
    /// The output was closed (`| head`): stop quietly, successfully.
    OutputClosed,
    /// Ctrl-C in the shell stopped a continuous query (its summary is out).
    Interrupted,
}

/// Whether the terminal takes UTF-8 (box-drawing characters), by the
/// locale's variables as C programs read them; `LANG=C` gets ASCII tables.
fn utf8_locale() -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .is_some_and(|value| {
            let value = value.to_ascii_lowercase();
            value.contains("utf-8") || value.contains("utf8")
        })
}

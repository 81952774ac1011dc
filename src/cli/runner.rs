//! Runs SQL text statement by statement and writes each result.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch, StringArray};

use futures::StreamExt;

use super::Outcome;
use super::output::{OutputError, OutputFormat, ResultWriter, row_count};
use super::report::{Source, report};
use crate::Engine;
use crate::error::SluiceError;

/// A continuous query's late rows, on stderr at its end: rows are never
/// dropped without a word.
fn report_late_rows(metrics: &crate::stream::StreamMetrics) {
    let late = metrics.late_rows.load(std::sync::atomic::Ordering::Relaxed);
    if late == 0 {
        return;
    }
    let rows = if late == 1 { "row was" } else { "rows were" };
    match metrics.late_output.get() {
        Some(path) => eprintln!(
            "{late} late {rows} behind the watermark for a closed window: written to {}",
            path.display()
        ),
        None => eprintln!(
            "{late} late {rows} behind the watermark for a closed window and left out; 'late.policy' = 'side-output' with 'late.path' on the table keeps them"
        ),
    }
}

/// The bad lines a continuous query's sources skipped
/// (`'*.ignore-parse-errors'`), on stderr at its end: how many, the first,
/// and where they were written.
fn report_bad_rows(metrics: &crate::stream::StreamMetrics) {
    let Ok(sources) = metrics.bad_rows.lock() else {
        return;
    };
    for (table, stats) in sources.iter() {
        let count = stats.count.load(std::sync::atomic::Ordering::Relaxed);
        if count == 0 {
            continue;
        }
        let rows = if count == 1 {
            "bad row was"
        } else {
            "bad rows were"
        };
        let first = stats
            .first
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        let aside = match &stats.path {
            Some(path) => format!("written to {}", path.display()),
            None => "left out ('format.bad-rows.path' on the table keeps them)".to_string(),
        };
        eprintln!("{count} {rows} skipped in table '{table}' and {aside}; the first: {first}");
    }
}

/// How results and errors are shown.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Output format for rows.
    pub format: OutputFormat,
    /// Rows a table shows at most.
    pub max_rows: usize,
    /// Show elapsed time under tables.
    pub timing: bool,
    /// Go on after a failed statement.
    pub continue_on_error: bool,
    /// Draw tables with box characters (a terminal) or ASCII.
    pub unicode: bool,
    /// Quote the failing line with a caret under errors (a terminal).
    pub detailed_errors: bool,
}

/// An engine plus where its results go.
pub struct Runner {
    engine: Engine,
    out: Box<dyn Write + Send>,
    options: RunnerOptions,
}

enum Failure {
    Sql(SluiceError),
    Output(OutputError),
}

impl Runner {
    /// A runner writing results to `out`.
    pub fn new(engine: Engine, out: Box<dyn Write + Send>, options: RunnerOptions) -> Self {
        Self { engine, out, options }
    }

    /// The engine (for the REPL's table listing and completion).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The display options.
    pub fn options(&self) -> &RunnerOptions {
        &self.options
    }

    /// The display options, to change (`\timing`).
    pub fn options_mut(&mut self) -> &mut RunnerOptions {
        &mut self.options
    }

    /// Run every statement of `sql` in order; `name` says where it came from.
    pub async fn run_text(&mut self, name: &str, sql: &str) -> Outcome {
        let source = Source { name, text: sql };
        let statements = match self.engine.split(sql) {
            Ok(statements) => statements,
            Err(e) => {
                self.report(&source, &e);
                return Outcome::Failed;
            }
        };
        let mut outcome = Outcome::Ok;
        for tokens in &statements {
            match self.run_statement(tokens).await {
                Ok(()) => {}
                Err(Failure::Output(OutputError::Closed)) => return Outcome::OutputClosed,
                Err(Failure::Output(e)) => {
                    eprintln!("Error: {e}");
                    return Outcome::Failed;
                }
                Err(Failure::Sql(e)) => {
                    self.report(&source, &e);
                    outcome = Outcome::Failed;
                    if !self.options.continue_on_error {
                        return outcome;
                    }
                }
            }
        }
        outcome
    }

    async fn run_statement(&mut self, tokens: &crate::sql::StatementTokens) -> Result<(), Failure> {
        let started = Instant::now();
        let statement = self.engine.parse(tokens).map_err(Failure::Sql)?;
        let mut output = self.engine.execute(&statement).await.map_err(Failure::Sql)?;
        if let Some(metrics) = &output.metrics
            && let Ok(warnings) = metrics.warnings.lock()
        {
            for warning in warnings.iter() {
                eprintln!("Warning: {warning}");
            }
        }
        let result = self.write_output(&mut output, &statement, started).await;
        // A continuous query (a SELECT or an INSERT) says what it left out.
        if let Some(metrics) = &output.metrics {
            report_late_rows(metrics);
            report_bad_rows(metrics);
        }
        result
    }

    async fn write_output(
        &mut self,
        output: &mut crate::StatementOutput,
        statement: &crate::sql::ParsedStatement,
        started: Instant,
    ) -> Result<(), Failure> {
        if !output.returns_rows {
            // COPY and INSERT do their work while their stream is driven.
            return futures::TryStreamExt::try_for_each(&mut output.stream, |_| futures::future::ok(()))
                .await
                .map_err(|e| Failure::Sql(SluiceError::from(e).or_at(statement.span)));
        }
        let schema = output.stream.schema();
        if output.metrics.is_some() && self.options.format == OutputFormat::Table {
            return self.write_emissions(output, schema, statement).await;
        }
        let mut writer = ResultWriter::new(
            self.options.format,
            &mut *self.out,
            schema,
            self.options.max_rows,
            self.options.unicode,
        );
        while let Some(batch) = output.stream.next().await {
            let batch = batch.map_err(|e| Failure::Sql(SluiceError::from(e).or_at(statement.span)))?;
            writer.write_batch(&batch).map_err(Failure::Output)?;
        }
        let footer = match (self.options.format, self.options.timing) {
            (OutputFormat::Table, true) => Some(format!(
                "{} in {:.3} s",
                row_count(writer.rows()),
                started.elapsed().as_secs_f64()
            )),
            (OutputFormat::Table, false) => Some(row_count(writer.rows())),
            _ => None,
        };
        writer.finish(footer.as_deref()).map_err(Failure::Output)?;
        Ok(())
    }

    /// A continuous query as tables: one drawn for each emission (each set
    /// of closed windows), since a table needs its rows before it is drawn.
    /// (CSV and JSON lines go out, flushed, as any query's do.)
    async fn write_emissions(
        &mut self,
        output: &mut crate::StatementOutput,
        schema: arrow::datatypes::SchemaRef,
        statement: &crate::sql::ParsedStatement,
    ) -> Result<(), Failure> {
        let failed = |e| Failure::Sql(SluiceError::from(e).or_at(statement.span));
        let mut rows = 0;
        while let Some(batch) = output.stream.next().await {
            let batch = batch.map_err(failed)?;
            rows += batch.num_rows();
            let mut writer = ResultWriter::new(
                OutputFormat::Table,
                &mut *self.out,
                Arc::clone(&schema),
                self.options.max_rows,
                self.options.unicode,
            );
            writer.write_batch(&batch).map_err(Failure::Output)?;
            writer.finish(None).map_err(Failure::Output)?;
        }
        writeln!(self.out, "{} (continuous query ended)", row_count(rows))
            .map_err(|e| Failure::Output(e.into()))?;
        Ok(())
    }

    /// `\d`: the session's tables and what backs each.
    pub async fn list_tables(&mut self) {
        let rows = match self.engine.tables().await {
            Ok(rows) => rows,
            Err(e) => {
                self.report(
                    &Source {
                        name: "\\d",
                        text: "",
                    },
                    &e,
                );
                return;
            }
        };
        let column = |i: usize| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[i].as_str())))
        };
        let batch = RecordBatch::try_from_iter(
            ["schema", "name", "kind", "source"]
                .into_iter()
                .enumerate()
                .map(|(i, name)| (name, column(i))),
        );
        let result = match batch {
            Ok(batch) => {
                let mut writer = ResultWriter::new(
                    self.options.format,
                    &mut *self.out,
                    batch.schema(),
                    usize::MAX,
                    self.options.unicode,
                );
                writer
                    .write_batch(&batch)
                    .and_then(|()| writer.finish(Some(&row_count(rows.len()))))
            }
            Err(e) => Err(OutputError::Failed(e.to_string())),
        };
        if let Err(e) = result {
            eprintln!("Error: {e}");
        }
    }

    fn report(&self, source: &Source<'_>, error: &SluiceError) {
        let mut err = std::io::stderr().lock();
        report(&mut err, source, error, self.options.detailed_errors);
    }
}

//! Runs SQL text statement by statement and writes each result.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, StringArray};

use futures::StreamExt;

use super::Outcome;
use super::live::{LiveScreen, LiveTable, terminal_size};
use super::output::{OutputError, OutputFormat, ResultWriter, row_count};
use super::progress::{Progress, ProgressTracker, ScanProgress};
use super::report::{Source, report};
use crate::error::SluiceError;
use crate::stream::StreamMetrics;
use crate::{Engine, ResultMode};

/// How often a continuous query is looked at (status line, lag alert).
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// A batch query shows progress once it has run this long.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// How often `--metrics` gets an object.
const METRICS_EVERY: Duration = Duration::from_secs(1);

/// How often the lag alert is repeated while the lag stays high.
const ALERT_EVERY: Duration = Duration::from_secs(10);

/// A continuous query's late rows, on stderr at its end: rows are never
/// dropped without a word.
fn report_late_rows(metrics: &crate::stream::StreamMetrics) {
    let unmatched = metrics
        .unmatched_retractions
        .load(std::sync::atomic::Ordering::Relaxed);
    if unmatched > 0 {
        eprintln!(
            "{unmatched} retraction(s) (-U/-D) named a row that was never inserted and were left out: the input changelog is not consistent"
        );
    }
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

/// The rows windows left out because their event time was NULL, on stderr
/// at the query's end (Flink drops them too, and counts them in a metric).
fn report_null_event_times(windows: &[(String, crate::plan::NullEventTimes)]) {
    for (column, nulls) in windows {
        let count = nulls.rows();
        if count == 0 {
            continue;
        }
        let rows = if count == 1 { "row had" } else { "rows had" };
        eprintln!(
            "{count} {rows} a NULL event time ({column}) and fell in no window: left out, as in Flink; COALESCE({column}, ...) in a view keeps them"
        );
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
    /// Results go to a terminal: a continuous query's table is drawn live,
    /// in place (`sluice.result.mode`).
    pub live: bool,
    /// Keep a continuous query's status line on stderr (`--progress`).
    pub progress: bool,
}

/// An engine plus where its results go.
pub struct Runner {
    engine: Engine,
    out: Box<dyn Write + Send>,
    options: RunnerOptions,
    /// `--metrics FILE`: continuous queries append their metrics there.
    metrics_file: Option<std::fs::File>,
    /// Ctrl-C, as the shell passes it to a running continuous query.
    interrupt: Arc<Interrupt>,
}

/// Ctrl-C as the shell passes it on: a continuous query stops itself, so
/// that its last table and a summary stay on screen, rather than being
/// dropped. One listener (the shell's) and a stored permit, so a Ctrl-C is
/// never lost between two listeners.
#[derive(Debug, Default)]
pub struct Interrupt {
    /// A continuous query is running and watching.
    watching: std::sync::atomic::AtomicBool,
    /// Ctrl-C came (cleared when a query starts watching).
    interrupted: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Interrupt {
    /// Whether a continuous query is watching for Ctrl-C now.
    pub fn is_watched(&self) -> bool {
        self.watching.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Pass Ctrl-C on to the watching query.
    pub fn interrupt(&self) {
        self.interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Watch until the returned guard is dropped.
    fn watch(self: &Arc<Self>) -> Watching {
        self.interrupted.store(false, std::sync::atomic::Ordering::SeqCst);
        self.watching.store(true, std::sync::atomic::Ordering::SeqCst);
        Watching(Arc::clone(self))
    }

    /// Ctrl-C came.
    async fn interrupted(&self) {
        loop {
            self.notify.notified().await;
            // A permit left by a Ctrl-C for an earlier query does not count.
            if self.interrupted.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return;
            }
        }
    }
}

/// A query watching for Ctrl-C; it stops when dropped.
struct Watching(Arc<Interrupt>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.watching.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

enum Failure {
    Sql(SluiceError),
    Output(OutputError),
    /// Ctrl-C stopped a continuous query (its summary is out).
    Interrupted,
}

impl Runner {
    /// A runner writing results to `out`.
    pub fn new(engine: Engine, out: Box<dyn Write + Send>, options: RunnerOptions) -> Self {
        Self {
            engine,
            out,
            options,
            metrics_file: None,
            interrupt: Arc::default(),
        }
    }

    /// Where the shell passes Ctrl-C on to a running continuous query.
    pub fn interrupt(&self) -> Arc<Interrupt> {
        Arc::clone(&self.interrupt)
    }

    /// Append every continuous query's metrics to `file`, one JSON object a
    /// second and one at its end (`--metrics`).
    pub fn set_metrics_file(&mut self, file: std::fs::File) {
        self.metrics_file = Some(file);
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
                Err(Failure::Interrupted) => return Outcome::Interrupted,
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
        if let Some(metrics) = &output.metrics
            && let Ok(notices) = metrics.notices.lock()
        {
            for notice in notices.iter() {
                eprintln!("{notice}");
            }
        }
        let result = self.write_output(&mut output, &statement, started).await;
        // A continuous query (a SELECT or an INSERT) says what it left out.
        if let Some(metrics) = &output.metrics {
            report_late_rows(metrics);
            report_bad_rows(metrics);
            if let Ok(last) = metrics.last_checkpoint.lock()
                && let Some(last) = last.as_ref()
            {
                eprintln!("Last checkpoint: {last}");
            }
        }
        // Either executor's windows leave out rows with a NULL time.
        report_null_event_times(&output.null_event_times);
        result
    }

    async fn write_output(
        &mut self,
        output: &mut crate::StatementOutput,
        statement: &crate::sql::ParsedStatement,
        started: Instant,
    ) -> Result<(), Failure> {
        if let Some(metrics) = output.metrics.clone() {
            return self.write_continuous(output, &metrics, statement).await;
        }
        if !output.returns_rows {
            // COPY and INSERT do their work while their stream is driven,
            // and give the count of rows written.
            let mut written = RowsWritten::default();
            let mut bar = self.progress_bar(output);
            while let Some(batch) = next_batch(&mut output.stream, &mut bar).await {
                let batch = batch.map_err(|e| Failure::Sql(SluiceError::from(e).or_at(statement.span)))?;
                written.add(&batch);
            }
            written.report();
            return Ok(());
        }
        let mut bar = self.progress_bar(output);
        let schema = output.stream.schema();
        let mut writer = ResultWriter::new(
            self.options.format,
            &mut *self.out,
            schema,
            self.options.max_rows,
            self.options.unicode,
        );
        while let Some(batch) = next_batch(&mut output.stream, &mut bar).await {
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

    /// A progress bar on stderr for a batch query, if `--progress` (a
    /// terminal's stderr) says so.
    fn progress_bar(&self, output: &mut crate::StatementOutput) -> Option<ProgressBar> {
        let plan = output.physical.as_ref().filter(|_| self.options.progress)?;
        // The plan's work is done where its stream is polled: poll it on a
        // task of its own, so that this one is free to draw the bar (the
        // task stops when the stream is dropped).
        let schema = output.stream.schema();
        let mut stream = std::mem::replace(
            &mut output.stream,
            Box::pin(datafusion::physical_plan::stream::EmptyRecordBatchStream::new(
                Arc::clone(&schema),
            )),
        );
        let mut builder = datafusion::physical_plan::stream::RecordBatchReceiverStream::builder(schema, 2);
        let sender = builder.tx();
        builder.spawn(async move {
            while let Some(batch) = stream.next().await {
                if sender.send(batch).await.is_err() {
                    break;
                }
            }
            Ok(())
        });
        output.stream = builder.build();
        Some(ProgressBar {
            scan: ScanProgress::new(Arc::clone(plan)),
            shown: false,
            ticks: clock_ticks(LOOK_EVERY),
        })
    }

    /// A continuous query: its rows as they come (a live table on a
    /// terminal, else lines or one table per emission), watched a few times
    /// a second for the status line, `--metrics` and the lag alert.
    async fn write_continuous(
        &mut self,
        output: &mut crate::StatementOutput,
        metrics: &StreamMetrics,
        statement: &crate::sql::ParsedStatement,
    ) -> Result<(), Failure> {
        let settings = self.engine.options();
        let options = self.options.clone();
        let schema = output.stream.schema();
        let live = output.returns_rows
            && options.live
            && options.format == OutputFormat::Table
            && settings.result_mode != ResultMode::Tableau;
        let mut watch = Watch {
            stream: &mut output.stream,
            metrics,
            interrupt: Arc::clone(&self.interrupt),
            statement,
            tracker: ProgressTracker::new(),
            progress: options.progress && !live,
            metrics_file: self.metrics_file.as_mut(),
            last_json: None,
            alert_ms: settings.alert_lag_ms,
            // On a live table the alert is in its status line.
            alert_to_stderr: !live,
            last_alert: None,
        };
        let out: &mut dyn Write = &mut *self.out;
        if live {
            let fold = settings.result_mode == ResultMode::Table;
            let (_, height) = terminal_size();
            let mut table = LiveTable::new(&schema, fold, height.max(options.max_rows.min(10_000)))
                .with_key(metrics.result_key.get());
            let mut screen = LiveScreen::new();
            let mut dirty = true;
            let ended = watch
                .drive(|step| {
                    let now = Instant::now();
                    match step {
                        Step::Rows(batch) => {
                            table.apply(&batch, now).map_err(Failure::Output)?;
                            dirty = true;
                            Ok(())
                        }
                        Step::Look(look, alert) => {
                            let (width, height) = terminal_size();
                            let mut status = look.status_line();
                            if let Some(alert) = alert {
                                status = format!("{alert} · {status}");
                            }
                            if dirty || table.has_marked_rows(now) {
                                let lines = table.render(width, height, now, options.unicode);
                                screen
                                    .draw(out, &lines, &status, width)
                                    .map_err(Failure::Output)?;
                                dirty = false;
                                Ok(())
                            } else {
                                screen.status(out, &status, width).map_err(Failure::Output)
                            }
                        }
                    }
                })
                .await;
            let ended = match ended {
                Ok(ended) => ended,
                Err(e) => {
                    // The error goes under the last drawing.
                    screen.finish(out, "").map_err(Failure::Output)?;
                    return Err(e);
                }
            };
            let how = match ended.how {
                Ended::Finished => "Query ended",
                Ended::Interrupted => "Query cancelled",
            };
            screen
                .finish(out, &ended.last.summary(how))
                .map_err(Failure::Output)?;
            return match ended.how {
                Ended::Finished => Ok(()),
                Ended::Interrupted => Err(Failure::Interrupted),
            };
        }
        if !output.returns_rows {
            // A continuous INSERT: the writer's count comes at the end.
            let mut written = RowsWritten::default();
            let ended = watch
                .drive(|step| {
                    if let Step::Rows(batch) = step {
                        written.add(&batch);
                    }
                    Ok(())
                })
                .await?;
            written.report();
            return ended.into_result();
        }
        if options.format == OutputFormat::Table {
            // A table per emission (each set of closed windows): a table
            // needs its rows before it is drawn.
            let mut rows = 0;
            let ended = watch
                .drive(|step| match step {
                    Step::Rows(batch) => {
                        rows += batch.num_rows();
                        emission_table(out, &batch, &options)
                    }
                    Step::Look(..) => Ok(()),
                })
                .await?;
            writeln!(out, "{} (continuous query ended)", row_count(rows))
                .map_err(|e| Failure::Output(e.into()))?;
            return ended.into_result();
        }
        let mut writer = ResultWriter::new(
            options.format,
            out,
            Arc::clone(&schema),
            options.max_rows,
            options.unicode,
        );
        let ended = watch
            .drive(|step| match step {
                Step::Rows(batch) => writer.write_batch(&batch).map_err(Failure::Output),
                Step::Look(..) => Ok(()),
            })
            .await?;
        writer.finish(None).map_err(Failure::Output)?;
        ended.into_result()
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

    /// `\d NAME`: DESCRIBE's rows with SQL type names (`BIGINT`,
    /// `VARCHAR`, `TIMESTAMP(3)`) rather than Arrow's.
    pub async fn describe(&mut self, table: &str) {
        let sql = format!("DESCRIBE {table}");
        let source = Source {
            name: "\\d",
            text: &sql,
        };
        let described = match self.engine.run_script(&sql).await {
            Ok(mut results) => results.pop().unwrap_or_default(),
            Err(e) => return self.report(&source, &e),
        };
        let schema = match self.engine.context().table_provider(table).await {
            Ok(provider) => provider.schema(),
            Err(e) => return self.report(&source, &SluiceError::from(e)),
        };
        let result = described
            .iter()
            .map(|batch| with_sql_types(batch, &schema))
            .collect::<Result<Vec<_>, _>>()
            .map_err(OutputError::from)
            .and_then(|batches| {
                let Some(first) = batches.first() else {
                    return Ok(());
                };
                let mut writer = ResultWriter::new(
                    self.options.format,
                    &mut *self.out,
                    first.schema(),
                    usize::MAX,
                    self.options.unicode,
                );
                let rows = batches.iter().map(RecordBatch::num_rows).sum();
                for batch in &batches {
                    writer.write_batch(batch)?;
                }
                writer.finish(Some(&row_count(rows)))
            });
        if let Err(e) = result {
            eprintln!("Error: {e}");
        }
    }

    fn report(&self, source: &Source<'_>, error: &SluiceError) {
        let mut err = std::io::stderr().lock();
        report(&mut err, source, error, self.options.detailed_errors);
    }
}

/// One table for one emission of a continuous query.
fn emission_table(out: &mut dyn Write, batch: &RecordBatch, options: &RunnerOptions) -> Result<(), Failure> {
    let mut writer = ResultWriter::new(
        OutputFormat::Table,
        out,
        batch.schema(),
        options.max_rows,
        options.unicode,
    );
    writer.write_batch(batch).map_err(Failure::Output)?;
    writer.finish(None).map_err(Failure::Output)
}

/// The rows an `INSERT` or `COPY` wrote: the sum of its `count` column.
#[derive(Default)]
struct RowsWritten(Option<u64>);

impl RowsWritten {
    fn add(&mut self, batch: &RecordBatch) {
        let counts = batch
            .column_by_name("count")
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::UInt64Array>());
        if let Some(counts) = counts {
            let sum: u64 = counts.iter().flatten().sum();
            self.0 = Some(self.0.unwrap_or(0) + sum);
        }
    }

    /// On stderr, as a status rather than a result: a script's CSV on
    /// stdout stays clean.
    fn report(&self) {
        if let Some(rows) = self.0 {
            eprintln!("{} written", row_count(rows as usize));
        }
    }
}

/// What [`Watch::drive`] hands its caller.
enum Step<'a> {
    /// Rows of the result.
    Rows(RecordBatch),
    /// A look at the query, and the lag alert if the lag is high.
    Look(&'a Progress, Option<String>),
}

/// How a continuous query's stream ended.
enum Ended {
    /// Its input ended (or its LIMIT was reached).
    Finished,
    /// Ctrl-C in the shell.
    Interrupted,
}

/// The end, with the last look at the query.
struct Drove {
    how: Ended,
    last: Progress,
}

impl Drove {
    fn into_result(self) -> Result<(), Failure> {
        match self.how {
            Ended::Finished => Ok(()),
            Ended::Interrupted => {
                eprintln!("{}", self.last.summary("Query cancelled"));
                Err(Failure::Interrupted)
            }
        }
    }
}

/// Watches a running continuous query: `--progress` on stderr, `--metrics`,
/// the lag alert.
struct Watch<'a> {
    stream: &'a mut datafusion::execution::SendableRecordBatchStream,
    metrics: &'a StreamMetrics,
    /// Where the shell passes Ctrl-C on.
    interrupt: Arc<Interrupt>,
    statement: &'a crate::sql::ParsedStatement,
    tracker: ProgressTracker,
    /// Keep the status line on stderr.
    progress: bool,
    metrics_file: Option<&'a mut std::fs::File>,
    last_json: Option<Instant>,
    /// `sluice.alert.lag`, in milliseconds.
    alert_ms: Option<u64>,
    /// Print the alert on stderr (else the caller shows it).
    alert_to_stderr: bool,
    last_alert: Option<Instant>,
}

impl Watch<'_> {
    /// Read the stream to its end (or a Ctrl-C passed to the interrupt),
    /// handing each batch and each look to `step`.
    async fn drive(
        &mut self,
        mut step: impl FnMut(Step<'_>) -> Result<(), Failure>,
    ) -> Result<Drove, Failure> {
        let mut ticks = clock_ticks(LOOK_EVERY);
        let interrupt = Arc::clone(&self.interrupt);
        let _watching = interrupt.watch();
        let statement = self.statement;
        let how = loop {
            tokio::select! {
                biased;
                () = interrupt.interrupted() => break Ended::Interrupted,
                // Ticks before rows: a query whose rows are always ready
                // must still be looked at.
                Some(()) = ticks.recv() => {
                    let look = self.tracker.look(self.metrics);
                    let alert = self.look(&look);
                    step(Step::Look(&look, alert))?;
                }
                batch = self.stream.next() => match batch {
                    Some(batch) => {
                        let batch = batch.map_err(|e| Failure::Sql(SluiceError::from(e).or_at(statement.span)));
                        match batch {
                            Ok(batch) => step(Step::Rows(batch))?,
                            Err(e) => {
                                self.clear_progress();
                                return Err(e);
                            }
                        }
                    }
                    None => break Ended::Finished,
                },
            }
        };
        let last = self.tracker.look(self.metrics);
        self.write_json(&last);
        self.clear_progress();
        if self.progress && matches!(how, Ended::Finished) {
            eprintln!("{}", last.summary("Query ended"));
        }
        // One last drawing with the final counts.
        step(Step::Look(&last, None))?;
        Ok(Drove { how, last })
    }

    /// Metrics, the alert and the stderr status line for one look; the
    /// alert's text if the lag is high.
    fn look(&mut self, look: &Progress) -> Option<String> {
        if self.last_json.is_none_or(|t| t.elapsed() >= METRICS_EVERY) {
            self.write_json(look);
            self.last_json = Some(Instant::now());
        }
        let alert = self.alert_ms.and_then(|limit| look.lag_alert(limit));
        if self.alert_to_stderr
            && let Some(alert) = &alert
            && self.last_alert.is_none_or(|t| t.elapsed() >= ALERT_EVERY)
        {
            self.clear_progress();
            eprintln!("{alert}");
            self.last_alert = Some(Instant::now());
        }
        if alert.is_none() {
            self.last_alert = None;
        }
        if self.progress {
            let (width, _) = terminal_size();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{}", super::live::cut(&look.status_line(), width));
            let _ = err.flush();
        }
        alert
    }

    fn write_json(&mut self, look: &Progress) {
        if let Some(file) = self.metrics_file.as_mut() {
            let line = format!("{}\n", look.json());
            if let Err(e) = file.write_all(line.as_bytes()) {
                eprintln!("Error: cannot write the metrics file: {e}");
                self.metrics_file = None;
            }
        }
    }

    fn clear_progress(&self) {
        if self.progress {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// DESCRIBE's rows with the `data_type` column in SQL names, each column's
/// type taken from the table's `schema`.
fn with_sql_types(
    batch: &RecordBatch,
    schema: &arrow::datatypes::Schema,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let (Some(names), Some(position)) = (
        batch.column_by_name("column_name"),
        batch.schema().index_of("data_type").ok(),
    ) else {
        return Ok(batch.clone());
    };
    let names = arrow::compute::cast(names, &arrow::datatypes::DataType::Utf8)?;
    let names = names
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| arrow::error::ArrowError::CastError("DESCRIBE's column names are not text".into()))?;
    let types: StringArray = names
        .iter()
        .map(|name| {
            name.and_then(|n| schema.field_with_name(n).ok())
                .map(|f| super::output::sql_type(f.data_type()))
        })
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[position] = Arc::new(types);
    let fields: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| match i == position {
            true => Arc::new(arrow::datatypes::Field::new(
                f.name(),
                arrow::datatypes::DataType::Utf8,
                true,
            )),
            false => Arc::clone(f),
        })
        .collect();
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
}

/// A batch query's progress line on stderr.
struct ProgressBar {
    scan: ScanProgress,
    /// The line is on screen (to clear before rows or the end).
    shown: bool,
    /// When to draw the line again (see [`clock_ticks`]).
    ticks: tokio::sync::mpsc::Receiver<()>,
}

/// A tick now and then one every `every` (as tokio's interval gives them),
/// from a thread of its own. Not tokio's timer: it is driven by the
/// runtime's workers, which a running query keeps busy, so its ticks came
/// seconds late and then all at once (a batch query's bar first drawn after
/// 13 s, then redrawn 50 times with the same numbers). The thread ends when
/// the receiver is dropped; a tick not yet taken is not doubled.
fn clock_ticks(every: Duration) -> tokio::sync::mpsc::Receiver<()> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let _ = sender.try_send(());
    let ticking = std::thread::Builder::new()
        .name("sluice-progress".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                match sender.try_send(()) {
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => break,
                    _ => continue,
                }
            }
        });
    // Without the thread there is no bar, and the query runs as ever.
    drop(ticking);
    receiver
}

impl ProgressBar {
    fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

/// The stream's next batch, keeping the progress line (if any) up to date
/// while waiting for it, and off the screen when rows or the end come.
async fn next_batch(
    stream: &mut datafusion::execution::SendableRecordBatchStream,
    bar: &mut Option<ProgressBar>,
) -> Option<datafusion::error::Result<RecordBatch>> {
    let Some(progress) = bar.as_mut() else {
        return stream.next().await;
    };
    let next = loop {
        tokio::select! {
            biased;
            Some(()) = progress.ticks.recv() => {
                if progress.scan.elapsed() >= PROGRESS_AFTER {
                    let (width, _) = terminal_size();
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[K{}", super::live::cut(&progress.scan.line(), width));
                    let _ = err.flush();
                    progress.shown = true;
                }
            }
            next = stream.next() => break next,
        }
    };
    progress.clear();
    next
}

//! The engine: one session that takes SQL text through every layer (split,
//! parse, plan, choose the executor, run). Settings are in `options`, the
//! sessions queries plan in are in `session`, `EXPLAIN` and `DESCRIBE` extras
//! in `explain` and `describe`.

mod analyze;
mod describe;
mod explain;
mod options;
mod session;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::{Analyzer, AnalyzerRule};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement as DFStatement;
use futures::TryStreamExt;
use sqlparser::dialect::{Dialect, dialect_from_str};

use crate::connectors::object_stores;
use crate::error::{Result, SluiceError};
use crate::plan::windows::WindowRelationPlanner;
use crate::plan::{
    Executor, ExecutorChoice, LowerWindows, SessionWhereIntoAggregate, SourceCatalog, choose_executor,
    create_connector_table,
};
use crate::sql::{self, ParsedStatement, Statement, StatementTokens};
use crate::stream::StreamMetrics;
use crate::stream::checkpoint::CheckpointOptions;
use crate::stream::state_options::StateOptions;
use crate::{batch, stream};

use describe::described_table;
use explain::{prepend_explain_rows, with_source_context};
pub use options::{Mode, ResultMode, SluiceOptions};

/// What a statement produced.
pub struct StatementOutput {
    /// Its rows (none for DDL and `SET`).
    pub stream: SendableRecordBatchStream,
    /// Whether the statement is one that returns rows (a query, EXPLAIN, SHOW,
    /// DESCRIBE) rather than a command.
    pub returns_rows: bool,
    /// The executor that ran it, for queries.
    pub executor: Option<ExecutorChoice>,
    /// A continuous query's counters (rows in, late rows, watermark).
    pub metrics: Option<Arc<StreamMetrics>>,
    /// A batch query's physical plan, whose metrics say how far its scans
    /// have got (for a progress display).
    pub physical: Option<Arc<dyn datafusion::physical_plan::ExecutionPlan>>,
    /// Its windows' event-time columns and the rows each left out for a
    /// NULL time (in either executor), to report when it ends.
    pub null_event_times: Vec<(String, crate::plan::NullEventTimes)>,
}

/// A Sluice session: DataFusion's context plus the catalog of connector tables.
pub struct Engine {
    ctx: SessionContext,
    catalog: SourceCatalog,
    /// Plans window TVFs, and says how it lowered them (for EXPLAIN).
    windows: Arc<WindowRelationPlanner>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// A session with the settings the CLI uses (information_schema on, so
    /// `SHOW TABLES` works).
    pub fn new() -> Self {
        Self::with_config(SessionConfig::new().with_information_schema(true))
    }

    /// A session on a given DataFusion configuration.
    pub fn with_config(config: SessionConfig) -> Self {
        let config = if config.options().extensions.get::<SluiceOptions>().is_some() {
            config
        } else {
            config.with_option_extension(SluiceOptions::default())
        };
        let config = if config.options().extensions.get::<StateOptions>().is_some() {
            config
        } else {
            config.with_option_extension(StateOptions::default())
        };
        let mut config = if config.options().extensions.get::<CheckpointOptions>().is_some() {
            config
        } else {
            config.with_option_extension(CheckpointOptions::default())
        };
        // DataFusion's planner attaches the place of an unknown column or a
        // mistyped expression to its error only when it collects spans; the
        // CLI prints that place (`LINE n:` and a caret) instead of the
        // statement's start.
        config.options_mut().sql_parser.collect_spans = true;
        // Window nodes become relational plans before type coercion; the
        // stream planner analyzes with the default rules only (see
        // `Engine::continuous_state`).
        let mut analyzer_rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![Arc::new(LowerWindows)];
        analyzer_rules.extend(Analyzer::new().rules);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_analyzer_rules(analyzer_rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        let windows = Arc::new(WindowRelationPlanner::default());
        ctx.register_relation_planner(Arc::clone(&windows) as _)
            .expect("registering a relation planner on a new session cannot fail");
        crate::plan::flink_functions::register_flink_functions(&ctx);
        Self {
            ctx,
            catalog: SourceCatalog::default(),
            windows,
        }
    }

    /// Say that standard input is the SQL script being run, so a `stdin`
    /// table is refused with a message instead of reading nothing.
    pub fn set_stdin_is_script(&self, yes: bool) {
        self.catalog.set_stdin_is_script(yes);
    }

    /// The DataFusion context underneath (for registering UDFs, tables, ...).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The SQL dialect configured in `datafusion.sql_parser.dialect`.
    pub fn dialect(&self) -> Result<Box<dyn Dialect>> {
        let name = self.ctx.state().config_options().sql_parser.dialect;
        dialect_from_str(name)
            .ok_or_else(|| DataFusionError::Plan(format!("unsupported SQL dialect: {name}")).into())
    }

    /// Cut a script into statements (tokenizing once, keeping positions).
    pub fn split(&self, sql: &str) -> Result<Vec<StatementTokens>> {
        sql::split_statements(sql, self.dialect()?.as_ref())
    }

    /// Parse one statement.
    pub fn parse(&self, tokens: &StatementTokens) -> Result<ParsedStatement> {
        let recursion_limit = self.ctx.state().config_options().sql_parser.recursion_limit;
        sql::parse_statement(tokens, self.dialect()?.as_ref(), recursion_limit.get())
    }

    /// Run one parsed statement. Rows come back as a stream that the caller drives.
    pub async fn execute(&self, statement: &ParsedStatement) -> Result<StatementOutput> {
        let at = |e: DataFusionError| SluiceError::from(e).or_at(statement.span);
        match &statement.statement {
            Statement::CreateConnectorTable(create) => {
                create_connector_table(&self.ctx, &self.catalog, create).await?;
                Ok(empty_output())
            }
            Statement::DataFusion(df) => {
                self.register_object_stores(df).map_err(at)?;
                self.check_versioned(&statement.versioned).await?;
                let state = self.ctx.state();
                self.windows.take_lowered();
                let explained = |e: DataFusionError| match session::remote_location(df) {
                    Some(location) => object_stores::explain_error(location, e),
                    None => e,
                };
                let plan = state
                    .statement_to_plan(df.as_ref().clone())
                    .await
                    .map_err(|e| at(explained(e)))?;
                let output = self.execute_plan(plan, statement.emit).await.map_err(|e| {
                    SluiceError {
                        source: explained(e.source),
                        location: e.location,
                    }
                    .or_at(statement.span)
                })?;
                match described_table(df) {
                    Some(table) => self.describe_watermark(table, output).await.map_err(at),
                    None => Ok(output),
                }
            }
        }
    }

    /// `FOR SYSTEM_TIME AS OF` reads a table as it was at a time: Sluice
    /// joins it as a plain table, which is right only when its rows never
    /// change (a file, a bounded generator). A stream or a changelog has
    /// versions that differ, so the clause is refused there.
    async fn check_versioned(&self, versioned: &[sql::VersionedTable]) -> Result<()> {
        for v in versioned {
            let Ok(provider) = self.ctx.table_provider(v.table.as_str()).await else {
                continue; // planning names the unknown table
            };
            let changing = match self.catalog.source_of(&provider) {
                Some(info) if info.changelog => Some("a changelog"),
                Some(info) if info.boundedness != crate::connectors::Boundedness::Bounded => Some("a stream"),
                Some(_) => None,
                // A view changes when a table under it does.
                None => match provider.get_logical_plan() {
                    Some(view) => choose_executor(&view, &self.catalog)
                        .map_err(SluiceError::from)?
                        .sources
                        .iter()
                        .any(|s| s.boundedness != crate::connectors::Boundedness::Bounded)
                        .then_some("a view over a stream"),
                    None => None,
                },
            };
            if let Some(what) = changing {
                return Err(SluiceError::at(
                    DataFusionError::NotImplemented(format!(
                        "FOR SYSTEM_TIME AS OF {} over table '{}', {what}: a temporal join of a table whose rows change is not supported yet; join a bounded table (a file), whose every version is the same, or join the stream itself (an interval or regular join)",
                        v.as_of, v.table
                    )),
                    v.span,
                ));
            }
        }
        Ok(())
    }

    /// Run every statement of a script, collecting each one's rows. For tests
    /// and tools; the CLI drives [`Engine::execute`] itself to stream output.
    pub async fn run_script(&self, sql: &str) -> Result<Vec<Vec<RecordBatch>>> {
        let mut results = Vec::new();
        for tokens in self.split(sql)? {
            let statement = self.parse(&tokens)?;
            let output = self.execute(&statement).await?;
            let batches: Vec<RecordBatch> = output.stream.try_collect().await?;
            results.push(batches);
        }
        Ok(results)
    }

    async fn execute_plan(
        &self,
        plan: LogicalPlan,
        emit: Option<crate::sql::Emit>,
    ) -> Result<StatementOutput> {
        let returns_rows = !matches!(
            plan,
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_)
        ) && !plan.schema().fields().is_empty();
        let mut choice = choose_executor(&plan, &self.catalog)?;
        if matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)) {
            // CREATE VIEW and friends read no rows: DataFusion records them.
            choice.executor = Executor::Batch;
        } else {
            choice = self.apply_mode(choice)?;
        }
        let explain = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
        let null_event_times = crate::plan::null_event_times(&plan);
        if choice.executor == Executor::Continuous && !explain {
            let metrics = Arc::new(StreamMetrics::default());
            let state = self.continuous_state();
            let stream = match &plan {
                LogicalPlan::Dml(insert) => {
                    stream::execute_insert(&state, insert, emit, &self.catalog, Arc::clone(&metrics)).await?
                }
                _ => stream::execute(&state, &plan, emit, &self.catalog, Arc::clone(&metrics)).await?,
            };
            let stream = with_source_context(stream, &choice, self.locators(&choice), true);
            metrics.watch_null_times(null_event_times.iter().map(|(_, n)| n.clone()));
            return Ok(StatementOutput {
                stream,
                returns_rows,
                executor: Some(choice),
                metrics: Some(metrics),
                physical: None,
                null_event_times,
            });
        }
        if let LogicalPlan::Analyze(analyze) = &plan
            && choice.executor == Executor::Continuous
        {
            return self.analyze_continuous(analyze, emit, &choice).await;
        }
        let operators = match (&plan, choice.executor) {
            (LogicalPlan::Explain(explain), Executor::Continuous) => {
                // An INSERT streams its query into the table's writer: the
                // query is what runs continuously.
                let query = match explain.plan.as_ref() {
                    LogicalPlan::Dml(insert) => insert.input.as_ref(),
                    other => other,
                };
                let metrics = Arc::new(StreamMetrics::default());
                let pipeline = stream::plan(
                    &self.continuous_state(),
                    query,
                    emit,
                    &self.catalog,
                    Arc::clone(&metrics),
                )
                .await?;
                let mut lines = pipeline.graph.explain();
                if let Ok(warnings) = metrics.warnings.lock() {
                    lines.extend(warnings.iter().map(|w| format!("Warning: {w}")));
                }
                lines
            }
            _ => vec![],
        };
        let (stream, physical) = batch::execute_with_plan(&self.ctx, plan).await?;
        let stream = with_source_context(stream, &choice, self.locators(&choice), false);
        let stream = if explain && self.explain_executor() {
            let mut rows = vec![("executor".to_string(), choice.explanation())];
            rows.extend(
                self.windows
                    .take_lowered()
                    .into_iter()
                    .map(|w| ("window".to_string(), w)),
            );
            rows.extend(
                operators
                    .into_iter()
                    .map(|o| ("continuous operator".to_string(), o)),
            );
            prepend_explain_rows(stream, rows).await?
        } else {
            stream
        };
        Ok(StatementOutput {
            stream,
            returns_rows,
            executor: Some(choice),
            metrics: None,
            physical,
            null_event_times,
        })
    }

    /// `sluice.mode` over the choice by boundedness: `continuous` replays
    /// bounded tables as streams; `batch` refuses unbounded ones.
    /// The bad-row locators of the tables `choice` reads (local CSV and JSON
    /// files read once).
    fn locators(&self, choice: &ExecutorChoice) -> Vec<Arc<crate::connectors::locate::BadRowLocator>> {
        choice
            .sources
            .iter()
            .filter_map(|s| self.catalog.locator(&s.table))
            .collect()
    }

    fn apply_mode(&self, mut choice: ExecutorChoice) -> Result<ExecutorChoice> {
        match self.options().mode {
            Mode::Auto => {}
            Mode::Continuous => {
                // Any table but the session's own catalog views.
                if choice
                    .sources
                    .iter()
                    .any(|s| !s.table.starts_with("information_schema."))
                {
                    choice.executor = Executor::Continuous;
                }
            }
            Mode::Batch => {
                if choice.executor == Executor::Continuous {
                    return Err(DataFusionError::Plan(format!(
                        "sluice.mode is batch, but this query needs the continuous executor ({}); give the source an end (an event count, 'bounded' = 'true') or SET sluice.mode = 'auto'",
                        choice.explanation()
                    ))
                    .into());
                }
            }
        }
        Ok(choice)
    }
}

fn empty_output() -> StatementOutput {
    let schema = Arc::new(arrow::datatypes::Schema::empty());
    StatementOutput {
        stream: Box::pin(
            MemoryStream::try_new(vec![], schema, None).expect("an empty memory stream always builds"),
        ),
        returns_rows: false,
        executor: None,
        metrics: None,
        physical: None,
        null_event_times: Vec::new(),
    }
}

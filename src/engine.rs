//! The engine: one session that takes SQL text through every layer.

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
use crate::stream::state_options::StateOptions;
use crate::{batch, stream};

/// Sluice's own settings, set with `SET sluice.<name> = <value>` and listed by
/// `SHOW ALL` / `information_schema.df_settings` under their full names.
#[derive(Debug, Clone)]
pub struct SluiceOptions {
    /// EXPLAIN starts with a row naming the executor (batch or continuous) and why.
    pub explain_executor: bool,
    /// Which executor runs queries.
    pub mode: Mode,
}

impl Default for SluiceOptions {
    fn default() -> Self {
        Self {
            explain_executor: true,
            mode: Mode::Auto,
        }
    }
}

/// `sluice.mode` (the CLI's `--mode`): which executor runs a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Batch when every source is bounded, continuous otherwise.
    #[default]
    Auto,
    /// Batch only: a query over an unbounded source is an error.
    Batch,
    /// Continuous even over bounded tables (a replay, ending with a
    /// watermark that closes every window).
    Continuous,
}

// The names are the ones `--mode` takes (clap's `ValueEnum`), so `SET
// sluice.mode` and the flag accept and show the same words.
impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = clap::ValueEnum::to_possible_value(self);
        f.write_str(value.as_ref().map_or("", |v| v.get_name()))
    }
}

impl std::str::FromStr for Mode {
    type Err = DataFusionError;

    fn from_str(value: &str) -> datafusion::error::Result<Self> {
        <Mode as clap::ValueEnum>::from_str(value, true).map_err(|_| {
            DataFusionError::Configuration(format!(
                "sluice.mode takes auto, batch or continuous, not '{value}'"
            ))
        })
    }
}

impl ConfigExtension for SluiceOptions {
    const PREFIX: &'static str = "sluice";
}

// Written out rather than with DataFusion's `extensions_options!`, whose
// entries lose the `sluice.` prefix, so `SHOW sluice.explain_executor` could
// not find them.
impl ExtensionOptions for SluiceOptions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> datafusion::error::Result<()> {
        match key {
            "explain_executor" => {
                self.explain_executor = value.parse().map_err(|_| {
                    DataFusionError::Configuration(format!(
                        "sluice.explain_executor takes true or false, not '{value}'"
                    ))
                })?;
                Ok(())
            }
            "mode" => {
                self.mode = value.parse()?;
                Ok(())
            }
            other => Err(DataFusionError::Configuration(format!(
                "unknown setting 'sluice.{other}'; Sluice's settings are: sluice.explain_executor, sluice.mode"
            ))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![
            ConfigEntry {
                key: format!("{}.explain_executor", Self::PREFIX),
                value: Some(self.explain_executor.to_string()),
                description: "EXPLAIN starts with a row naming the executor (batch or continuous) and why",
            },
            ConfigEntry {
                key: format!("{}.mode", Self::PREFIX),
                value: Some(self.mode.to_string()),
                description: "auto: batch when every source is bounded, else continuous; batch; continuous (replays bounded tables as streams)",
            },
        ]
    }
}

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
        let mut config = if config.options().extensions.get::<StateOptions>().is_some() {
            config
        } else {
            config.with_option_extension(StateOptions::default())
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
                let state = self.ctx.state();
                self.windows.take_lowered();
                let plan = state.statement_to_plan(df.as_ref().clone()).await.map_err(at)?;
                let output = self
                    .execute_plan(plan, statement.emit)
                    .await
                    .map_err(|e| e.or_at(statement.span))?;
                match described_table(df) {
                    Some(table) => self.describe_watermark(table, output).await.map_err(at),
                    None => Ok(output),
                }
            }
        }
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

    /// `DESCRIBE t` of a table with a watermark gets a `watermark` column
    /// holding the expression on the event-time column's row (as Flink shows it).
    async fn describe_watermark(
        &self,
        table: &sqlparser::ast::ObjectName,
        output: StatementOutput,
    ) -> datafusion::error::Result<StatementOutput> {
        let normalize = self
            .ctx
            .state()
            .config_options()
            .sql_parser
            .enable_ident_normalization;
        let reference = datafusion::sql::planner::object_name_to_table_reference(table.clone(), normalize)?;
        let Some(provider) = self.ctx.table_provider(reference).await.ok() else {
            return Ok(output);
        };
        let Some(watermark) = self.catalog.source_of(&provider).and_then(|s| s.watermark) else {
            return Ok(output);
        };
        let batches: Vec<RecordBatch> = output.stream.try_collect().await?;
        let mut out = Vec::with_capacity(batches.len());
        let mut schema = None;
        for batch in batches {
            let names = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
            let names = names
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Internal("DESCRIBE's first column is not text".into()))?;
            let marks: StringArray = names
                .iter()
                .map(|name| (name == Some(watermark.column.as_str())).then_some(watermark.sql.as_str()))
                .collect();
            let mut columns = batch.columns().to_vec();
            columns.push(Arc::new(marks));
            let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
            fields.push(Arc::new(arrow::datatypes::Field::new(
                "watermark",
                arrow::datatypes::DataType::Utf8,
                true,
            )));
            let batch_schema = Arc::new(arrow::datatypes::Schema::new(fields));
            out.push(RecordBatch::try_new(Arc::clone(&batch_schema), columns)?);
            schema = Some(batch_schema);
        }
        let schema = schema.unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
        Ok(StatementOutput {
            stream: Box::pin(MemoryStream::try_new(out, schema, None)?),
            returns_rows: output.returns_rows,
            executor: output.executor,
            metrics: None,
        })
    }

    /// Every table of the session (not information_schema), with what backs
    /// it: `(schema, name, kind, source)`, sorted. For the REPL's `\d`.
    pub async fn tables(&self) -> Result<Vec<[String; 4]>> {
        let mut rows = Vec::new();
        for catalog_name in self.ctx.catalog_names() {
            let Some(catalog) = self.ctx.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                if schema_name == "information_schema" {
                    continue;
                }
                for table_name in schema.table_names() {
                    let Some(provider) = schema.table(&table_name).await? else {
                        continue;
                    };
                    let kind = match provider.table_type() {
                        datafusion::logical_expr::TableType::View => "view",
                        _ => "table",
                    };
                    let source = match (self.catalog.source_of(&provider), provider.get_table_definition()) {
                        (Some(info), _) => {
                            format!("{} {} ({})", info.connector, info.description, info.boundedness)
                        }
                        (None, Some(definition)) => definition.to_string(),
                        (None, None) => crate::plan::DATAFUSION_TABLE.to_string(),
                    };
                    rows.push([schema_name.clone(), table_name, kind.to_string(), source]);
                }
            }
        }
        rows.sort();
        Ok(rows)
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
        if choice.executor == Executor::Continuous && !explain {
            let metrics = Arc::new(StreamMetrics::default());
            let state = self.continuous_state();
            let stream = match &plan {
                LogicalPlan::Dml(insert) => {
                    stream::execute_insert(&state, insert, emit, &self.catalog, Arc::clone(&metrics)).await?
                }
                _ => stream::execute(&state, &plan, emit, &self.catalog, Arc::clone(&metrics)).await?,
            };
            return Ok(StatementOutput {
                stream,
                returns_rows,
                executor: Some(choice),
                metrics: Some(metrics),
            });
        }
        if matches!(plan, LogicalPlan::Analyze(_)) && choice.executor == Executor::Continuous {
            return Err(DataFusionError::NotImplemented(format!(
                "EXPLAIN ANALYZE runs the query to its end, and this one is continuous ({}); use EXPLAIN to see its operators",
                choice.explanation()
            ))
            .into());
        }
        let operators = match (&plan, choice.executor) {
            (LogicalPlan::Explain(explain), Executor::Continuous) => {
                let pipeline = stream::plan(
                    &self.continuous_state(),
                    &explain.plan,
                    emit,
                    &self.catalog,
                    Arc::new(StreamMetrics::default()),
                )
                .await?;
                let mut lines = pipeline.graph.explain();
                lines.extend(pipeline.warnings.iter().map(|w| format!("Warning: {w}")));
                lines
            }
            _ => vec![],
        };
        let stream = with_source_context(batch::execute(&self.ctx, plan).await?, &choice);
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
        })
    }

    /// `sluice.mode` over the choice by boundedness: `continuous` replays
    /// bounded tables as streams; `batch` refuses unbounded ones.
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

    /// The session as the continuous executor plans with: windows stay window
    /// nodes (no batch lowering), a `WHERE` over a SESSION window moves into
    /// its aggregate (see [`SessionWhereIntoAggregate`]), and scans read one
    /// ordered partition.
    fn continuous_state(&self) -> SessionState {
        let state = self.ctx.state();
        // The catalog is shared with the session: building must not create
        // (and so replace) the default one.
        let mut config = state
            .config()
            .clone()
            .with_create_default_catalog_and_schema(false);
        config.options_mut().execution.target_partitions = 1;
        config.options_mut().optimizer.repartition_file_scans = false;
        let mut analyzer_rules = Analyzer::new().rules;
        analyzer_rules.push(Arc::new(SessionWhereIntoAggregate));
        // The single-distinct rewrite splits `count(DISTINCT v)` into two
        // chained aggregates; over a SESSION window that makes two session
        // operators, the outer one sessionizing the inner one's output
        // (wrong bounds). The continuous aggregates keep DISTINCT themselves.
        let optimizer_rules = state
            .optimizers()
            .iter()
            .filter(|rule| rule.name() != SINGLE_DISTINCT_RULE)
            .cloned()
            .collect();
        SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .with_analyzer_rules(analyzer_rules)
            .with_optimizer_rules(optimizer_rules)
            .build()
    }

    fn options(&self) -> SluiceOptions {
        self.ctx
            .state()
            .config_options()
            .extensions
            .get::<SluiceOptions>()
            .cloned()
            .unwrap_or_default()
    }

    fn explain_executor(&self) -> bool {
        self.options().explain_executor
    }

    /// Remote locations in DataFusion's own statements need their object store
    /// registered before planning, as connector tables do.
    fn register_object_stores(&self, statement: &DFStatement) -> datafusion::error::Result<()> {
        let runtime = self.ctx.runtime_env();
        match statement {
            DFStatement::CreateExternalTable(create) => create
                .locations
                .iter()
                .try_for_each(|location| object_stores::register_for_location(&runtime, location, &[])),
            DFStatement::CopyTo(copy) => object_stores::register_for_location(&runtime, &copy.target, &[]),
            _ => Ok(()),
        }
    }
}

/// DataFusion's `SingleDistinctToGroupBy`, left out of continuous planning.
const SINGLE_DISTINCT_RULE: &str = "single_distinct_aggregation_to_group_by";

/// The table a `DESCRIBE t` statement names.
fn described_table(statement: &DFStatement) -> Option<&sqlparser::ast::ObjectName> {
    match statement {
        DFStatement::Statement(s) => match s.as_ref() {
            sqlparser::ast::Statement::ExplainTable { table_name, .. } => Some(table_name),
            _ => None,
        },
        _ => None,
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
    }
}

/// Errors met while reading (a value that does not parse, a file that went
/// away) name the connector tables the query reads, so the user knows which
/// file to look at.
fn with_source_context(
    stream: SendableRecordBatchStream,
    choice: &ExecutorChoice,
) -> SendableRecordBatchStream {
    let tables: Vec<String> = choice
        .sources
        .iter()
        .filter(|s| s.description != crate::plan::DATAFUSION_TABLE)
        .map(|s| format!("'{}' ({})", s.table, s.description))
        .collect();
    if tables.is_empty() {
        return stream;
    }
    let context = match tables.as_slice() {
        [one] => format!("reading table {one}"),
        many => format!("reading tables {}", many.join(", ")),
    };
    let schema = stream.schema();
    // Errors reach us wrapped (a repartition shares them as `Shared`), so the
    // kind is judged at the root: faults of the query or of Sluice are not
    // about the data and get no reading context.
    let stream = stream.map_err(move |e| match e.find_root() {
        DataFusionError::Plan(_)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Internal(_)
        | DataFusionError::Configuration(_)
        | DataFusionError::SchemaError(..) => e,
        _ => e.context(context.clone()),
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// EXPLAIN's rows are `(plan_type, plan)`; put Sluice's own first: the
/// executor and why, then how each window was lowered.
async fn prepend_explain_rows(
    stream: SendableRecordBatchStream,
    rows: Vec<(String, String)>,
) -> datafusion::error::Result<SendableRecordBatchStream> {
    let schema = stream.schema();
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    if schema.fields().len() != 2 {
        let stream = MemoryStream::try_new(batches, schema, None)?;
        return Ok(Box::pin(stream));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(kind, _)| kind.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, text)| text.as_str()),
        )),
    ];
    let first = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    let all = std::iter::once(first).chain(batches).collect();
    Ok(Box::pin(MemoryStream::try_new(all, schema, None)?))
}

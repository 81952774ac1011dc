//! Connector tables: `CREATE TABLE ... WITH ('connector' = ...)` turned into a
//! registered DataFusion table plus what the planner must know of its source
//! (connector, boundedness, watermark).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchema, TableReference, plan_datafusion_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::planner::ContextProvider;
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::sql::planner::PlannerContext;

use super::SessionFunctions;
use crate::connectors::{Boundedness, Options, blackhole, file, follow, generator, stdin};
use crate::error::SluiceError;
use crate::sql::{CreateConnectorTable, WatermarkDef};

/// What the planner knows of one connector table.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// The connector's name (`file`, ...).
    pub connector: String,
    /// A short description for EXPLAIN (`csv testdata/orders.csv`).
    pub description: String,
    /// Whether the source ends.
    pub boundedness: Boundedness,
    /// The declared watermark, if any.
    pub watermark: Option<Watermark>,
    /// The provider registered for it; a table replaced by other means is no
    /// longer this source.
    pub provider: Arc<dyn TableProvider>,
    /// The provider that plans' table scans read (the registered one, or the
    /// one under it when the registered table is a view over the files).
    pub scanned: Arc<dyn TableProvider>,
    /// Its rows are changes (`'format' = 'debezium-json'`): it is read as an
    /// updating table, by the continuous executor only.
    pub changelog: bool,
    /// Where a continuous query writes the rows it finds late
    /// (`'late.policy' = 'side-output'`, `'late.path'`); `None`: count only.
    pub late_path: Option<std::path::PathBuf>,
    /// How often a continuous `INSERT` into this table commits a part file
    /// (file tables; `'sink.rolling-policy.rollover-interval'`).
    pub rollover: std::time::Duration,
    /// How to name the file, line and column of a bad row that failed a
    /// batch scan (local CSV and JSON file tables).
    pub locator: Option<Arc<crate::connectors::locate::BadRowLocator>>,
    /// `'scan.watermark.idle-timeout'` (Flink's name): once the source sends
    /// nothing for this long, it stops holding back the watermark of a union
    /// or join it feeds, until it sends again. `None`: it always holds it.
    pub idle_timeout: Option<std::time::Duration>,
}

/// `WATERMARK FOR column AS expr`, checked and planned.
#[derive(Debug, Clone)]
pub struct Watermark {
    /// The event-time column.
    pub column: String,
    /// The watermark of a row, planned over the table's columns.
    pub expr: Expr,
    /// The expression as written, for DESCRIBE and EXPLAIN.
    pub sql: String,
}

/// The connector tables of a session, by resolved name.
#[derive(Debug, Default)]
pub struct SourceCatalog {
    sources: RwLock<HashMap<String, SourceInfo>>,
    /// Standard input carries the SQL script itself, so no table can read it.
    stdin_is_script: std::sync::atomic::AtomicBool,
}

impl SourceCatalog {
    /// Say that standard input is the script being run (`cat q.sql | sluice`).
    pub fn set_stdin_is_script(&self, yes: bool) {
        self.stdin_is_script
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The source behind a provider, registered or scanned, if it is one of ours.
    pub fn source_of(&self, provider: &Arc<dyn TableProvider>) -> Option<SourceInfo> {
        let sources = self.sources.read().ok()?;
        sources
            .values()
            .find(|s| Arc::ptr_eq(&s.provider, provider) || Arc::ptr_eq(&s.scanned, provider))
            .cloned()
    }

    /// The bad-row locator of the table named `table`, if it has one.
    pub fn locator(&self, table: &str) -> Option<Arc<crate::connectors::locate::BadRowLocator>> {
        self.sources.read().ok()?.get(table)?.locator.clone()
    }

    fn insert(&self, name: String, info: SourceInfo) {
        if let Ok(mut sources) = self.sources.write() {
            sources.insert(name, info);
        }
    }
}

/// Create and register a connector table.
pub async fn create_connector_table(
    ctx: &SessionContext,
    catalog: &SourceCatalog,
    create: &CreateConnectorTable,
) -> Result<(), SluiceError> {
    let at_name = |e: DataFusionError| SluiceError::at(e, create.name_span);
    let state = ctx.state();
    let name = table_reference(
        create,
        state.config_options().sql_parser.enable_ident_normalization,
    )
    .map_err(at_name)?;

    let exists = ctx.table_exist(name.clone()).map_err(at_name)?;
    if exists && create.if_not_exists {
        return Ok(());
    }
    if exists && !create.or_replace {
        return Err(at_name(plan_datafusion_err!(
            "table '{name}' already exists: use CREATE OR REPLACE TABLE, or DROP TABLE {name} first"
        )));
    }

    let functions = SessionFunctions::new(&state);
    let declared: Option<SchemaRef> = if create.columns.is_empty() {
        None
    } else {
        let schema = functions
            .sql_to_rel()
            .build_schema(create.columns.clone())
            .map_err(at_name)?;
        Some(Arc::new(schema))
    };

    let option_span = |key: &str| {
        create
            .options
            .iter()
            .find(|o| o.key == key)
            .map(|o| o.span)
            .unwrap_or(create.name_span)
    };
    let Some(connector) = create
        .options
        .iter()
        .find(|o| o.key == "connector")
        .map(|o| o.value.clone())
    else {
        return Err(at_name(plan_datafusion_err!(
            "missing option 'connector': add WITH ('connector' = 'file', 'path' = ..., 'format' = ...)"
        )));
    };
    let mut options =
        Options::try_new(create.options.iter().map(|o| (o.key.clone(), o.value.clone()))).map_err(at_name)?;
    let late_path = late_policy(&mut options).map_err(|e| locate_option_error(e, &option_span, create))?;
    let idle_timeout =
        idle_timeout(&mut options).map_err(|e| locate_option_error(e, &option_span, create))?;

    let mut rollover = crate::connectors::file::DEFAULT_ROLLOVER;
    let mut locator = None;
    // Stdin and followed files can be changelogs (their 'format' says).
    let mut changelog = false;
    let (provider, scanned, description, boundedness) = match connector.to_lowercase().as_str() {
        "file" | "filesystem" => {
            let mut options = options;
            let locate = |e| locate_option_error(e, &option_span, create);
            if options.take_bool("follow").map_err(locate)? == Some(true) {
                let table = follow::create_table(&state, &name, declared, options)
                    .await
                    .map_err(locate)?;
                let description = table.description();
                changelog = table.is_changelog();
                let provider: Arc<dyn TableProvider> = Arc::new(table);
                (
                    Arc::clone(&provider),
                    provider,
                    description,
                    Boundedness::Unbounded,
                )
            } else {
                let table = file::create_table(&state, &name, declared, options)
                    .await
                    .map_err(locate)?;
                let description = format!("{} {}", table.format, table.path);
                rollover = table.rollover;
                locator = table.locator;
                (table.provider, table.scanned, description, Boundedness::Bounded)
            }
        }
        "stdin" if catalog.stdin_is_script.load(std::sync::atomic::Ordering::Relaxed) => {
            return Err(SluiceError::at(
                plan_datafusion_err!(
                    "standard input holds this SQL script, so table '{name}' cannot read it: give the SQL with -e or a file (sluice -e \"...\" < data, or sluice q.sql < data)"
                ),
                option_span("connector"),
            ));
        }
        "stdin" => {
            let table = stdin::StdinTable::try_new(declared, options)
                .map_err(|e| locate_option_error(e, &option_span, create))?;
            let description = table.description();
            let boundedness = table.boundedness();
            changelog = table.is_changelog();
            let provider: Arc<dyn TableProvider> = Arc::new(table);
            (Arc::clone(&provider), provider, description, boundedness)
        }
        generator @ ("nexmark" | "datagen") => {
            let table = generator::create_table(generator, name.table(), declared, options)
                .map_err(|e| locate_option_error(e, &option_span, create))?;
            let provider: Arc<dyn TableProvider> = table.provider;
            (
                Arc::clone(&provider),
                provider,
                table.description,
                table.boundedness,
            )
        }
        "blackhole" => {
            let table = blackhole::BlackholeTable::try_new(declared, options)
                .map_err(|e| locate_option_error(e, &option_span, create))?;
            let provider: Arc<dyn TableProvider> = Arc::new(table);
            (
                Arc::clone(&provider),
                provider,
                "blackhole".to_string(),
                Boundedness::Bounded,
            )
        }
        other => {
            return Err(SluiceError::at(
                plan_datafusion_err!(
                    "unknown connector '{other}'; available: 'file', 'stdin', 'nexmark', 'datagen', 'blackhole'"
                ),
                option_span("connector"),
            ));
        }
    };

    let watermark = match &create.watermark {
        Some(wm) => Some(plan_watermark(&functions, &provider.schema(), wm)?),
        None => None,
    };

    if exists {
        ctx.deregister_table(name.clone()).map_err(at_name)?;
    }
    ctx.register_table(name.clone(), Arc::clone(&provider))
        .map_err(at_name)?;
    catalog.insert(
        name.to_string(),
        SourceInfo {
            connector: connector.to_lowercase(),
            changelog,
            description,
            boundedness,
            watermark,
            provider,
            scanned,
            late_path,
            rollover,
            locator,
            idle_timeout,
        },
    );
    Ok(())
}

/// `'scan.watermark.idle-timeout'`: a duration (`'5 s'`, `'500 ms'`); zero
/// is no timeout, as in Flink.
fn idle_timeout(options: &mut Options) -> Result<Option<std::time::Duration>> {
    const KEY: &str = "scan.watermark.idle-timeout";
    let Some(value) = options.take(KEY) else {
        return Ok(None);
    };
    match crate::connectors::options::parse_duration_ms(value.trim()) {
        Some(0) => Ok(None),
        Some(ms) => Ok(Some(std::time::Duration::from_millis(ms))),
        None => plan_err!("option '{KEY}' = '{value}' is not a duration: write one as '5 s' or '500 ms'"),
    }
}

/// `'late.policy'`: `'drop'` (the default: late rows are counted and left
/// out) or `'side-output'` with `'late.path'`, a file late rows go to as NDJSON.
fn late_policy(options: &mut Options) -> Result<Option<std::path::PathBuf>> {
    let policy = options.take("late.policy");
    let path = options.take("late.path");
    match (policy.as_deref().map(str::to_lowercase).as_deref(), path) {
        (None | Some("drop"), None) => Ok(None),
        (Some("side-output"), Some(path)) => {
            // Found out now, not at the first late row after results went out.
            let path = std::path::PathBuf::from(path);
            let parent = match path.parent() {
                Some(p) if p.as_os_str().is_empty() => std::path::Path::new("."),
                Some(p) => p,
                None => std::path::Path::new("."),
            };
            if !parent.is_dir() {
                return plan_err!(
                    "option 'late.path' = '{}': directory '{}' does not exist",
                    path.display(),
                    parent.display()
                );
            }
            if path.is_dir() {
                return plan_err!(
                    "option 'late.path' = '{}' is a directory; name a file",
                    path.display()
                );
            }
            Ok(Some(path))
        }
        (Some("side-output"), None) => {
            plan_err!(
                "option 'late.policy' = 'side-output' needs 'late.path', the file late rows are written to"
            )
        }
        (None | Some("drop"), Some(_)) => {
            plan_err!("option 'late.path' is only used with 'late.policy' = 'side-output'")
        }
        (Some(other), _) => plan_err!("option 'late.policy' is 'drop' or 'side-output', not '{other}'"),
    }
}

/// Point an error from a connector at the option it is about, when the
/// message names one (`option 'x'`, `'csv.*' options`), else at the table name.
fn locate_option_error(
    e: DataFusionError,
    option_span: &impl Fn(&str) -> sqlparser::tokenizer::Span,
    create: &CreateConnectorTable,
) -> SluiceError {
    let text = e.to_string();
    let span = create
        .options
        .iter()
        .find(|o| text.contains(&format!("'{}'", o.key)) || text.contains(&format!("'{}'", o.value)))
        .map(|o| option_span(&o.key))
        .unwrap_or(create.name_span);
    SluiceError::at(e, span)
}

/// Check a `WATERMARK FOR col AS expr` against the table's columns and plan it.
fn plan_watermark(
    functions: &SessionFunctions<'_>,
    schema: &SchemaRef,
    wm: &WatermarkDef,
) -> Result<Watermark, SluiceError> {
    let at = |e: DataFusionError| SluiceError::at(e, wm.span);
    let normalize = functions.options().sql_parser.enable_ident_normalization;
    let column = datafusion::sql::planner::IdentNormalizer::new(normalize).normalize(wm.column.clone());
    let Ok(field) = schema.field_with_name(&column) else {
        return Err(at(plan_datafusion_err!(
            "WATERMARK FOR '{column}': the table has no such column; its columns are {}",
            crate::connectors::column_names(schema)
        )));
    };
    if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
        return Err(at(plan_datafusion_err!(
            "WATERMARK FOR '{column}': the column is {}, but event time must be a TIMESTAMP; declare it TIMESTAMP(3) or add a computed column",
            field.data_type()
        )));
    }
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).map_err(at)?;
    let expr = functions
        .sql_to_rel()
        .sql_to_expr(wm.expr.clone(), &df_schema, &mut PlannerContext::new())
        .map_err(at)?;
    let data_type = expr.get_type(&df_schema).map_err(at)?;
    if !matches!(data_type, DataType::Timestamp(_, _)) {
        return Err(at(plan_datafusion_err!(
            "the WATERMARK expression '{}' is {data_type}, not a TIMESTAMP: write it as {column} - INTERVAL '5' SECOND",
            wm.expr
        )));
    }
    Ok(Watermark {
        column,
        expr,
        sql: wm.expr.to_string(),
    })
}

/// The table's name as DataFusion resolves it: `t`, `schema.t` or `catalog.schema.t`,
/// each part normalized (lowercased unless quoted) as DataFusion does.
fn table_reference(create: &CreateConnectorTable, normalize: bool) -> Result<TableReference> {
    let normalizer = datafusion::sql::planner::IdentNormalizer::new(normalize);
    let parts: Vec<String> = create
        .name
        .0
        .iter()
        .filter_map(|part| part.as_ident().cloned())
        .map(|ident| normalizer.normalize(ident))
        .collect();
    match parts.as_slice() {
        [table] => Ok(TableReference::bare(table.as_str())),
        [schema, table] => Ok(TableReference::partial(schema.as_str(), table.as_str())),
        [catalog, schema, table] => Ok(TableReference::full(
            catalog.as_str(),
            schema.as_str(),
            table.as_str(),
        )),
        _ => plan_err!(
            "'{}' is not a table name: write table, schema.table or catalog.schema.table",
            create.name
        ),
    }
}

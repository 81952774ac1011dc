//! The stream planner: an optimized DataFusion `LogicalPlan` lowered to a
//! [`StreamPlan`] by a chain of small named rules (`rules.rs`), applied
//! bottom-up through DataFusion's `TreeNode`: each rule rewrites one kind of
//! logical node, its inputs lowered already, into a [`extension::Lowered`]
//! extension node that holds what it lowers to (a [`Planned`]: its stream
//! plan, where its window bounds are (`lineage`), what its sources are like,
//! and whether its rows are changes, each computed from the node and its
//! lowered inputs), or why it cannot be. A final visitor reports the deepest
//! refusal left in the lowered plan, naming the node and why; nothing falls
//! back to batch silently.
//!
//! Files: `rules` (the chain and the final visitor), `extension` (the
//! lowered node), `windows` (window TVFs), `aggregates`, `joins` (joins and
//! unions), `ordering` (ORDER BY, window functions, dedup, Top-N), `lineage`
//! (window bounds), `panes` (a rule over the logical plan, run first).
//!
//! Windows: a `Window` node (see [`crate::plan::WindowTvf`]) is planned
//! through its relational lowering, so window bounds are computed by the very
//! expressions batch uses. Under a windowed aggregate, HOP and CUMULATE are
//! lowered as a TUMBLE of one slide (step) instead: rows get their *pane*, and
//! the aggregate makes windows out of panes, never copying a row.

mod aggregates;
mod extension;
mod joins;
mod lineage;
mod ordering;
mod panes;
mod result_key;
mod rules;
mod unnest;
mod windows;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::compute::SortOptions;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DFSchema, not_impl_err, plan_err};
use datafusion::datasource::source_as_provider;
use datafusion::error::Result;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::logical_plan::{FetchType, SkipType};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::AnalyzerRule;
use datafusion::optimizer::analyzer::type_coercion::TypeCoercion;
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_planner::create_window_expr;

use super::graph::Graph;
use super::groups::Aggregates;
use super::operator::MILLISECOND;
use super::operators::session_aggregate::SessionAggregateSpec;
use super::operators::updating_aggregate::EmitInterval;
use super::operators::window_aggregate::{
    GroupColumn, PaneColumns, Panes, WindowAggregateSpec, WindowColumn,
};
use super::plan::{StreamNode, StreamPlan};
use super::source::SourceSpec;
use super::{StreamMetrics, changelog_schema};
use crate::connectors::Boundedness;
use crate::plan::windows::{WINDOW_END, WINDOW_START, WINDOW_TIME, WindowKind, duration};
use crate::plan::{SourceCatalog, SourceInfo, WindowTvf};
use crate::sql::Emit;
use extension::{logical, unlowered};
use lineage::{WindowLineage, is_bound_column, output_lineage, strip_alias};
use windows::window_below;

/// A planned continuous query: its stream plan and what its rows are like.
pub struct StreamQuery {
    /// What runs: sources, operators, and their inputs.
    pub plan: Arc<StreamPlan>,
    /// What planning found worth saying when the query starts (and in
    /// EXPLAIN): state that grows without bound, and such.
    pub warnings: Vec<String>,
    /// The rows that come out (after the change column, with `EMIT CHANGES`).
    pub schema: SchemaRef,
    /// Whether rows are a changelog (`EMIT CHANGES`, an updating result).
    pub changes: bool,
    /// A changelog's key: the output columns that name a row (its GROUP
    /// BY), when known; `None` for appended rows.
    pub key: Option<Vec<String>>,
    /// `sluice.emit.interval` when an operator emits on the clock: the
    /// driver then re-announces the watermark this often while live sources
    /// are quiet, so that what waits goes out.
    pub tick: Option<std::time::Duration>,
}

/// A continuous query ready to run: its plan, built.
pub struct Pipeline {
    /// Sources, operators and the sink, built from `query.plan`.
    pub graph: Graph,
    /// The rows that come out (after the change column, with `EMIT CHANGES`).
    pub schema: SchemaRef,
    /// Whether rows are a changelog.
    pub changes: bool,
    /// A changelog's key (see [`StreamQuery::key`]).
    pub key: Option<Vec<String>>,
    /// See [`StreamQuery::tick`].
    pub tick: Option<std::time::Duration>,
}

impl StreamQuery {
    /// Build the query's operators, which count into `metrics`; the
    /// planner's warnings go there too.
    pub fn build(self, metrics: &Arc<StreamMetrics>) -> Result<Pipeline> {
        if let Ok(mut warnings) = metrics.warnings.lock() {
            warnings.extend(self.warnings.iter().cloned());
        }
        Ok(Pipeline {
            graph: self.plan.build(metrics)?,
            schema: self.schema,
            changes: self.changes,
            key: self.key,
            tick: self.tick,
        })
    }
}

/// A planned sub-query: where its rows come out, where its window bounds
/// are, and what its sources are like.
#[derive(Clone)]
struct Planned {
    plan: Arc<StreamPlan>,
    lineage: Option<WindowLineage>,
    sources: Sources,
    /// Its rows are changes (`+I`, `-D`, ...), not only appended rows: what
    /// makes them so (an updating aggregate; an outer join of two streams,
    /// which retracts a padded row when its match comes).
    updating: Option<String>,
}

impl Planned {
    /// The same sources' rows out of another node, with other window bounds.
    fn at(&self, plan: Arc<StreamPlan>, lineage: Option<WindowLineage>) -> Planned {
        Planned {
            plan,
            lineage,
            sources: self.sources.clone(),
            updating: self.updating.clone(),
        }
    }
}

/// What the sources under a sub-query are like.
#[derive(Debug, Clone)]
struct Sources {
    /// Every one ends (a bounded replay).
    bounded: bool,
    /// An unbounded table among them with no watermark: its windows would
    /// never close.
    unwatermarked: Option<String>,
    /// Every one declares a watermark.
    watermarked: bool,
    /// Where late rows go (the first table that says).
    late_path: Option<std::path::PathBuf>,
    /// Their watermark is the wall clock (the query windows by `PROCTIME()`).
    processing_time: bool,
}

impl Sources {
    /// No source yet: what [`Sources::and`] starts from.
    fn none() -> Sources {
        Sources {
            bounded: true,
            unwatermarked: None,
            watermarked: true,
            late_path: None,
            processing_time: false,
        }
    }

    /// Table `table`, as the catalog knows it (`None`: a plain DataFusion
    /// table, bounded and with no watermark).
    fn of_table(table: &str, info: Option<&SourceInfo>) -> Sources {
        let bounded = info.is_none_or(|i| i.boundedness == Boundedness::Bounded);
        let watermarked = info.is_some_and(|i| i.watermark.is_some());
        Sources {
            bounded,
            unwatermarked: (!bounded && !watermarked).then(|| table.to_string()),
            watermarked,
            late_path: info.and_then(|i| i.late_path.clone()),
            processing_time: false,
        }
    }

    /// The sources of two sub-queries together.
    fn and(&self, other: &Sources) -> Sources {
        Sources {
            bounded: self.bounded && other.bounded,
            unwatermarked: self.unwatermarked.clone().or_else(|| other.unwatermarked.clone()),
            watermarked: self.watermarked && other.watermarked,
            late_path: self.late_path.clone().or_else(|| other.late_path.clone()),
            processing_time: self.processing_time || other.processing_time,
        }
    }
}

/// Builds a [`Pipeline`].
pub struct StreamPlanner<'a> {
    state: &'a SessionState,
    catalog: &'a SourceCatalog,
    /// See [`StreamQuery::warnings`].
    warnings: Vec<String>,
    /// `EMIT CHANGES`: windowed aggregates emit early results as a changelog.
    changes: bool,
    /// An operator refused an updating input (see [`StreamPlanner::plan`]).
    refused_updating: bool,
    /// `EMIT ON WINDOW CLOSE` written out: a window over a table with no
    /// watermark, which runs as an updating aggregate, is refused.
    on_window_close: bool,
    /// The stdin table a scan reads, once a scan has (it can be read once).
    stdin_read_by: Option<String>,
    /// How many times the query scans each stdin table: scans of one
    /// scanned more than once share its reader.
    stdin_scans: std::collections::HashMap<String, usize>,
    /// A bounded replay whose updating GROUP BY feeds an operator that takes
    /// appended rows only: GROUP BYs without a window aggregate to the end of
    /// input and emit once, as batch does.
    final_at_end: bool,
    /// Some source is a stream: `PROCTIME()` reads the clock (views' too).
    live_clock: bool,
    /// The query windows by `PROCTIME()`: every source's watermark is the
    /// wall clock (see [`crate::plan::proctime`]).
    processing_time: bool,
    /// An operator emits on the clock (see [`Pipeline::tick`]).
    tick: Option<std::time::Duration>,
    /// The lowered inputs the rule at work has read (see
    /// [`StreamPlanner::lowered`]).
    used: Vec<LogicalPlan>,
}

impl<'a> StreamPlanner<'a> {
    /// A planner over a session analyzed without batch's window lowering.
    pub fn new(state: &'a SessionState, catalog: &'a SourceCatalog) -> Self {
        Self {
            state,
            catalog,
            warnings: Vec::new(),
            changes: false,
            on_window_close: false,
            refused_updating: false,
            stdin_read_by: None,
            stdin_scans: Default::default(),
            final_at_end: false,
            live_clock: false,
            processing_time: false,
            tick: None,
            used: Vec::new(),
        }
    }

    /// Over a stream (`live`), `PROCTIME()` reads the clock, and a query that
    /// windows by it runs on processing time. One clock drives a query's
    /// windows, so windows by processing time and by event time in one query
    /// are refused.
    pub fn with_live_clock(mut self, live: bool, plan: &LogicalPlan) -> Result<Self> {
        self.live_clock = live;
        if !live {
            return Ok(self);
        }
        let clocks = crate::plan::proctime::window_clocks(plan);
        let processing = clocks.iter().find(|(_, p)| *p);
        let event = clocks.iter().find(|(_, p)| !*p);
        if let (Some((proc_column, _)), Some((event_column, _))) = (processing, event) {
            return plan_err!(
                "this query windows by processing time ({proc_column}, a PROCTIME() column) and by event time ({event_column}): one clock drives a continuous query's windows; window both by the same column"
            );
        }
        self.processing_time = processing.is_some();
        Ok(self)
    }

    /// Plan for `EMIT CHANGES` (or `EMIT ON WINDOW CLOSE`, the default).
    pub fn with_emit(mut self, emit: Option<Emit>) -> Self {
        self.changes = emit == Some(Emit::Changes);
        self.on_window_close = emit == Some(Emit::OnWindowClose);
        self
    }

    /// Whether `plan` reads an unbounded table with no watermark (looking
    /// into views), so that its windows never close.
    fn reads_unwatermarked(&self, plan: &LogicalPlan) -> bool {
        if self.processing_time {
            return false; // the clock is every source's watermark
        }
        self.reads_table(plan, &|info| Sources::of_table("", info).unwatermarked.is_some())
    }

    /// Whether `plan` reads a changelog table (looking into views).
    fn reads_changelog(&self, plan: &LogicalPlan) -> bool {
        self.reads_table(plan, &|info| info.is_some_and(|i| i.changelog))
    }

    /// Whether `plan` reads a table (looking into views) that `is` holds for,
    /// given what the catalog knows of it.
    fn reads_table(&self, plan: &LogicalPlan, is: &dyn Fn(Option<&SourceInfo>) -> bool) -> bool {
        let mut found = false;
        self.visit_tables(plan, &mut |_, info| {
            found = is(info);
            !found
        });
        found
    }

    /// Call `visit` with each table `plan` scans (subqueries and views looked
    /// into), by name, with what the catalog knows of it (`None`: a plain
    /// DataFusion table); it returns whether to go on. Whether the walk went
    /// through.
    pub(super) fn visit_tables(
        &self,
        plan: &LogicalPlan,
        visit: &mut dyn FnMut(&str, Option<&SourceInfo>) -> bool,
    ) -> bool {
        let mut going = true;
        let _ = plan.apply_with_subqueries(|node| {
            if extension::Lowered::of(node).is_some() {
                // A lowered node: the tables its original reads.
                going = self.visit_tables(logical(node), visit);
                return Ok(match going {
                    true => datafusion::common::tree_node::TreeNodeRecursion::Jump,
                    false => datafusion::common::tree_node::TreeNodeRecursion::Stop,
                });
            }
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(provider) = source_as_provider(&scan.source)
            {
                going = match provider.get_logical_plan() {
                    Some(view) => self.visit_tables(&view, visit),
                    None => visit(
                        &scan.table_name.to_string(),
                        self.catalog.source_of(&provider).as_ref(),
                    ),
                };
            }
            Ok(match going {
                true => datafusion::common::tree_node::TreeNodeRecursion::Continue,
                false => datafusion::common::tree_node::TreeNodeRecursion::Stop,
            })
        });
        going
    }

    /// Plan an optimized logical plan. A bounded replay in which an operator
    /// refuses the changelog of a GROUP BY (an ORDER BY or a window function
    /// over its result) is planned again with the GROUP BY aggregated to the
    /// end of input, which emits its rows once, as batch does.
    pub fn plan(mut self, plan: &LogicalPlan) -> Result<StreamQuery> {
        let (state, catalog) = (self.state, self.catalog);
        let (changes, on_window_close) = (self.changes, self.on_window_close);
        match self.plan_once(plan) {
            Err(_)
                if self.refused_updating
                    && crate::plan::choose_executor(plan, catalog)?
                        .sources
                        .iter()
                        .all(|s| s.boundedness == Boundedness::Bounded) =>
            {
                let mut again = StreamPlanner::new(state, catalog);
                again.live_clock = self.live_clock;
                again.processing_time = self.processing_time;
                again.changes = changes;
                again.on_window_close = on_window_close;
                again.final_at_end = true;
                again.plan_once(plan)
            }
            other => other,
        }
    }

    fn plan_once(&mut self, plan: &LogicalPlan) -> Result<StreamQuery> {
        let marked = self.mark_panes(plan.clone())?;
        self.stdin_scans = self.count_stdin_scans(&marked);
        let lowered = self.lower(&marked)?;
        let mut planned = self.finish(&lowered)?;
        if self.on_window_close && planned.updating.is_none() && !holds_for_the_watermark(&planned.plan) {
            planned = self.emit_on_watermark(planned, &marked)?;
        }
        // An updating result goes out as a changelog.
        self.changes |= planned.updating.is_some();
        let schema = plan.schema().as_arrow().clone();
        let schema = if self.changes {
            changelog_schema(&schema)
        } else {
            schema
        };
        Ok(StreamQuery {
            plan: planned.plan.optimized()?,
            warnings: std::mem::take(&mut self.warnings),
            schema: Arc::new(schema),
            changes: self.changes,
            key: self.changes.then(|| result_key::result_key(plan)).flatten(),
            tick: self.tick,
        })
    }

    /// `filter` over its lowered input.
    fn filter(&mut self, filter: &datafusion::logical_expr::Filter) -> Result<Planned> {
        let planned = self.lowered(&filter.input)?;
        let predicate = self.physical(&filter.predicate, filter.input.schema())?;
        Ok(self.then(&planned, StreamNode::Filter { predicate }, planned.lineage))
    }

    /// A LIMIT (and OFFSET), which must be constants.
    fn constant_limit(&mut self, limit: &datafusion::logical_expr::Limit) -> Result<Planned> {
        let (SkipType::Literal(skip), FetchType::Literal(fetch)) =
            (limit.get_skip_type()?, limit.get_fetch_type()?)
        else {
            return plan_err!("LIMIT and OFFSET must be constants in a continuous query");
        };
        self.limit(limit, (skip, fetch))
    }

    /// Say `warning` on stderr when the query starts, and in EXPLAIN.
    fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// Refuse an operator that takes appended rows only over `input` if its
    /// rows are changes; the refusal is noted, so that a bounded replay is
    /// planned again with its GROUP BYs aggregated to the end of input.
    fn appended_only(&mut self, input: &Planned, operator: &str) -> Result<()> {
        if let Some(updating) = &input.updating {
            self.refused_updating = true;
            return not_impl_err!(
                "{operator} over an updating input ({updating}) is not supported yet: window the aggregate (TUMBLE, HOP, ...), make the join inner, or bound it by time or window"
            );
        }
        Ok(())
    }

    /// `node` after `input`'s rows, with window bounds `lineage`.
    fn then(&mut self, input: &Planned, node: StreamNode, lineage: Option<WindowLineage>) -> Planned {
        input.at(StreamPlan::over(node, vec![Arc::clone(&input.plan)]), lineage)
    }

    /// `projection` over `planned`'s rows.
    fn project(
        &mut self,
        planned: &Planned,
        projection: &datafusion::logical_expr::Projection,
    ) -> Result<Planned> {
        let input = projection.input.schema();
        let exprs = projection
            .expr
            .iter()
            .map(|e| self.physical(e, input))
            .collect::<Result<Vec<_>>>()?;
        let schema = Arc::new(projection.schema.as_arrow().clone());
        let lineage = planned.lineage.and_then(|l| l.through(&projection.expr, input));
        Ok(self.then(planned, StreamNode::Projection { exprs, schema }, lineage))
    }

    /// `SET 'sluice.emit.interval'`, if set; planning an operator that
    /// uses it makes the driver tick.
    fn emit_interval(&mut self) -> Option<std::time::Duration> {
        let every = self
            .state
            .config()
            .get_extension::<EmitInterval>()
            .map(|e| e.0)
            .filter(|e| !e.is_zero());
        self.tick = self.tick.or(every);
        every
    }

    /// `SET 'state.ttl'`, if set.
    fn state_ttl(&self) -> Option<i64> {
        self.state
            .config_options()
            .extensions
            .get::<super::state_options::StateOptions>()
            .and_then(|o| o.ttl)
    }

    fn physical(&self, expr: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        self.state.create_physical_expr(expr.clone(), schema)
    }

    fn scan(
        &mut self,
        table: String,
        provider: Arc<dyn TableProvider>,
        scan: &datafusion::logical_expr::TableScan,
    ) -> Result<Planned> {
        if let Some(view) = provider.get_logical_plan() {
            // A view: plan its query in place, then take the columns and
            // filters the scan asked of it.
            let view = match self.live_clock {
                true => crate::plan::proctime::live_proctime(view.into_owned())?,
                false => view.into_owned(),
            };
            let view = self.mark_panes(self.state.optimize(&view)?)?;
            let view = self.lower(&view)?;
            let mut planned = self.lowered(&view)?;
            let view_schema = view.schema();
            for filter in &scan.filters {
                let predicate = self.physical(filter, view_schema)?;
                planned = self.then(&planned, StreamNode::Filter { predicate }, planned.lineage);
            }
            let columns: Vec<usize> = scan
                .projection
                .clone()
                .unwrap_or_else(|| (0..view_schema.fields().len()).collect());
            let exprs = columns
                .iter()
                .map(|&i| {
                    let (qualifier, field) = view_schema.qualified_field(i);
                    self.physical(
                        &Expr::Column(datafusion::common::Column::new(qualifier.cloned(), field.name())),
                        view_schema,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let schema = Arc::new(scan.projected_schema.as_arrow().clone());
            let lineage = planned.lineage.and_then(|l| l.select(&columns));
            return Ok(self.then(&planned, StreamNode::Projection { exprs, schema }, lineage));
        }
        let info = self.catalog.source_of(&provider);
        let shared = info.as_ref().is_some_and(|i| i.connector == "stdin")
            && self.stdin_scans.get(&table).is_some_and(|&n| n > 1);
        if info.as_ref().is_some_and(|i| i.connector == "stdin") {
            // Two readers of one stdin would each get some of its lines;
            // scans of one table share its reader.
            if let Some(first) = self.stdin_read_by.replace(table.clone())
                && !(shared && first == table)
            {
                let what = match first == table {
                    true => format!("table '{table}' twice"),
                    false => format!("it twice (tables '{first}' and '{table}')"),
                };
                return not_impl_err!(
                    "stdin is read once per query, and this query reads {what}: the two scans would split its lines between them. Read it once, or write stdin to a file and follow it ('follow' = 'true')"
                );
            }
        }
        let mut sources = Sources::of_table(&table, info.as_ref());
        if self.processing_time {
            sources.watermarked = true;
            sources.unwatermarked = None;
            sources.processing_time = true;
        }
        let bounded = sources.bounded;
        let updating = info
            .as_ref()
            .filter(|i| i.changelog)
            .map(|i| format!("table '{table}', a changelog ({})", i.description));
        // Idleness is wall-clock time: a bounded replay never depends on it.
        let idle_timeout = info.as_ref().and_then(|i| i.idle_timeout).filter(|_| !bounded);
        let watermark = info.and_then(|i| i.watermark).map(|w| w.expr);
        let spec = SourceSpec {
            table,
            provider,
            projection: scan.projection.clone(),
            filters: scan.filters.clone(),
            fetch: scan.fetch,
            watermark,
            bounded,
            processing_time: self.processing_time,
            idle_timeout,
            shared,
        };
        let plan = match shared {
            true => self.shared_scan(spec, scan)?,
            false => StreamPlan::source(spec),
        };
        Ok(Planned {
            plan,
            lineage: None,
            sources,
            updating,
        })
    }
}

impl StreamPlanner<'_> {
    /// One scan of a shared table (see [`SourceSpec::shared`]): the shared
    /// source, read whole, then this scan's filters and columns.
    fn shared_scan(
        &self,
        spec: SourceSpec,
        scan: &datafusion::logical_expr::TableScan,
    ) -> Result<Arc<StreamPlan>> {
        let table_schema = spec.provider.schema();
        let whole = DFSchema::try_from_qualified_schema(scan.table_name.clone(), &table_schema)?;
        let mut plan = StreamPlan::source(SourceSpec {
            projection: None,
            filters: Vec::new(),
            fetch: None,
            ..spec
        });
        for filter in &scan.filters {
            let predicate = self.physical(filter, &whole)?;
            plan = StreamPlan::over(StreamNode::Filter { predicate }, vec![plan]);
        }
        let columns = scan
            .projection
            .clone()
            .unwrap_or_else(|| (0..table_schema.fields().len()).collect());
        let exprs = columns
            .iter()
            .map(|&i| {
                let column =
                    datafusion::physical_expr::expressions::Column::new(table_schema.field(i).name(), i);
                Arc::new(column) as Arc<dyn PhysicalExpr>
            })
            .collect();
        let schema = Arc::new(scan.projected_schema.as_arrow().clone());
        Ok(StreamPlan::over(
            StreamNode::Projection { exprs, schema },
            vec![plan],
        ))
    }

    /// How many times `plan` scans each stdin table, views included.
    fn count_stdin_scans(&self, plan: &LogicalPlan) -> std::collections::HashMap<String, usize> {
        let mut scans = std::collections::HashMap::new();
        self.visit_tables(plan, &mut |table, info| {
            if info.is_some_and(|i| i.connector == "stdin") {
                *scans.entry(table.to_string()).or_default() += 1;
            }
            true
        });
        scans
    }
}

impl StreamPlanner<'_> {
    /// `EMIT ON WINDOW CLOSE` of a query with no window (nor any operator
    /// that emits as the watermark passes): each result row is held until
    /// the watermark passes its event time, as RisingWave does; the result
    /// must carry a watermarked table's event-time column.
    fn emit_on_watermark(&self, planned: Planned, plan: &LogicalPlan) -> Result<Planned> {
        let mut columns = Vec::new();
        self.visit_tables(plan, &mut |_, info| {
            columns.extend(info.and_then(|i| i.watermark.as_ref()).map(|w| w.column.clone()));
            true
        });
        let schema = plan.schema().as_arrow();
        let time = schema.fields().iter().position(|f| {
            columns.iter().any(|c| c.eq_ignore_ascii_case(f.name()))
                && matches!(f.data_type(), DataType::Timestamp(..))
        });
        let Some(time) = time else {
            return plan_err!(
                "EMIT ON WINDOW CLOSE over a query with no window holds each row until the watermark passes its event time, so the result must have the event-time column{}: select it, or drop EMIT ON WINDOW CLOSE",
                match columns.is_empty() {
                    true => " (and no table it reads declares a WATERMARK)".to_string(),
                    false => format!(" ({})", columns.join(", ")),
                }
            );
        };
        let node = StreamNode::EmitOnWatermark {
            time: Arc::new(datafusion::physical_expr::expressions::Column::new(
                schema.field(time).name(),
                time,
            )),
            schema: Arc::new(schema.clone()),
            late: planned.sources.late_path.clone(),
        };
        Ok(planned.at(
            StreamPlan::over(node, vec![Arc::clone(&planned.plan)]),
            planned.lineage,
        ))
    }
}

/// Whether some operator of `plan` emits as the watermark passes (a
/// window's close, a row's time), so that `EMIT ON WINDOW CLOSE` holds
/// already.
fn holds_for_the_watermark(plan: &StreamPlan) -> bool {
    let holds = match &plan.node {
        StreamNode::WindowAggregate { emit_changes, .. } => !emit_changes,
        StreamNode::UpdatingAggregate(node) => node.windows.as_ref().is_some_and(|w| !w.emit_changes),
        StreamNode::SessionAggregate { .. }
        | StreamNode::WindowJoin { .. }
        | StreamNode::WindowTopN { .. }
        | StreamNode::OverAggregate { .. }
        | StreamNode::Dedup { .. }
        | StreamNode::EmitOnWatermark { .. } => true,
        _ => false,
    };
    holds || plan.inputs.iter().any(|input| holds_for_the_watermark(input))
}

/// The error for a node with no incremental operator.
fn refuse(node: &LogicalPlan) -> Result<Planned> {
    let why = match node {
        LogicalPlan::Distinct(_) => {
            "DISTINCT on an unbounded source needs an updating operator, not supported yet"
        }
        LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
            "a constant table cannot be a continuous query's source"
        }
        _ => "this operation has no incremental operator yet",
    };
    not_impl_err!(
        "{} ({}) in a continuous query: {why}",
        node.display(),
        node_kind(node)
    )
}

fn node_kind(node: &LogicalPlan) -> &'static str {
    match node {
        LogicalPlan::Distinct(_) => "Distinct",
        LogicalPlan::Union(_) => "Union",
        LogicalPlan::Values(_) => "Values",
        LogicalPlan::Unnest(_) => "Unnest",
        LogicalPlan::RecursiveQuery(_) => "RecursiveQuery",
        _ => "plan node",
    }
}

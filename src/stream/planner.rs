//! The stream planner: an optimized DataFusion `LogicalPlan` mapped node by
//! node to incremental operators.
//!
//! Plans are linear for now: one source, then a chain of operators. A node
//! with no incremental operator gets an error naming it and why; nothing
//! falls back to batch silently.
//!
//! Windows: a `Window` node (see [`crate::plan::WindowTvf`]) is planned
//! through its relational lowering, so window bounds are computed by the very
//! expressions batch uses. Under a windowed aggregate, HOP and CUMULATE are
//! lowered as a TUMBLE of one slide (step) instead: rows get their *pane*, and
//! the aggregate makes windows out of panes, never copying a row.

use std::sync::Arc;

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
use futures::future::BoxFuture;

use super::graph::{Graph, GraphBuilder, Tail};
use super::groups::Aggregates;
use super::late::LateRows;
use super::operator::MILLISECOND;
use super::operator::Operator;
use super::operators::final_aggregate::FinalAggregateOperator;
use super::operators::lookup_join::LookupJoinOperator;
use super::operators::session_aggregate::{SessionAggregateOperator, SessionAggregateSpec};
use super::operators::sort::SortPerWatermarkOperator;
use super::operators::stateless::{FilterOperator, LimitOperator, ProjectionOperator, RenameOperator};
use super::operators::union::UnionOperator;
use super::operators::window_aggregate::{
    GroupColumn, PaneColumns, Panes, WindowAggregateOperator, WindowAggregateSpec, WindowColumn,
};
use super::operators::window_functions::WindowFunctionOperator;
use super::source::SourceSpec;
use super::{StreamMetrics, changelog_schema};
use crate::connectors::Boundedness;
use crate::plan::windows::{WINDOW_END, WINDOW_START, WINDOW_TIME, WindowKind, duration};
use crate::plan::{SourceCatalog, WindowTvf};
use crate::sql::Emit;

/// A planned continuous query: its operator graph.
pub struct Pipeline {
    /// Sources, operators and the sink.
    pub graph: Graph,
    /// The rows that come out (after the change column, with `EMIT CHANGES`).
    pub schema: SchemaRef,
    /// Whether rows are a changelog (`EMIT CHANGES`).
    pub changes: bool,
}

/// Where a window's bounds are in a node's output.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WindowLineage {
    kind: WindowKind,
    /// The bound columns hold panes (one slide or step), not windows.
    panes: bool,
    /// A window's rows come together, when it closes (a windowed aggregate's
    /// output), rather than as they arrive (a window TVF's rows).
    complete: bool,
    start: Option<usize>,
    end: Option<usize>,
    time: Option<usize>,
}

impl WindowLineage {
    fn role(&self, index: usize) -> Option<WindowColumn> {
        if self.start == Some(index) {
            Some(WindowColumn::Start)
        } else if self.end == Some(index) {
            Some(WindowColumn::End)
        } else if self.time == Some(index) {
            Some(WindowColumn::Time)
        } else {
            None
        }
    }

    /// The bounds moved to where `position` says each column of this node
    /// goes (`None`: dropped); `None` when no bound is left.
    fn remap(&self, position: impl Fn(usize) -> Option<usize>) -> Option<WindowLineage> {
        let out = WindowLineage {
            start: self.start.and_then(&position),
            end: self.end.and_then(&position),
            time: self.time.and_then(&position),
            ..*self
        };
        (out.start.is_some() || out.end.is_some() || out.time.is_some()).then_some(out)
    }

    /// The bounds among `columns` (indices of this node's output), renumbered.
    fn select(&self, columns: &[usize]) -> Option<WindowLineage> {
        self.remap(|bound| columns.iter().position(|&c| c == bound))
    }

    /// Follow the bounds through a projection's expressions: a bound passes
    /// where an expression is the bare column (or an alias of it).
    fn through(&self, exprs: &[Expr], input: &DFSchema) -> Option<WindowLineage> {
        self.remap(|bound| {
            exprs.iter().position(|expr| match strip_alias(expr) {
                Expr::Column(column) => input.index_of_column(column).ok() == Some(bound),
                _ => false,
            })
        })
    }
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
}

/// A planned sub-query: where its rows come out, where its window bounds
/// are, and what its sources are like.
#[derive(Debug, Clone)]
struct Planned {
    tail: Tail,
    lineage: Option<WindowLineage>,
    sources: Sources,
}

impl Planned {
    /// The same rows out of another tail, with other window bounds.
    fn at(&self, tail: Tail, lineage: Option<WindowLineage>) -> Planned {
        Planned {
            tail,
            lineage,
            sources: self.sources.clone(),
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
}

impl Sources {
    /// The sources of two sub-queries together.
    fn and(&self, other: &Sources) -> Sources {
        Sources {
            bounded: self.bounded && other.bounded,
            unwatermarked: self.unwatermarked.clone().or_else(|| other.unwatermarked.clone()),
            watermarked: self.watermarked && other.watermarked,
            late_path: self.late_path.clone().or_else(|| other.late_path.clone()),
        }
    }
}

/// Builds a [`Pipeline`].
pub struct StreamPlanner<'a> {
    state: &'a SessionState,
    catalog: &'a SourceCatalog,
    metrics: Arc<StreamMetrics>,
    graph: GraphBuilder,
    /// `EMIT CHANGES`: windowed aggregates emit early results as a changelog.
    changes: bool,
}

impl<'a> StreamPlanner<'a> {
    /// A planner over a session analyzed without batch's window lowering.
    pub fn new(state: &'a SessionState, catalog: &'a SourceCatalog, metrics: Arc<StreamMetrics>) -> Self {
        Self {
            state,
            catalog,
            metrics,
            graph: GraphBuilder::default(),
            changes: false,
        }
    }

    /// Plan for `EMIT CHANGES` (or `EMIT ON WINDOW CLOSE`, the default).
    pub fn with_emit(mut self, emit: Option<Emit>) -> Self {
        self.changes = emit == Some(Emit::Changes);
        self
    }

    /// Plan an optimized logical plan.
    pub async fn plan(mut self, plan: &LogicalPlan) -> Result<Pipeline> {
        let planned = self.node(plan, false).await?;
        let schema = plan.schema().as_arrow().clone();
        let schema = if self.changes {
            changelog_schema(&schema)
        } else {
            schema
        };
        Ok(Pipeline {
            graph: self.graph.finish(planned.tail)?,
            schema: Arc::new(schema),
            changes: self.changes,
        })
    }

    fn node<'b>(&'b mut self, node: &'b LogicalPlan, panes: bool) -> BoxFuture<'b, Result<Planned>> {
        Box::pin(async move {
            match node {
                LogicalPlan::TableScan(scan) => {
                    let provider = source_as_provider(&scan.source)?;
                    self.scan(scan.table_name.to_string(), provider, scan).await
                }
                LogicalPlan::Projection(projection) => {
                    let planned = self.node(&projection.input, panes).await?;
                    let input = projection.input.schema();
                    let exprs = projection
                        .expr
                        .iter()
                        .map(|e| self.physical(e, input))
                        .collect::<Result<Vec<_>>>()?;
                    let schema = Arc::new(projection.schema.as_arrow().clone());
                    let lineage = planned.lineage.and_then(|l| l.through(&projection.expr, input));
                    Ok(self.then(
                        &planned,
                        Box::new(ProjectionOperator::new(exprs, schema)),
                        lineage,
                    ))
                }
                LogicalPlan::Filter(filter) => {
                    let planned = self.node(&filter.input, panes).await?;
                    let predicate = self.physical(&filter.predicate, filter.input.schema())?;
                    Ok(self.then(
                        &planned,
                        Box::new(FilterOperator::new(predicate)),
                        planned.lineage,
                    ))
                }
                LogicalPlan::SubqueryAlias(alias) => {
                    let planned = self.node(&alias.input, panes).await?;
                    let rename = RenameOperator::new(Arc::new(alias.schema.as_arrow().clone()));
                    Ok(self.then(&planned, Box::new(rename), planned.lineage))
                }
                LogicalPlan::Limit(limit) => {
                    let planned = self.node(&limit.input, panes).await?;
                    let (SkipType::Literal(skip), FetchType::Literal(fetch)) =
                        (limit.get_skip_type()?, limit.get_fetch_type()?)
                    else {
                        return plan_err!("LIMIT and OFFSET must be constants in a continuous query");
                    };
                    Ok(self.then(
                        &planned,
                        Box::new(LimitOperator::new(skip, fetch)),
                        planned.lineage,
                    ))
                }
                LogicalPlan::Join(join) => self.join(join).await,
                LogicalPlan::Union(union) => self.union(union).await,
                LogicalPlan::Aggregate(aggregate) => self.aggregate(aggregate).await,
                LogicalPlan::Sort(sort) => self.sort(sort).await,
                LogicalPlan::Window(window) => self.window_functions(window).await,
                other => match WindowTvf::from_plan(other) {
                    Some(window) => self.window(window, panes).await,
                    None => refuse(other),
                },
            }
        })
    }

    /// `operator` after `input`'s rows, with window bounds `lineage`.
    fn then(
        &mut self,
        input: &Planned,
        operator: Box<dyn Operator>,
        lineage: Option<WindowLineage>,
    ) -> Planned {
        let tail = self.graph.chain(input.tail, operator);
        input.at(tail, lineage)
    }

    fn physical(&self, expr: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        self.state.create_physical_expr(expr.clone(), schema)
    }

    async fn scan(
        &mut self,
        table: String,
        provider: Arc<dyn TableProvider>,
        scan: &datafusion::logical_expr::TableScan,
    ) -> Result<Planned> {
        if let Some(view) = provider.get_logical_plan() {
            // A view: plan its query in place, then take the columns and
            // filters the scan asked of it.
            let view = self.state.optimize(&view)?;
            let mut planned = self.node(&view, false).await?;
            let view_schema = view.schema();
            for filter in &scan.filters {
                let predicate = self.physical(filter, view_schema)?;
                planned = self.then(
                    &planned,
                    Box::new(FilterOperator::new(predicate)),
                    planned.lineage,
                );
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
            return Ok(self.then(
                &planned,
                Box::new(ProjectionOperator::new(exprs, schema)),
                lineage,
            ));
        }
        let info = self.catalog.source_of(&provider);
        let bounded = info
            .as_ref()
            .is_none_or(|i| i.boundedness == Boundedness::Bounded);
        let watermark = info.as_ref().and_then(|i| i.watermark.clone()).map(|w| w.expr);
        let sources = Sources {
            bounded,
            unwatermarked: (!bounded && watermark.is_none()).then(|| table.clone()),
            watermarked: watermark.is_some(),
            late_path: info.as_ref().and_then(|i| i.late_path.clone()),
        };
        let tail = self.graph.source(SourceSpec {
            table,
            provider,
            projection: scan.projection.clone(),
            filters: scan.filters.clone(),
            fetch: scan.fetch,
            watermark,
            bounded,
        });
        Ok(Planned {
            tail,
            lineage: None,
            sources,
        })
    }

    /// A window TVF: its lowering (or, for panes, a TUMBLE of one pane).
    async fn window(&mut self, window: &WindowTvf, panes: bool) -> Result<Planned> {
        let lowered = match window.kind {
            WindowKind::Hop { slide, offset, .. } if panes => {
                retyped(window, WindowKind::Tumble { size: slide, offset })?.lower()?
            }
            WindowKind::Cumulate { step, offset, .. } if panes => {
                retyped(window, WindowKind::Tumble { size: step, offset })?.lower()?
            }
            WindowKind::Session { gap } if panes => session_intervals(window, gap)?,
            WindowKind::Session { .. } => {
                return not_impl_err!(
                    "SESSION windows run in continuous mode only under an aggregate (GROUP BY window_start, window_end, ...): a row's session is not known until the session closes"
                );
            }
            _ => window.lower()?,
        };
        let lowered = TypeCoercion::new().analyze(lowered, self.state.config_options())?;
        let planned = self.node(&lowered, false).await?;
        let width = window.input_width();
        let lineage = WindowLineage {
            kind: window.kind,
            panes,
            complete: false,
            start: Some(width),
            end: Some(width + 1),
            time: Some(width + 2),
        };
        Ok(planned.at(planned.tail, Some(lineage)))
    }

    /// A join: of two streams (both sides stream), or of a stream with a
    /// bounded table (a lookup). A side is a lookup table when it is bounded
    /// and the other is not; in a bounded replay, when it has no watermark
    /// while the other has one, or reads no table at all (HOP's shifts).
    async fn join(&mut self, join: &datafusion::logical_expr::Join) -> Result<Planned> {
        use datafusion::common::JoinType;
        let (left, right) = (self.sources_of(&join.left), self.sources_of(&join.right));
        let lookup_side = match (left.bounded, right.bounded) {
            (false, false) => None,
            (false, true) => Some(false),
            (true, false) => Some(true),
            // A bounded replay.
            (true, true) => match (reads_table(&join.left), reads_table(&join.right)) {
                (true, false) => Some(false),
                (false, true) => Some(true),
                // Until two streams can meet, a replay looks the side its
                // join does not keep up.
                _ => Some(matches!(
                    join.join_type,
                    JoinType::Right | JoinType::RightSemi | JoinType::RightAnti
                )),
            },
        };
        match lookup_side {
            // `Some(true)`: the left side is the table.
            Some(table_is_left) => self.lookup_join(join, !table_is_left).await,
            None => self.stream_join(join).await,
        }
    }

    /// A join of two streams.
    async fn stream_join(&mut self, join: &datafusion::logical_expr::Join) -> Result<Planned> {
        not_impl_err!(
            "a {} join of two unbounded sources is not supported yet; a stream joins bounded tables (a lookup)",
            join.join_type
        )
    }

    /// A join of the stream with a bounded table: the stream's side streams;
    /// the other is read once, in batch, and looked up.
    async fn lookup_join(
        &mut self,
        join: &datafusion::logical_expr::Join,
        stream_is_left: bool,
    ) -> Result<Planned> {
        let (stream_side, table_side) = if stream_is_left {
            (&join.left, &join.right)
        } else {
            (&join.right, &join.left)
        };
        // The table side is plain batch: lower its windows as batch does.
        let table_plan =
            crate::plan::LowerWindows.analyze(table_side.as_ref().clone(), self.state.config_options())?;
        let physical = self.state.create_physical_plan(&table_plan).await?;
        let batches = datafusion::physical_plan::collect(physical, self.state.task_ctx()).await?;
        let table =
            arrow::compute::concat_batches(&Arc::new(table_side.schema().as_arrow().clone()), &batches)?;
        let stream = self.node(stream_side, false).await?;
        let (stream_keys, table_keys): (Vec<&Expr>, Vec<&Expr>) = join
            .on
            .iter()
            .map(|(l, r)| if stream_is_left { (l, r) } else { (r, l) })
            .unzip();
        let stream_keys = stream_keys
            .into_iter()
            .map(|k| self.physical(k, stream_side.schema()))
            .collect::<Result<Vec<_>>>()?;
        let table_keys = table_keys
            .into_iter()
            .map(|k| self.physical(k, table_side.schema()))
            .collect::<Result<Vec<_>>>()?;
        let pairs_schema = join.left.schema().join(join.right.schema())?;
        let filter = join
            .filter
            .as_ref()
            .map(|f| self.physical(f, &pairs_schema))
            .transpose()?;
        let operator = LookupJoinOperator::try_new(
            join.join_type,
            stream_is_left,
            stream_keys,
            table,
            table_keys,
            filter,
            Arc::new(pairs_schema.as_arrow().clone()),
            Arc::new(join.schema.as_arrow().clone()),
        )?;
        // The stream's window bounds move right by the table's width when the
        // table's columns come first.
        let offset = if stream_is_left {
            0
        } else {
            table_side.schema().fields().len()
        };
        let lineage = stream.lineage.and_then(|l| l.remap(|i| Some(i + offset)));
        Ok(self.then(&stream, Box::new(operator), lineage))
    }

    /// `UNION ALL` of streams (or of streams and tables): every input streams.
    async fn union(&mut self, union: &datafusion::logical_expr::Union) -> Result<Planned> {
        let mut inputs = Vec::with_capacity(union.inputs.len());
        for input in &union.inputs {
            inputs.push(self.node(input, false).await?);
        }
        let Some(first) = inputs.first() else {
            return plan_err!("a UNION with no inputs");
        };
        let sources = inputs
            .iter()
            .skip(1)
            .fold(first.sources.clone(), |all, i| all.and(&i.sources));
        let schema = Arc::new(union.schema.as_arrow().clone());
        let operator = UnionOperator::new(inputs.len(), schema);
        let tail = self
            .graph
            .merge(inputs.iter().map(|i| i.tail).collect(), Box::new(operator))?;
        // Window bounds survive a union only where every input has them at
        // the same place, of the same window.
        let lineage = inputs
            .iter()
            .map(|i| i.lineage)
            .reduce(|a, b| match (a, b) {
                (Some(a), Some(b)) if a == b => Some(a),
                _ => None,
            })
            .flatten();
        Ok(Planned {
            tail,
            lineage,
            sources,
        })
    }

    /// What the sources `plan` reads are like, views included (before
    /// planning it: a join chooses its kind by them).
    fn sources_of(&self, plan: &LogicalPlan) -> Sources {
        let mut sources = Sources {
            bounded: true,
            unwatermarked: None,
            watermarked: true,
            late_path: None,
        };
        let _ = plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(provider) = source_as_provider(&scan.source)
            {
                let of_scan = match provider.get_logical_plan() {
                    Some(view) => self.sources_of(&view),
                    None => match self.catalog.source_of(&provider) {
                        Some(info) => Sources {
                            bounded: info.boundedness == Boundedness::Bounded,
                            unwatermarked: None,
                            watermarked: info.watermark.is_some(),
                            late_path: None,
                        },
                        None => Sources {
                            bounded: true,
                            unwatermarked: None,
                            watermarked: false,
                            late_path: None,
                        },
                    },
                };
                sources = sources.and(&of_scan);
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
        sources
    }

    async fn aggregate(&mut self, aggregate: &datafusion::logical_expr::Aggregate) -> Result<Planned> {
        let window = window_below(&aggregate.input);
        // Panes and sessions only when the aggregate groups by the window's
        // bounds: otherwise it needs every copy of a row (count(*) over HOP).
        let by_window = aggregate.group_expr.iter().any(|e| {
            matches!(e, Expr::Column(c) if [WINDOW_START, WINDOW_END, WINDOW_TIME].contains(&c.name.as_str()))
        });
        let panes = by_window
            && window.is_some_and(|w| match w.kind {
                WindowKind::Tumble { .. } => false,
                WindowKind::Session { .. } => true,
                // EMIT CHANGES shows each window as it grows: rows are copied
                // into their windows rather than aggregated per pane.
                _ => !self.changes,
            });
        let planned = self.node(&aggregate.input, panes).await?;
        let input = aggregate.input.schema();
        let grouped = |lineage: &WindowLineage| {
            aggregate.group_expr.iter().any(|e| match e {
                Expr::Column(c) => input
                    .index_of_column(c)
                    .ok()
                    .and_then(|i| lineage.role(i))
                    .is_some(),
                _ => false,
            })
        };
        let Some(lineage) = planned.lineage.filter(grouped) else {
            return self.final_aggregate(aggregate, &planned);
        };
        if let Some(table) = &planned.sources.unwatermarked {
            return plan_err!(
                "table '{table}' has no watermark, so its windows would never close: declare one, as in WATERMARK FOR ts AS ts - INTERVAL '5' SECOND"
            );
        }
        let mut group_columns = Vec::new();
        let mut keys = Vec::new();
        for expr in &aggregate.group_expr {
            let role = match expr {
                Expr::Column(c) => input.index_of_column(c).ok().and_then(|i| lineage.role(i)),
                _ => None,
            };
            match role {
                Some(role) => group_columns.push(GroupColumn::Window(role)),
                None => {
                    group_columns.push(GroupColumn::Key(keys.len()));
                    keys.push(self.physical(expr, input)?);
                }
            }
        }
        let aggregates = self.aggregate_exprs(aggregate)?;
        let (panes_spec, length) = match (lineage.panes, lineage.kind) {
            (true, WindowKind::Hop { slide, size, .. }) => (Panes::Hop { slide, size }, Some(slide)),
            (true, WindowKind::Cumulate { step, size, offset }) => {
                (Panes::Cumulate { step, size, offset }, Some(step))
            }
            (_, WindowKind::Tumble { size, .. } | WindowKind::Hop { size, .. }) => {
                (Panes::Windows, Some(size))
            }
            (_, _) => (Panes::Windows, None),
        };
        if lineage.end.is_none() && lineage.time.is_none() && length.is_none() {
            return plan_err!(
                "a CUMULATE aggregate must GROUP BY window_end (window_start alone names several windows)"
            );
        }
        let key_fields = group_columns
            .iter()
            .zip(aggregate.schema.fields())
            .filter(|(c, _)| matches!(c, GroupColumn::Key(_)))
            .map(|(_, f)| Arc::clone(f))
            .collect();
        let aggregates = Aggregates::try_new(keys, key_fields, aggregates)?;
        if let WindowKind::Session { gap } = lineage.kind {
            if self.changes {
                return not_impl_err!(
                    "EMIT CHANGES over SESSION windows is not supported yet; TUMBLE, HOP and CUMULATE emit changes"
                );
            }
            let session = SessionPlan { window, lineage, gap };
            return self.session_aggregate(aggregate, &planned, session, group_columns, aggregates);
        }
        let spec = WindowAggregateSpec {
            panes: panes_spec,
            pane_columns: PaneColumns {
                start: lineage.start,
                end: lineage.end,
                time: lineage.time,
                length,
            },
            group_columns: group_columns.clone(),
            aggregates,
            schema: Arc::new(aggregate.schema.as_arrow().clone()),
        };
        let late = LateRows::new(Arc::clone(&self.metrics), planned.sources.late_path.clone());
        let operator = WindowAggregateOperator::new(spec, late);
        let operator = if self.changes {
            operator.emit_changes()?
        } else {
            operator
        };
        let lineage = output_lineage(lineage.kind, &group_columns);
        Ok(self.then(&planned, Box::new(operator), Some(lineage)))
    }

    /// A GROUP BY without a window: over a bounded replay, aggregated to the
    /// end of input; over an unbounded source, refused.
    fn final_aggregate(
        &mut self,
        aggregate: &datafusion::logical_expr::Aggregate,
        input_plan: &Planned,
    ) -> Result<Planned> {
        if !input_plan.sources.bounded || self.changes {
            return not_impl_err!(
                "GROUP BY without a window on an unbounded source would need an updating aggregate, which is not supported yet: aggregate over TUMBLE/HOP/CUMULATE/SESSION and GROUP BY window_start, window_end"
            );
        }
        if aggregate
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
        {
            return not_impl_err!("GROUPING SETS, ROLLUP and CUBE are not supported in continuous mode yet");
        }
        let input = aggregate.input.schema();
        let keys = aggregate
            .group_expr
            .iter()
            .map(|e| self.physical(e, input))
            .collect::<Result<Vec<_>>>()?;
        let key_fields = aggregate
            .schema
            .fields()
            .iter()
            .take(keys.len())
            .cloned()
            .collect();
        let group_columns = (0..keys.len()).map(GroupColumn::Key).collect();
        let aggregates = Aggregates::try_new(keys, key_fields, self.aggregate_exprs(aggregate)?)?;
        let operator = FinalAggregateOperator::try_new(
            aggregates,
            group_columns,
            Arc::new(aggregate.schema.as_arrow().clone()),
            Arc::new(input.as_arrow().clone()),
        )?;
        Ok(self.then(input_plan, Box::new(operator), None))
    }

    /// The aggregate functions of an Aggregate node, physical.
    fn aggregate_exprs(
        &self,
        aggregate: &datafusion::logical_expr::Aggregate,
    ) -> Result<Vec<super::groups::Aggregate>> {
        let input = aggregate.input.schema();
        aggregate
            .aggr_expr
            .iter()
            .map(|e| {
                let lowered = LoweredAggregateBuilder::new(
                    e,
                    input,
                    input.as_arrow(),
                    self.state.execution_props(),
                    &PhysicalPlanningContext::default(),
                )
                .build()?;
                Ok((lowered.aggregate, lowered.filter))
            })
            .collect()
    }

    /// A session aggregate: sessions per PARTITION BY key, which must be
    /// among the GROUP BY keys.
    fn session_aggregate(
        &mut self,
        aggregate: &datafusion::logical_expr::Aggregate,
        input_plan: &Planned,
        session: SessionPlan<'_>,
        group_columns: Vec<GroupColumn>,
        aggregates: Aggregates,
    ) -> Result<Planned> {
        let SessionPlan { window, lineage, gap } = session;
        let Some(start) = lineage.start else {
            return plan_err!("a SESSION aggregate must GROUP BY window_start and window_end");
        };
        let key_names: Vec<String> = aggregate
            .group_expr
            .iter()
            .filter(|e| !is_bound_column(e, &lineage, aggregate.input.schema()))
            .map(|e| match strip_alias(e) {
                Expr::Column(c) => c.name.clone(),
                other => other.schema_name().to_string(),
            })
            .collect();
        let mut session_keys = Vec::new();
        for key in window.map(|w| w.partition_keys.as_slice()).unwrap_or_default() {
            let name = match strip_alias(key) {
                Expr::Column(c) => c.name.clone(),
                other => other.schema_name().to_string(),
            };
            match key_names.iter().position(|k| *k == name) {
                Some(i) => session_keys.push(i),
                None => {
                    return not_impl_err!(
                        "a SESSION aggregate must GROUP BY its PARTITION BY key '{name}' (as Flink requires) in continuous mode"
                    );
                }
            }
        }
        let spec = SessionAggregateSpec {
            gap,
            start,
            group_columns: group_columns.clone(),
            session_keys,
            aggregates,
            schema: Arc::new(aggregate.schema.as_arrow().clone()),
        };
        let late = LateRows::new(Arc::clone(&self.metrics), input_plan.sources.late_path.clone());
        let operator = SessionAggregateOperator::try_new(spec, late)?;
        let lineage = output_lineage(lineage.kind, &group_columns);
        Ok(self.then(input_plan, Box::new(operator), Some(lineage)))
    }

    /// Window functions: per emission when partitioned by a window bound of a
    /// windowed aggregate's output, else at the end of a bounded replay.
    async fn window_functions(&mut self, node: &datafusion::logical_expr::Window) -> Result<Planned> {
        let planned = self.node(&node.input, false).await?;
        let lineage = planned.lineage;
        if self.changes {
            return not_impl_err!("window functions (OVER) with EMIT CHANGES are not supported yet");
        }
        let input = node.input.schema();
        let mut specs = Vec::new();
        for expr in &node.window_expr {
            match strip_alias(expr) {
                Expr::WindowFunction(function) => specs.push((
                    function.params.partition_by.clone(),
                    function.params.order_by.clone(),
                )),
                other => return not_impl_err!("'{other}' is not a window function"),
            }
        }
        if specs.windows(2).any(|w| w[0] != w[1]) {
            return not_impl_err!(
                "window functions with different PARTITION BY or ORDER BY in one query are not supported in continuous mode yet"
            );
        }
        let per_window = lineage.is_some_and(|l| {
            l.complete
                && specs
                    .iter()
                    .all(|(partition_by, _)| partition_by.iter().any(|e| is_bound_column(e, &l, input)))
        });
        if !per_window && !planned.sources.bounded {
            return not_impl_err!(
                "window functions (OVER) on an unbounded source need PARTITION BY window_start or window_end of a windowed aggregate (Top-N per window)"
            );
        }
        let functions = node
            .window_expr
            .iter()
            .map(|e| {
                create_window_expr(
                    e,
                    input,
                    self.state.execution_props(),
                    &PhysicalPlanningContext::default(),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let operator = WindowFunctionOperator::new(
            functions,
            Arc::new(input.as_arrow().clone()),
            Arc::new(node.schema.as_arrow().clone()),
            !per_window,
        );
        Ok(self.then(&planned, Box::new(operator), lineage))
    }

    async fn sort(&mut self, sort: &datafusion::logical_expr::Sort) -> Result<Planned> {
        let planned = self.node(&sort.input, false).await?;
        let lineage = planned.lineage;
        if self.changes {
            return not_impl_err!(
                "ORDER BY with EMIT CHANGES: a changelog has no order to keep; drop the ORDER BY"
            );
        }
        let input = sort.input.schema();
        let leads_with_window = sort.expr.first().is_some_and(|first| match &first.expr {
            Expr::Column(c) => input
                .index_of_column(c)
                .ok()
                .and_then(|i| lineage.and_then(|l| l.role(i)))
                .is_some(),
            _ => false,
        });
        if !leads_with_window && !planned.sources.bounded {
            return not_impl_err!(
                "ORDER BY without a window on an unbounded source: results come window by window, so sort by window_start or window_end first (ORDER BY window_end, ...)"
            );
        }
        let order = sort
            .expr
            .iter()
            .map(|s| {
                Ok(PhysicalSortExpr::new(
                    self.physical(&s.expr, input)?,
                    SortOptions {
                        descending: !s.asc,
                        nulls_first: s.nulls_first,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let schema = Arc::new(sort.input.schema().as_arrow().clone());
        let operator = SortPerWatermarkOperator::new(order, schema, sort.fetch, !leads_with_window);
        Ok(self.then(&planned, Box::new(operator), lineage))
    }
}

/// A SESSION window under an aggregate.
struct SessionPlan<'a> {
    window: Option<&'a WindowTvf>,
    lineage: WindowLineage,
    gap: i64,
}

/// Whether `plan` reads a table (rather than only constants).
fn reads_table(plan: &LogicalPlan) -> bool {
    plan.exists(|n| Ok(matches!(n, LogicalPlan::TableScan(_))))
        .unwrap_or(true)
}

/// The window bounds among an aggregate's output columns.
fn output_lineage(kind: WindowKind, group_columns: &[GroupColumn]) -> WindowLineage {
    let position = |role: WindowColumn| {
        group_columns
            .iter()
            .position(|c| matches!(c, GroupColumn::Window(r) if *r == role))
    };
    WindowLineage {
        kind,
        panes: false,
        complete: true,
        start: position(WindowColumn::Start),
        end: position(WindowColumn::End),
        time: position(WindowColumn::Time),
    }
}

/// Whether `expr` is a bare column holding one of the window's bounds.
fn is_bound_column(expr: &Expr, lineage: &WindowLineage, schema: &DFSchema) -> bool {
    match expr {
        Expr::Column(c) => schema
            .index_of_column(c)
            .ok()
            .and_then(|i| lineage.role(i))
            .is_some(),
        _ => false,
    }
}

/// The same window with another kind (a HOP's panes are a TUMBLE of one slide).
fn retyped(window: &WindowTvf, kind: WindowKind) -> Result<WindowTvf> {
    WindowTvf::try_new(
        Arc::clone(&window.input),
        window.time.clone(),
        kind,
        window.partition_keys.clone(),
    )
}

/// SESSION under an aggregate: each row as its own session `[ts, ts + gap)`
/// in the window's columns; the session aggregate unites overlapping ones.
fn session_intervals(window: &WindowTvf, gap: i64) -> Result<LogicalPlan> {
    let DataType::Timestamp(unit, _) = window.time.get_type(window.input.schema())? else {
        return plan_err!("SESSION needs a timestamp time column");
    };
    let end = window.time.clone() + duration(gap, unit);
    let columns = window.input.schema().columns().into_iter().map(Expr::Column);
    let extra = [
        window.time.clone().alias(WINDOW_START),
        end.clone().alias(WINDOW_END),
        (end - duration(MILLISECOND, unit)).alias(WINDOW_TIME),
    ];
    LogicalPlanBuilder::from(window.input.as_ref().clone())
        .filter(crate::plan::event_time_check(window.time.clone(), unit, gap))?
        .project(columns.chain(extra))?
        .build()
}

/// The window under an aggregate, when only plain projections and filters
/// that leave the window's bounds alone stand between them (then the
/// aggregate may work on panes, or on rows' sessions).
fn window_below(plan: &LogicalPlan) -> Option<&WindowTvf> {
    let is_bound = |name: &str| [WINDOW_START, WINDOW_END, WINDOW_TIME].contains(&name);
    match plan {
        LogicalPlan::Projection(p) => {
            let computes_on_bounds = p.expr.iter().any(|e| {
                !matches!(strip_alias(e), Expr::Column(_))
                    && e.column_refs().iter().any(|c| is_bound(&c.name))
            });
            if computes_on_bounds {
                return None;
            }
            window_below(&p.input)
        }
        LogicalPlan::Filter(f) => {
            if f.predicate.column_refs().iter().any(|c| is_bound(&c.name)) {
                return None;
            }
            window_below(&f.input)
        }
        LogicalPlan::SubqueryAlias(a) => window_below(&a.input),
        other => WindowTvf::from_plan(other),
    }
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

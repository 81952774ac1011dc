//! A `WHERE` between a SESSION window and its aggregate, for the continuous
//! executor.
//!
//! Batch builds sessions from every row of the table argument and filters
//! the window's rows afterwards, as the SQL says. The continuous session
//! aggregate builds sessions as it aggregates, so a filter left between the
//! window and the aggregate would drop rows before they open or bridge a
//! session. This analyzer rule (continuous only) moves the predicate into
//! the aggregate instead: every row still shapes the sessions, only rows that
//! pass are aggregated (`agg(...) FILTER (WHERE p)`), and a session with no
//! row that passes is left out, as batch has no group for it.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, LogicalPlan, LogicalPlanBuilder, Projection, SubqueryAlias, col, lit,
};
use datafusion::optimizer::AnalyzerRule;

use super::WindowTvf;
use super::windows::{WINDOW_END, WINDOW_START, WINDOW_TIME, WindowKind};

/// The hidden count of a session's rows that pass the `WHERE`.
const PASSING_ROWS: &str = "__sluice_session_passing_rows";

/// The hidden column that says whether a row passes the `WHERE`.
const PASSES: &str = "__sluice_session_passes";

/// Continuous analyzer rule: `Aggregate(Filter(p, SESSION window))` (with
/// projections and aliases anywhere between) becomes `Aggregate(agg FILTER
/// (WHERE p), ...)` over the window, keeping only the sessions where some row
/// passes `p`.
#[derive(Debug, Default)]
pub struct SessionWhereIntoAggregate;

impl AnalyzerRule for SessionWhereIntoAggregate {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(rewrite).map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_session_where_into_aggregate"
    }
}

fn rewrite(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Aggregate(aggregate) = &plan else {
        return Ok(Transformed::no(plan));
    };
    let Some((input, true)) = carry(&aggregate.input)? else {
        return Ok(Transformed::no(plan));
    };
    let passes = col(PASSES);
    let aggr_expr = aggregate
        .aggr_expr
        .iter()
        .map(|e| with_filter(e, &passes))
        .chain(std::iter::once(Ok(count_where(&passes))))
        .collect::<Result<Vec<_>>>()?;
    let rewritten = Aggregate::try_new(Arc::new(input), aggregate.group_expr.clone(), aggr_expr)?;
    let columns: Vec<Expr> = aggregate.schema.columns().into_iter().map(Expr::Column).collect();
    let plan = LogicalPlanBuilder::from(LogicalPlan::Aggregate(rewritten))
        .filter(col(PASSING_ROWS).gt(lit(0i64)))?
        .project(columns)?
        .build()?;
    Ok(Transformed::yes(plan))
}

/// The plan between an aggregate and its SESSION window with no filter left
/// in it: each filter's predicate becomes (is ANDed into) the boolean column
/// [`PASSES`], carried up through projections and aliases; the flag says
/// whether there was one. `None` when the chain does not end at a SESSION
/// window, or a filter reads the window's bounds (a row's own interval is not
/// its session's, so such a filter cannot be applied per row).
fn carry(plan: &LogicalPlan) -> Result<Option<(LogicalPlan, bool)>> {
    match plan {
        LogicalPlan::Filter(filter) => {
            let reads_bounds = filter
                .predicate
                .column_refs()
                .iter()
                .any(|c| [WINDOW_START, WINDOW_END, WINDOW_TIME].contains(&c.name.as_str()));
            if reads_bounds {
                return Ok(None);
            }
            let Some((input, passed)) = carry(&filter.input)? else {
                return Ok(None);
            };
            let predicate = if passed {
                col(PASSES).and(filter.predicate.clone())
            } else {
                filter.predicate.clone()
            };
            let columns = input
                .schema()
                .columns()
                .into_iter()
                .filter(|c| c.name != PASSES)
                .map(Expr::Column)
                .chain([predicate.alias(PASSES)]);
            let plan = LogicalPlanBuilder::from(input).project(columns)?.build()?;
            Ok(Some((plan, true)))
        }
        LogicalPlan::Projection(projection) => {
            let Some((input, passed)) = carry(&projection.input)? else {
                return Ok(None);
            };
            let mut exprs = projection.expr.clone();
            if passed {
                exprs.push(col(PASSES));
            }
            let plan = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input))?);
            Ok(Some((plan, passed)))
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let Some((input, passed)) = carry(&alias.input)? else {
                return Ok(None);
            };
            let plan =
                LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(input), alias.alias.clone())?);
            Ok(Some((plan, passed)))
        }
        other if is_session(other) => Ok(Some((other.clone(), false))),
        _ => Ok(None),
    }
}

/// Whether `plan` is a SESSION window.
fn is_session(plan: &LogicalPlan) -> bool {
    WindowTvf::from_plan(plan).is_some_and(|w| matches!(w.kind, WindowKind::Session { .. }))
}

/// `expr` (an aggregate, maybe aliased) aggregating only rows where
/// `predicate` holds, under its old name so the plan above still finds it.
fn with_filter(expr: &Expr, predicate: &Expr) -> Result<Expr> {
    let name = expr.schema_name().to_string();
    let filtered = expr
        .clone()
        .transform_down(|e| match e {
            Expr::AggregateFunction(mut function) => {
                let filter = match function.params.filter.take() {
                    Some(own) => own.as_ref().clone().and(predicate.clone()),
                    None => predicate.clone(),
                };
                function.params.filter = Some(Box::new(filter));
                Ok(Transformed::new(
                    Expr::AggregateFunction(function),
                    true,
                    datafusion::common::tree_node::TreeNodeRecursion::Jump,
                ))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data;
    Ok(match filtered {
        Expr::Alias(alias) => Expr::Alias(alias),
        other => other.alias(name),
    })
}

/// `count(*) FILTER (WHERE predicate)`, named [`PASSING_ROWS`].
fn count_where(predicate: &Expr) -> Expr {
    Expr::AggregateFunction(AggregateFunction::new_udf(
        count_udaf(),
        vec![lit(1i64)],
        false,
        Some(Box::new(predicate.clone())),
        vec![],
        None,
    ))
    .alias(PASSING_ROWS)
}

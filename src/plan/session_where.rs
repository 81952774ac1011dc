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
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, LogicalPlanBuilder, col, lit};
use datafusion::optimizer::AnalyzerRule;

use super::WindowTvf;
use super::windows::WindowKind;

/// The hidden count of a session's rows that pass the `WHERE`.
const PASSING_ROWS: &str = "__sluice_session_passing_rows";

/// Continuous analyzer rule: `Aggregate(Filter(p, SESSION window))` becomes
/// `Aggregate(agg FILTER (WHERE p), ...)` over the window, keeping only the
/// sessions where some row passes `p`.
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
    // Filters keep their input's schema, so predicates of stacked filters
    // all read the columns the aggregate reads.
    let mut predicates = Vec::new();
    let mut below = aggregate.input.as_ref();
    while let LogicalPlan::Filter(filter) = below {
        predicates.push(filter.predicate.clone());
        below = filter.input.as_ref();
    }
    let Some(predicate) = conjunction(predicates) else {
        return Ok(Transformed::no(plan));
    };
    if !is_session(below) {
        return Ok(Transformed::no(plan));
    }
    let aggr_expr = aggregate
        .aggr_expr
        .iter()
        .map(|e| with_filter(e, &predicate))
        .chain(std::iter::once(Ok(count_where(&predicate))))
        .collect::<Result<Vec<_>>>()?;
    let rewritten = Aggregate::try_new(Arc::new(below.clone()), aggregate.group_expr.clone(), aggr_expr)?;
    let columns: Vec<Expr> = aggregate.schema.columns().into_iter().map(Expr::Column).collect();
    let plan = LogicalPlanBuilder::from(LogicalPlan::Aggregate(rewritten))
        .filter(col(PASSING_ROWS).gt(lit(0i64)))?
        .project(columns)?
        .build()?;
    Ok(Transformed::yes(plan))
}

/// Whether `plan` is a SESSION window, seen through aliases.
fn is_session(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => is_session(&alias.input),
        other => WindowTvf::from_plan(other).is_some_and(|w| matches!(w.kind, WindowKind::Session { .. })),
    }
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

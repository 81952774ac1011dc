//! Processing time: `PROCTIME()` and the windows over it, in a continuous
//! query over a stream.
//!
//! In batch (and in a bounded replay, which must give batch's rows) every
//! call of `PROCTIME()` is the query's start time: DataFusion's simplifier
//! folds it, as it folds `now()`. Over a stream that would put every row in
//! one window that never closes, so there the calls are swapped for a
//! volatile `PROCTIME()` that reads the clock ([`live_proctime`]), and a
//! window whose time column is such a call ([`is_processing_time`]) runs on
//! processing time: its sources' watermark is the wall clock.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, LogicalPlan, ScalarUDF};

use super::WindowTvf;
use super::flink_functions::FlinkFunction;

/// `plan` with every folding `PROCTIME()` (in subqueries too) replaced by
/// the live one, which reads the clock for each batch of rows.
pub fn live_proctime(plan: LogicalPlan) -> Result<LogicalPlan> {
    let live = Arc::new(ScalarUDF::from(FlinkFunction::live_proctime()));
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|expr| {
            expr.transform_up(|e| match &e {
                Expr::ScalarFunction(f)
                    if flink(&f.func).is_some_and(|f| f.is_proctime() && !f.is_live()) =>
                {
                    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                        Arc::clone(&live),
                        f.args.clone(),
                    ))))
                }
                _ => Ok(Transformed::no(e)),
            })
        })
    })
    .map(|t| t.data)
}

/// Whether a view's or query's plan reads `PROCTIME()` at all (so that a
/// view's query must be made live too).
pub fn calls_proctime(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        let _ = node.apply_expressions(|e| {
            found |= e
                .exists(|e| Ok(matches!(e, Expr::ScalarFunction(f) if flink(&f.func).is_some_and(FlinkFunction::is_proctime))))
                .unwrap_or(false);
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(stop_if(found))
    });
    found
}

/// Whether window `window`'s time column is a live `PROCTIME()`, looking
/// through projections, aliases, filters, joins and views to where the
/// column is computed.
pub fn is_processing_time(window: &WindowTvf) -> bool {
    match &window.time {
        Expr::Column(column) => window
            .input
            .schema()
            .index_of_column(column)
            .is_ok_and(|i| computes_live_proctime(&window.input, i)),
        other => is_live_call(other),
    }
}

/// Every window TVF under `plan` (into views, made live), by its time
/// column, with whether it runs on processing time.
pub fn window_clocks(plan: &LogicalPlan) -> Vec<(String, bool)> {
    let mut clocks = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let Some(window) = WindowTvf::from_plan(node) {
            clocks.push((window.time.to_string(), is_processing_time(window)));
        }
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(view) = provider.get_logical_plan()
            && let Ok(view) = live_proctime(view.into_owned())
        {
            clocks.extend(window_clocks(&view));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    clocks
}

/// Whether column `index` of `plan`'s output is a live `PROCTIME()`.
fn computes_live_proctime(plan: &LogicalPlan, index: usize) -> bool {
    let through = |input: &LogicalPlan, expr: &Expr| match strip_alias(expr) {
        Expr::Column(c) => input
            .schema()
            .index_of_column(c)
            .is_ok_and(|i| computes_live_proctime(input, i)),
        other => is_live_call(other),
    };
    match plan {
        LogicalPlan::Projection(p) => p.expr.get(index).is_some_and(|e| through(&p.input, e)),
        LogicalPlan::SubqueryAlias(a) => computes_live_proctime(&a.input, index),
        LogicalPlan::Filter(f) => computes_live_proctime(&f.input, index),
        LogicalPlan::Sort(s) => computes_live_proctime(&s.input, index),
        LogicalPlan::Limit(l) => computes_live_proctime(&l.input, index),
        LogicalPlan::Join(j) => {
            let left = j.left.schema().fields().len();
            match index < left {
                true => computes_live_proctime(&j.left, index),
                false => computes_live_proctime(&j.right, index - left),
            }
        }
        LogicalPlan::TableScan(scan) => {
            let Some(view) = source_as_provider(&scan.source)
                .ok()
                .and_then(|p| p.get_logical_plan().map(|view| view.into_owned()))
                .and_then(|view| live_proctime(view).ok())
            else {
                return false;
            };
            let column = match &scan.projection {
                Some(columns) => columns.get(index).copied(),
                None => Some(index),
            };
            column.is_some_and(|c| computes_live_proctime(&view, c))
        }
        other => WindowTvf::from_plan(other)
            .is_some_and(|w| index < w.input_width() && computes_live_proctime(&w.input, index)),
    }
}

fn is_live_call(expr: &Expr) -> bool {
    matches!(strip_alias(expr), Expr::ScalarFunction(f) if flink(&f.func).is_some_and(FlinkFunction::is_live))
}

fn flink(udf: &ScalarUDF) -> Option<&FlinkFunction> {
    udf.inner().downcast_ref::<FlinkFunction>()
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
}

fn stop_if(found: bool) -> TreeNodeRecursion {
    match found {
        true => TreeNodeRecursion::Stop,
        false => TreeNodeRecursion::Continue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn plan(ctx: &SessionContext, sql: &str) -> LogicalPlan {
        ctx.state().create_logical_plan(sql).await.expect("plans")
    }

    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        crate::plan::flink_functions::register_flink_functions(&ctx);
        ctx
    }

    #[tokio::test]
    async fn a_stream_reads_the_clock_and_batch_folds_it() {
        let ctx = context();
        let sql = "SELECT PROCTIME() AS p FROM (VALUES (1)) AS t(x)";
        // Batch: folded to one literal, the query's start time.
        let folded = ctx.state().optimize(&plan(&ctx, sql).await).expect("optimizes");
        assert!(!calls_proctime(&folded), "{folded}");
        // Live: the call stays, and is the volatile one.
        let live = live_proctime(plan(&ctx, sql).await).expect("rewrites");
        let live = ctx.state().optimize(&live).expect("optimizes");
        assert!(calls_proctime(&live), "{live}");
        let LogicalPlan::Projection(p) = &live else {
            panic!("a projection: {live}")
        };
        assert!(is_live_call(&p.expr[0]), "{live}");
    }

    #[tokio::test]
    async fn a_column_is_traced_to_its_proctime_call() {
        let ctx = context();
        let sql =
            "SELECT y, p FROM (SELECT x AS y, PROCTIME() AS p FROM (VALUES (1)) AS t(x)) AS s WHERE y > 0";
        let live = live_proctime(plan(&ctx, sql).await).expect("rewrites");
        assert!(computes_live_proctime(&live, 1), "{live}");
        assert!(!computes_live_proctime(&live, 0), "{live}");
        // The folded one is no processing time.
        assert!(!computes_live_proctime(&plan(&ctx, sql).await, 1));
    }
}

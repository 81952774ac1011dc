//! Scalar subqueries in a continuous query.
//!
//! DataFusion 55 leaves an uncorrelated scalar subquery in the plan for its
//! physical `ScalarSubqueryExec`, which runs it once, to its end, before the
//! query: over a stream it would never end, and the continuous executor has
//! no such node. The continuous session instead has DataFusion rewrite it,
//! as it rewrites correlated ones, into a left join with the subquery's
//! result (`ScalarSubqueryToJoin`), which the stream planner runs as a join
//! of two streams that updates as the subquery's value changes (Nexmark
//! q102's `HAVING COUNT(*) >= (SELECT COUNT(*) / COUNT(DISTINCT auction) FROM
//! bid)`).
//!
//! That join means the same as the subquery only when the subquery returns at
//! most one row: where `ScalarSubqueryExec` fails on a second row, the join
//! would repeat the outer row. So a continuous query's uncorrelated scalar
//! subqueries must be single-row by their shape (an aggregate without GROUP
//! BY, a `LIMIT 1`), and any other is refused before the rewrite.

use datafusion::common::plan_err;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan};

/// Refuse an uncorrelated scalar subquery of `plan` (subqueries and their
/// own subqueries looked into) that may return more than one row.
pub fn check_single_row_subqueries(plan: &LogicalPlan) -> Result<()> {
    let mut refused = None;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarSubquery(subquery) = e
                    && subquery.outer_ref_columns.is_empty()
                    && !at_most_one_row(&subquery.subquery)
                {
                    refused = Some(subquery.subquery.display_indent().to_string());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(match refused {
            Some(_) => TreeNodeRecursion::Stop,
            None => TreeNodeRecursion::Continue,
        })
    })?;
    match refused {
        Some(subquery) => plan_err!(
            "a scalar subquery in a continuous query runs as a join with its result, which means the same only if it returns at most one row, and this one may return more: aggregate it without GROUP BY, or add LIMIT 1 if any one row will do. The subquery:\n{subquery}"
        ),
        None => Ok(()),
    }
}

/// Whether `plan` returns at most one row whatever its input: an aggregate
/// without GROUP BY, a LIMIT of 0 or 1, or what keeps or drops such a row.
fn at_most_one_row(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(aggregate) => aggregate.group_expr.is_empty(),
        LogicalPlan::Limit(limit) => {
            matches!(limit.get_fetch_type(), Ok(datafusion::logical_expr::logical_plan::FetchType::Literal(Some(n))) if n <= 1)
                || at_most_one_row(&limit.input)
        }
        LogicalPlan::Projection(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Subquery(_) => plan.inputs().iter().all(|input| at_most_one_row(input)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn check(sql: &str) -> Result<()> {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE bid (auction BIGINT, price BIGINT) AS VALUES (1, 10), (2, 20)")
            .await?;
        let plan = ctx.state().create_logical_plan(sql).await?;
        check_single_row_subqueries(&plan)
    }

    #[tokio::test]
    async fn single_row_subqueries_pass_and_others_are_refused() {
        for ok in [
            "SELECT * FROM bid WHERE price > (SELECT avg(price) FROM bid)",
            "SELECT * FROM bid WHERE price > (SELECT price FROM bid ORDER BY price LIMIT 1)",
            "SELECT * FROM bid b WHERE price > (SELECT max(price) FROM bid c WHERE c.auction = b.auction)",
        ] {
            check(ok).await.unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let err = check("SELECT * FROM bid WHERE price > (SELECT max(price) FROM bid GROUP BY auction)")
            .await
            .expect_err("may return two rows");
        assert!(err.to_string().contains("at most one row"), "{err}");
    }
}

//! The key of an updating result: which output columns name a row, so that
//! a changed row can replace its old one where it is shown (the shell's live
//! table). It is the GROUP BY of the aggregate that updates the result,
//! followed up through what passes its columns on unchanged.

use datafusion::logical_expr::{Expr, LogicalPlan};

/// The names of `plan`'s output columns that are its GROUP BY key (none for
/// an aggregate without GROUP BY: one row), or `None` when no aggregate's
/// key reaches the output whole (an outer join's changes, a key computed on).
pub fn result_key(plan: &LogicalPlan) -> Option<Vec<String>> {
    let schema = plan.schema();
    let keys = key_columns(plan)?;
    Some(keys.into_iter().map(|i| schema.field(i).name().clone()).collect())
}

/// The key's column indices in `plan`'s output.
fn key_columns(plan: &LogicalPlan) -> Option<Vec<usize>> {
    match plan {
        LogicalPlan::Aggregate(aggregate) => {
            if aggregate
                .group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(_)))
            {
                return None;
            }
            // An aggregate's output is its group columns, then its aggregates.
            Some((0..aggregate.group_expr.len()).collect())
        }
        LogicalPlan::Projection(projection) => {
            let input = projection.input.schema();
            key_columns(&projection.input)?
                .into_iter()
                .map(|k| {
                    let (qualifier, field) = input.qualified_field(k);
                    projection.expr.iter().position(|e| {
                        matches!(e.clone().unalias_nested().data, Expr::Column(c)
                            if c.name == *field.name() && c.relation.as_ref() == qualifier)
                    })
                })
                .collect()
        }
        // The same columns in the same places.
        LogicalPlan::SubqueryAlias(alias) => key_columns(&alias.input),
        LogicalPlan::Filter(filter) => key_columns(&filter.input),
        LogicalPlan::Sort(sort) => key_columns(&sort.input),
        LogicalPlan::Limit(limit) => key_columns(&limit.input),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn key_of(sql: &str) -> Option<Vec<String>> {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (k VARCHAR, j INT, v INT) AS VALUES ('a', 1, 2)")
            .await
            .expect("table");
        let plan = ctx.state().create_logical_plan(sql).await.expect("plan");
        let plan = ctx.state().optimize(&plan).expect("optimized");
        result_key(&plan)
    }

    #[tokio::test]
    async fn the_group_by_key_is_followed_to_the_output() {
        let key = key_of("SELECT sum(v) AS total, k, j FROM t GROUP BY k, j").await;
        assert_eq!(key, Some(vec!["k".to_string(), "j".to_string()]));
        let key = key_of("SELECT k AS name, count(*) AS n FROM t GROUP BY k HAVING count(*) > 1").await;
        assert_eq!(key, Some(vec!["name".to_string()]));
        assert_eq!(key_of("SELECT count(*) FROM t").await, Some(vec![]));
        // The key is computed on, or left out: no key reaches the output.
        assert_eq!(key_of("SELECT upper(k), count(*) FROM t GROUP BY k").await, None);
        assert_eq!(key_of("SELECT count(*) FROM t GROUP BY k").await, None);
        assert_eq!(key_of("SELECT k, v FROM t").await, None);
    }
}

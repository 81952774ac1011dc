//! The lowering: a chain of small named rules, each of which rewrites one
//! kind of logical node, its inputs lowered already, into a [`Lowered`]
//! node (DataFusion's `TreeNode::transform_up` walks the plan bottom-up), and
//! a final visitor that reports what no rule could lower.
//!
//! A rule gives `None` when the node is not its kind, else what the node
//! lowers to or why it cannot be. A refusal does not end the walk: a rule
//! above may take the refused node over (a Top-N's filter takes the window
//! functions it ranks by; a lookup join reads its table side in batch), so
//! a refusal is kept as a node and reported only if it is still in the
//! lowered plan when the walk ends. A rule reads its lowered inputs through
//! [`StreamPlanner::lowered`], which records them as the node's inputs.

use datafusion::common::tree_node::{Transformed, TreeNode};

use super::extension::{Lowered, Refusal};
use super::*;

/// A rule of the lowering.
pub(super) struct LoweringRule {
    pub(super) name: &'static str,
    lower: fn(&mut StreamPlanner<'_>, &LogicalPlan) -> Option<Result<Planned>>,
}

/// The rules, tried in order on each node; the first that knows its kind
/// lowers it.
pub(super) const RULES: &[LoweringRule] = &[
    LoweringRule {
        name: "lower_scan",
        lower: |planner, node| match node {
            LogicalPlan::TableScan(scan) => Some(
                source_as_provider(&scan.source)
                    .and_then(|provider| planner.scan(scan.table_name.to_string(), provider, scan)),
            ),
            _ => None,
        },
    },
    // Before `lower_filter`: `WHERE rn <= N` over `ROW_NUMBER()` is a Top-N
    // or a dedup, which takes over the window functions below.
    LoweringRule {
        name: "lower_ranked",
        lower: |planner, node| match node {
            LogicalPlan::Filter(filter) => planner.ranked(filter).transpose(),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_filter",
        lower: |planner, node| match node {
            LogicalPlan::Filter(filter) => Some(planner.filter(filter)),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_projection",
        lower: |planner, node| match node {
            LogicalPlan::Projection(projection) => Some(
                planner
                    .lowered(&projection.input)
                    .and_then(|input| planner.project(&input, projection)),
            ),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_subquery_alias",
        lower: |planner, node| match node {
            LogicalPlan::SubqueryAlias(alias) => Some(planner.lowered(&alias.input).map(|input| {
                let schema = Arc::new(alias.schema.as_arrow().clone());
                planner.then(&input, StreamNode::Rename { schema }, input.lineage)
            })),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_limit",
        lower: |planner, node| match node {
            LogicalPlan::Limit(limit) => Some(planner.constant_limit(limit)),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_join",
        lower: |planner, node| match node {
            LogicalPlan::Join(join) => Some(planner.join(join)),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_union",
        lower: |planner, node| match node {
            LogicalPlan::Union(union) => Some(planner.union(union)),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_aggregate",
        lower: |planner, node| match node {
            LogicalPlan::Aggregate(aggregate) => Some(planner.aggregate(aggregate)),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_sort",
        lower: |planner, node| match node {
            LogicalPlan::Sort(sort) => Some(planner.sort(sort)),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_window_functions",
        lower: |planner, node| match node {
            LogicalPlan::Window(window) => Some(planner.window_functions(window, None)),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_unnest",
        lower: |planner, node| match node {
            LogicalPlan::Unnest(unnest) => Some(planner.unnest(unnest)),
            _ => None,
        },
    },
    LoweringRule {
        name: "lower_window_tvf",
        lower: |planner, node| WindowTvf::from_plan(node).map(|window| planner.window(window)),
    },
];

impl StreamPlanner<'_> {
    /// `plan` lowered bottom-up by [`RULES`]: a tree of [`Lowered`] nodes,
    /// refusals included (see [`StreamPlanner::finish`]).
    pub(super) fn lower(&mut self, plan: &LogicalPlan) -> Result<LogicalPlan> {
        plan.clone()
            .transform_up(|node| match Lowered::of(&node) {
                Some(_) => Ok(Transformed::no(node)),
                None => Ok(Transformed::yes(self.apply_rules(node))),
            })
            .map(|transformed| transformed.data)
    }

    /// `node` lowered by the first rule that knows its kind (or refused).
    fn apply_rules(&mut self, node: LogicalPlan) -> LogicalPlan {
        let used = std::mem::take(&mut self.used);
        let warned = self.warnings.len();
        let refused_before = std::mem::replace(&mut self.refused_updating, false);
        let (rule, outcome) = RULES
            .iter()
            .find_map(|rule| (rule.lower)(self, &node).map(|outcome| (rule.name, outcome)))
            .unwrap_or_else(|| ("refuse", refuse(&node)));
        let inputs = std::mem::replace(&mut self.used, used);
        let warnings = self.warnings.split_off(warned);
        let of_updating_input = std::mem::replace(&mut self.refused_updating, refused_before);
        match outcome {
            Ok(planned) => Lowered::planned(rule, node, planned, inputs, warnings),
            // Where its rule read a refused input, that is the refusal to
            // report (the final visitor looks below); where it refused the
            // node itself (having taken over what is below, as a Top-N its
            // window functions), this one.
            Err(error) => Lowered::refused(rule, node, error, of_updating_input, inputs),
        }
    }

    /// What `plan`, an input of the node being lowered, was lowered to; the
    /// node reads it. An error if it was refused (the final visitor reports
    /// why).
    pub(super) fn lowered(&mut self, plan: &LogicalPlan) -> Result<Planned> {
        let Some(lowered) = Lowered::of(plan) else {
            return datafusion::common::internal_err!(
                "the stream planner was given an input it did not lower: {}",
                plan.display()
            );
        };
        self.used.push(plan.clone());
        match lowered.planned_as() {
            Some(planned) => Ok(planned.clone()),
            None => plan_err!("an input of this node could not be lowered"),
        }
    }

    /// The final visitor: the deepest refusal left in the lowered plan, if
    /// any, as the query's error; else what the plan was lowered to, with
    /// the warnings of the nodes it keeps.
    pub(super) fn finish(&mut self, lowered: &LogicalPlan) -> Result<Planned> {
        if let Some(Refusal {
            error,
            of_updating_input,
        }) = Lowered::deepest_refusal(lowered)
        {
            self.refused_updating = of_updating_input;
            return Err(error);
        }
        let mut warnings = Vec::new();
        Lowered::warnings(lowered, &mut warnings);
        self.warnings.extend(warnings);
        self.lowered(lowered)
    }
}

#[cfg(test)]
mod tests {
    use super::super::extension::unlowered;
    use super::*;
    use datafusion::prelude::SessionContext;

    /// A session with a bounded table `t(a, b)`.
    async fn session() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a BIGINT, b BIGINT) AS VALUES (1, 2), (3, 4)")
            .await
            .expect("plans");
        ctx
    }

    async fn optimized(ctx: &SessionContext, sql: &str) -> LogicalPlan {
        let plan = ctx.sql(sql).await.expect("plans").into_unoptimized_plan();
        ctx.state().optimize(&plan).expect("plans")
    }

    #[tokio::test]
    async fn every_node_is_lowered_and_the_original_plan_is_kept() {
        let ctx = session().await;
        let plan = optimized(
            &ctx,
            "SELECT a + 1 AS c FROM t WHERE b > 2 UNION ALL SELECT b FROM t",
        )
        .await;
        let state = ctx.state();
        let catalog = SourceCatalog::default();
        let mut planner = StreamPlanner::new(&state, &catalog);
        let lowered = planner.lower(&plan).expect("plans");
        assert!(
            !lowered
                .exists(|node| Ok(Lowered::of(node).is_none()))
                .expect("plans"),
            "a node is left unlowered:\n{}",
            lowered.display_indent()
        );
        assert_eq!(unlowered(&lowered).expect("plans"), plan);
        let planned = planner.finish(&lowered).expect("plans");
        assert!(matches!(planned.plan.node, StreamNode::Union { inputs: 2, .. }));
    }

    #[tokio::test]
    async fn the_deepest_refusal_is_reported_not_the_nodes_above_it() {
        let ctx = session().await;
        // A constant table has no stream operator: the projection and the
        // filter above it are refused only because of it.
        let values = LogicalPlanBuilder::values(vec![vec![datafusion::prelude::lit(1i64)]])
            .expect("plans")
            .filter(datafusion::prelude::col("column1").gt(datafusion::prelude::lit(0i64)))
            .expect("plans")
            .project(vec![datafusion::prelude::col("column1")])
            .expect("plans")
            .build()
            .expect("plans");
        let state = ctx.state();
        let catalog = SourceCatalog::default();
        let mut planner = StreamPlanner::new(&state, &catalog);
        let lowered = planner.lower(&values).expect("plans");
        let Err(error) = planner.finish(&lowered) else {
            panic!("a constant table was lowered");
        };
        let error = error.to_string();
        assert!(error.contains("a constant table cannot be"), "{error}");
    }

    #[tokio::test]
    async fn window_functions_taken_over_by_a_top_n_above_are_not_kept() {
        let ctx = session().await;
        // The window functions lowered on their own would wait for the end
        // of input; `WHERE rn <= 1` above makes the pair a Top-N instead.
        let plan = optimized(
            &ctx,
            "SELECT a FROM (SELECT a, ROW_NUMBER() OVER (PARTITION BY b ORDER BY a DESC) AS rn FROM t) WHERE rn <= 1",
        )
        .await;
        let state = ctx.state();
        let catalog = SourceCatalog::default();
        let mut planner = StreamPlanner::new(&state, &catalog);
        let lowered = planner.lower(&plan).expect("plans");
        let planned = planner.finish(&lowered).expect("plans");
        let mut kinds = Vec::new();
        let mut node = Some(&planned.plan);
        while let Some(plan) = node {
            kinds.push(matches!(plan.node, StreamNode::TopN(_)));
            node = plan.inputs.first();
        }
        assert!(kinds.contains(&true), "no Top-N in the stream plan");
    }
}

//! Rewrite rules over the stream plan, run after the lowering and before
//! the build: each a small named rewrite of one node and its inputs that
//! keeps the rows the plan emits, applied bottom-up until none applies.
//!
//! The lowering maps logical nodes one to one, so a window TVF comes out as
//! a chain of projections (bounds, then window end, then window time) and an
//! alias as a rename; fusing them saves evaluating and copying columns per
//! batch, and EXPLAIN shows what runs.

use std::sync::Arc;

use datafusion::common::tree_node::{DynTreeNode, Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal};

use super::{StreamNode, StreamPlan};

impl DynTreeNode for StreamPlan {
    fn arc_children(&self) -> Vec<&Arc<Self>> {
        self.inputs.iter().collect()
    }

    fn with_new_arc_children(&self, _arc_self: Arc<Self>, new_children: Vec<Arc<Self>>) -> Result<Arc<Self>> {
        Ok(StreamPlan::over(self.node.clone(), new_children))
    }
}

/// A rewrite of one node of the stream plan.
pub trait StreamRule {
    /// For EXPLAIN VERBOSE and tests.
    fn name(&self) -> &'static str;

    /// `plan` rewritten, or `Transformed::no` when the rule does not apply.
    fn rewrite(&self, plan: Arc<StreamPlan>) -> Result<Transformed<Arc<StreamPlan>>>;
}

/// The rules, in the order they are tried at each node.
pub fn rules() -> Vec<Box<dyn StreamRule>> {
    vec![Box::new(RenameIntoProjection), Box::new(FuseProjections)]
}

impl StreamPlan {
    /// The plan with every rule applied, bottom-up, until none applies.
    pub fn optimized(self: Arc<Self>) -> Result<Arc<StreamPlan>> {
        let rules = rules();
        self.transform_up(|mut plan| {
            let mut changed = false;
            loop {
                let mut again = false;
                for rule in &rules {
                    let rewritten = rule.rewrite(plan)?;
                    again |= rewritten.transformed;
                    plan = rewritten.data;
                }
                if !again {
                    break;
                }
                changed = true;
            }
            Ok(match changed {
                true => Transformed::yes(plan),
                false => Transformed::no(plan),
            })
        })
        .map(|transformed| transformed.data)
    }
}

/// A rename (a subquery's alias) next to a projection: the projection under
/// the rename's names, or computed straight over the rename's input (a
/// rename changes no column's place, and physical columns are read by place).
pub struct RenameIntoProjection;

impl StreamRule for RenameIntoProjection {
    fn name(&self) -> &'static str {
        "rename_into_projection"
    }

    fn rewrite(&self, plan: Arc<StreamPlan>) -> Result<Transformed<Arc<StreamPlan>>> {
        let [input] = plan.inputs.as_slice() else {
            return Ok(Transformed::no(plan));
        };
        let rewritten = match (&plan.node, &input.node) {
            (StreamNode::Rename { schema }, StreamNode::Projection { exprs, .. }) => {
                let node = StreamNode::Projection {
                    exprs: exprs.clone(),
                    schema: Arc::clone(schema),
                };
                StreamPlan::over(node, input.inputs.clone())
            }
            (StreamNode::Projection { .. }, StreamNode::Rename { .. }) => {
                StreamPlan::over(plan.node.clone(), input.inputs.clone())
            }
            _ => return Ok(Transformed::no(plan)),
        };
        Ok(Transformed::yes(rewritten))
    }
}

/// A projection over a projection: one, the outer's expressions computed
/// from the inner's input, when that computes nothing twice (an inner
/// expression other than a column or constant used at most once). An inner
/// expression no outer one uses is dropped (a window's `window_time` when
/// the query does not read it).
pub struct FuseProjections;

impl StreamRule for FuseProjections {
    fn name(&self) -> &'static str {
        "fuse_projections"
    }

    fn rewrite(&self, plan: Arc<StreamPlan>) -> Result<Transformed<Arc<StreamPlan>>> {
        let (StreamNode::Projection { exprs: outer, schema }, [input]) = (&plan.node, plan.inputs.as_slice())
        else {
            return Ok(Transformed::no(plan));
        };
        let StreamNode::Projection { exprs: inner, .. } = &input.node else {
            return Ok(Transformed::no(plan));
        };
        let mut uses = vec![0usize; inner.len()];
        for expr in outer {
            expr.apply(|e| {
                if let Some(column) = e.downcast_ref::<Column>()
                    && let Some(count) = uses.get_mut(column.index())
                {
                    *count += 1;
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        let cheap = |e: &Arc<dyn PhysicalExpr>| e.is::<Column>() || e.is::<Literal>();
        if inner.iter().zip(&uses).any(|(e, &n)| n > 1 && !cheap(e)) {
            return Ok(Transformed::no(plan));
        }
        let exprs = outer
            .iter()
            .map(|expr| substitute(expr, inner))
            .collect::<Result<Vec<_>>>()?;
        let node = StreamNode::Projection {
            exprs,
            schema: Arc::clone(schema),
        };
        Ok(Transformed::yes(StreamPlan::over(node, input.inputs.clone())))
    }
}

/// `expr` with each column replaced by the expression at its place in `inner`.
fn substitute(
    expr: &Arc<dyn PhysicalExpr>,
    inner: &[Arc<dyn PhysicalExpr>],
) -> Result<Arc<dyn PhysicalExpr>> {
    Arc::clone(expr)
        .transform_up(|e| {
            let replaced = e
                .downcast_ref::<Column>()
                .and_then(|column| inner.get(column.index()));
            Ok(match replaced {
                Some(replacement) => Transformed::yes(Arc::clone(replacement)),
                None => Transformed::no(e),
            })
        })
        .map(|transformed| transformed.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, lit};

    fn schema(names: &[&str]) -> SchemaRef {
        Arc::new(Schema::new(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Int64, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn column(name: &str, index: usize) -> Arc<dyn PhysicalExpr> {
        Arc::new(Column::new(name, index))
    }

    fn plus_one(input: Arc<dyn PhysicalExpr>) -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(input, Operator::Plus, lit(1i64)))
    }

    /// A source-less leaf to hang projections on: a filter stands in.
    fn leaf() -> Arc<StreamPlan> {
        Arc::new(StreamPlan {
            node: StreamNode::Limit { skip: 0, fetch: None },
            inputs: Vec::new(),
        })
    }

    fn projection(
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        names: &[&str],
        input: Arc<StreamPlan>,
    ) -> Arc<StreamPlan> {
        StreamPlan::over(
            StreamNode::Projection {
                exprs,
                schema: schema(names),
            },
            vec![input],
        )
    }

    fn exprs_of(plan: &StreamPlan) -> Vec<String> {
        match &plan.node {
            StreamNode::Projection { exprs, .. } => exprs.iter().map(|e| e.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn projections_fuse_when_nothing_is_computed_twice() -> Result<()> {
        // a + 1 AS b, then b + 1 AS c: one projection, (a + 1) + 1.
        let inner = projection(
            vec![column("a", 0), plus_one(column("a", 0))],
            &["a", "b"],
            leaf(),
        );
        let outer = projection(vec![plus_one(column("b", 1))], &["c"], inner);
        let fused = outer.optimized()?;
        assert_eq!(fused.inputs.len(), 1);
        assert!(matches!(fused.inputs[0].node, StreamNode::Limit { .. }));
        assert_eq!(exprs_of(&fused), vec!["a@0 + 1 + 1"]);
        Ok(())
    }

    #[test]
    fn a_computed_column_used_twice_stays_computed_once() -> Result<()> {
        let inner = projection(vec![plus_one(column("a", 0))], &["b"], leaf());
        let outer = projection(vec![column("b", 0), plus_one(column("b", 0))], &["b", "c"], inner);
        let kept = outer.optimized()?;
        assert!(matches!(kept.inputs[0].node, StreamNode::Projection { .. }));
        assert_eq!(exprs_of(&kept), vec!["b@0", "b@0 + 1"]);
        Ok(())
    }

    #[test]
    fn a_rename_folds_into_the_projection_under_it() -> Result<()> {
        let inner = projection(vec![plus_one(column("a", 0))], &["b"], leaf());
        let renamed = StreamPlan::over(
            StreamNode::Rename {
                schema: schema(&["x"]),
            },
            vec![inner],
        );
        let folded = renamed.optimized()?;
        let StreamNode::Projection { schema, .. } = &folded.node else {
            panic!("not a projection");
        };
        assert_eq!(schema.field(0).name(), "x");
        assert!(matches!(folded.inputs[0].node, StreamNode::Limit { .. }));
        Ok(())
    }
}

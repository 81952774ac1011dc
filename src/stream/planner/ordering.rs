//! Planning ORDER BY and window functions (OVER): per emission of a
//! windowed aggregate, or at the end of a bounded replay.

use super::*;

impl StreamPlanner<'_> {
    /// Window functions: per emission when partitioned by a window bound of a
    /// windowed aggregate's output, else at the end of a bounded replay.
    pub(super) async fn window_functions(
        &mut self,
        node: &datafusion::logical_expr::Window,
    ) -> Result<Planned> {
        let planned = self.node(&node.input, false).await?;
        planned.appended_only("a window function (OVER)")?;
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
}

impl StreamPlanner<'_> {
    pub(super) async fn sort(&mut self, sort: &datafusion::logical_expr::Sort) -> Result<Planned> {
        let planned = self.node(&sort.input, false).await?;
        planned.appended_only("ORDER BY")?;
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

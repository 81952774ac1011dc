//! Planning ORDER BY and window functions (OVER): per emission of a
//! windowed aggregate, or at the end of a bounded replay.

use super::*;
use crate::stream::operators::over_aggregate::{OverAggregateOperator, OverAggregateSpec};
use crate::stream::operators::window_top_n::WindowTopNOperator;

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
        let input_schema = Arc::new(input.as_arrow().clone());
        let schema = Arc::new(node.schema.as_arrow().clone());
        let late = || LateRows::new(Arc::clone(&self.metrics), planned.sources.late_path.clone());
        let needs_watermark = |what: &str| match &planned.sources.unwatermarked {
            Some(table) => plan_err!(
                "{what} on unbounded '{table}' needs event time: declare a WATERMARK FOR its time column in CREATE TABLE"
            ),
            None => Ok(()),
        };
        let (partition_by, order_by) = specs.first().cloned().unwrap_or_default();
        if per_window {
            let operator = WindowFunctionOperator::new(functions, input_schema, schema, false);
            return Ok(self.then(&planned, Box::new(operator), lineage));
        }
        // Straight over a window TVF's rows, partitioned by the window: each
        // window's rows are evaluated when it closes (window Top-N, dedup).
        if let Some(l) = lineage.filter(|l| !l.complete)
            && partition_by.iter().any(|e| is_bound_column(e, &l, input))
        {
            let Some(end) = l.end.filter(|&end| {
                partition_by
                    .iter()
                    .any(|e| matches!(e, Expr::Column(c) if input.index_of_column(c).ok() == Some(end)))
            }) else {
                return not_impl_err!(
                    "a window function over a window TVF's rows is evaluated per window when it closes: PARTITION BY window_start, window_end (window_end is missing)"
                );
            };
            needs_watermark("a window function per window")?;
            let operator = WindowTopNOperator::new(functions, end, input_schema, schema, late());
            let closed = WindowLineage { complete: true, ..l };
            return Ok(self.then(&planned, Box::new(operator), Some(closed)));
        }
        // Ordered by event time: each row goes out once the watermark passes it.
        let time = match order_by.first() {
            Some(first) if first.asc => match &first.expr {
                Expr::Column(_) if matches!(first.expr.get_type(input)?, DataType::Timestamp(..)) => {
                    Some(self.physical(&first.expr, input)?)
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(time) = time {
            match functions.iter().find(|f| !f.uses_bounded_memory()) {
                Some(unbounded) if !planned.sources.bounded => {
                    return not_impl_err!(
                        "'{}' over an unbounded source needs every row of its partition (a frame reaching UNBOUNDED FOLLOWING, or a function over the whole partition): end the frame at the current row or a bounded number of rows after it",
                        unbounded.name()
                    );
                }
                Some(_) => {}
                None => {
                    needs_watermark("a window function (OVER) ordered by event time")?;
                    let ttl = self.state_ttl();
                    let spec = OverAggregateSpec {
                        functions,
                        time,
                        input_schema,
                        schema,
                        ttl,
                    };
                    let operator = OverAggregateOperator::try_new(spec, late())?;
                    return Ok(self.then(&planned, Box::new(operator), lineage));
                }
            }
        }
        if !planned.sources.bounded {
            return not_impl_err!(
                "window functions (OVER) on an unbounded source need ORDER BY an event-time column first (ascending; each row goes out when the watermark passes it), or PARTITION BY window_start, window_end of a window TVF or windowed aggregate (Top-N per window)"
            );
        }
        let operator = WindowFunctionOperator::new(functions, input_schema, schema, true);
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
        let sorted = self.then(&planned, Box::new(operator), lineage);
        Ok(match sort.fetch {
            // Each emission keeps its first rows; the LIMIT holds across them.
            Some(fetch) if leads_with_window => {
                self.then(&sorted, Box::new(LimitOperator::new(0, Some(fetch))), lineage)
            }
            _ => sorted,
        })
    }
}

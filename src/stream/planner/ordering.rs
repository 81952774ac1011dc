//! Planning ORDER BY and window functions (OVER): per emission of a
//! windowed aggregate, or at the end of a bounded replay.

use super::*;
use crate::stream::operators::dedup::DedupOperator;
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
        let needs_watermark = |what: &str| planned.sources.needs_event_time(what);
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
        if let Some(time) = self.event_time_order(&order_by, input)? {
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
                    self.warn_keys_kept("a window function (OVER) ordered by event time", &planned);
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
    /// The event time leading `order_by` (a TIMESTAMP column, ascending),
    /// as a physical expression over `input`.
    fn event_time_order(
        &self,
        order_by: &[datafusion::logical_expr::SortExpr],
        input: &DFSchema,
    ) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        match order_by.first() {
            Some(first) if first.asc && matches!(first.expr, Expr::Column(_)) => {
                if matches!(first.expr.get_type(input)?, DataType::Timestamp(..)) {
                    return Ok(Some(self.physical(&first.expr, input)?));
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Warn that `what` over an unbounded input keeps every key it sees
    /// unless `state.ttl` bounds it.
    fn warn_keys_kept(&self, what: &str, planned: &Planned) {
        if !planned.sources.bounded && self.state_ttl().is_none() {
            self.warn(format!(
                "{what} keeps state for every key it sees and no state.ttl is set, so its state grows with the keys: SET 'state.ttl' = '1 h' forgets a key idle that long"
            ));
        }
    }

    /// `WHERE rn = 1` (or `rn <= 1`, `rn < 2`) over `ROW_NUMBER() OVER
    /// (PARTITION BY k ORDER BY ts)` ordered by event time: a dedup keeping
    /// each key's first row. `None`: not that shape (the filter and the
    /// window functions are planned as they are).
    pub(super) async fn dedup(
        &mut self,
        filter: &datafusion::logical_expr::Filter,
    ) -> Result<Option<Planned>> {
        let LogicalPlan::Window(window) = filter.input.as_ref() else {
            return Ok(None);
        };
        let [expr] = window.window_expr.as_slice() else {
            return Ok(None);
        };
        let Expr::WindowFunction(function) = strip_alias(expr) else {
            return Ok(None);
        };
        let is_row_number = matches!(
            &function.fun,
            datafusion::logical_expr::WindowFunctionDefinition::WindowUDF(udf) if udf.name() == "row_number"
        );
        let by_window = function.params.partition_by.iter().any(|e| {
            e.column_refs()
                .iter()
                .any(|c| [WINDOW_START, WINDOW_END, WINDOW_TIME].contains(&c.name.as_str()))
        });
        let rn = window.schema.fields().len() - 1;
        if !is_row_number
            || by_window
            || !keeps_first(&filter.predicate, |c| {
                window.schema.index_of_column(c).ok() == Some(rn)
            })
        {
            return Ok(None);
        }
        let input = window.input.schema();
        let Some(time) = self.event_time_order(&function.params.order_by, input)? else {
            return Ok(None);
        };
        let planned = self.node(&window.input, false).await?;
        planned.appended_only("a dedup (ROW_NUMBER() ... = 1)")?;
        if self.changes {
            return not_impl_err!(
                "a dedup with EMIT CHANGES is not supported yet: it is append-only, drop EMIT CHANGES"
            );
        }
        planned
            .sources
            .needs_event_time("a dedup ordered by event time")?;
        let function = create_window_expr(
            expr,
            input,
            self.state.execution_props(),
            &PhysicalPlanningContext::default(),
        )?;
        self.warn_keys_kept("a dedup", &planned);
        let late = LateRows::new(Arc::clone(&self.metrics), planned.sources.late_path.clone());
        let operator = DedupOperator::try_new(
            function,
            time,
            Arc::new(input.as_arrow().clone()),
            Arc::new(window.schema.as_arrow().clone()),
            self.state_ttl(),
            late,
        )?;
        Ok(Some(self.then(&planned, Box::new(operator), planned.lineage)))
    }

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

/// Whether `predicate` keeps only row number 1 of the column `is_rn` names:
/// `rn = 1`, `rn <= 1` or `rn < 2`.
fn keeps_first(predicate: &Expr, is_rn: impl Fn(&datafusion::common::Column) -> bool) -> bool {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = predicate else {
        return false;
    };
    let (Expr::Column(column), Expr::Literal(value, _)) = (strip_alias(left), strip_alias(right)) else {
        return false;
    };
    let value = value.cast_to(&DataType::Int64).ok().and_then(|v| match v {
        datafusion::common::ScalarValue::Int64(v) => v,
        _ => None,
    });
    is_rn(column)
        && matches!(
            (op, value),
            (Operator::Eq, Some(1)) | (Operator::LtEq, Some(1)) | (Operator::Lt, Some(2))
        )
}

impl Sources {
    /// Refuse `what` when an unbounded source has no watermark: its rows
    /// go out as the watermark passes them.
    pub(super) fn needs_event_time(&self, what: &str) -> Result<()> {
        match &self.unwatermarked {
            Some(table) => plan_err!(
                "{what} on unbounded '{table}' needs event time: declare a WATERMARK FOR its time column in CREATE TABLE"
            ),
            None => Ok(()),
        }
    }
}

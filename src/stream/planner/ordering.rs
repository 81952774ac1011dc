//! Planning ORDER BY and window functions (OVER), by the query's shape:
//! per emission of a windowed aggregate, per window over a window TVF's rows
//! (`WindowTopN`), row by row as the watermark passes when ordered by event
//! time (`OverAggregate`), a dedup (`ROW_NUMBER() ... = 1` by event time), an
//! updating Top-N (`ROW_NUMBER() ... <= N` ordered otherwise), or at the end
//! of a bounded replay.

use super::*;
use crate::stream::operators::over_aggregate::OverAggregateSpec;
use crate::stream::operators::top_n::Ranking;
use crate::stream::operators::window_top_n::WindowClose;
use crate::stream::plan::TopNNode;

impl StreamPlanner<'_> {
    /// Window functions: per emission when partitioned by a window bound of a
    /// windowed aggregate's output, per window over a window TVF's rows,
    /// row by row when ordered by event time, else at the end of a bounded
    /// replay. `limit`: a `WHERE rn <= N` over the (one) `ROW_NUMBER()`
    /// follows, which lets a window TVF's windows drop rows past N.
    pub(super) fn window_functions(
        &mut self,
        node: &datafusion::logical_expr::Window,
        limit: Option<usize>,
    ) -> Result<Planned> {
        let planned = self.lowered(&node.input)?;
        self.window_functions_over(planned, node, limit)
    }

    /// [`StreamPlanner::window_functions`] over `planned`, the window node's
    /// input, planned already.
    fn window_functions_over(
        &mut self,
        planned: Planned,
        node: &datafusion::logical_expr::Window,
        limit: Option<usize>,
    ) -> Result<Planned> {
        self.appended_only(&planned, "a window function (OVER)")?;
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
            .map(|e| self.window_function(e, input))
            .collect::<Result<Vec<_>>>()?;
        let input_schema = Arc::new(input.as_arrow().clone());
        let schema = Arc::new(node.schema.as_arrow().clone());
        let late = planned.sources.late_path.clone();
        let needs_watermark = |what: &str| planned.sources.needs_event_time(what);
        let (partition_by, order_by) = specs.first().cloned().unwrap_or_default();
        if per_window {
            let node = StreamNode::WindowFunctions {
                functions,
                input_schema,
                schema,
                at_end: false,
            };
            return Ok(self.then(&planned, node, lineage));
        }
        // Straight over a window TVF's rows, partitioned by the window: each
        // window's rows are evaluated when it closes (window Top-N, dedup).
        if let Some(l) = lineage.filter(|l| !l.complete)
            && partition_by.iter().any(|e| is_bound_column(e, &l, input))
        {
            let holds = |column: Option<usize>| {
                column.filter(|&c| {
                    partition_by
                        .iter()
                        .any(|e| matches!(e, Expr::Column(col) if input.index_of_column(col).ok() == Some(c)))
                })
            };
            let longest = match l.kind {
                WindowKind::Tumble { size, .. }
                | WindowKind::Hop { size, .. }
                | WindowKind::Cumulate { size, .. } => Some(size),
                WindowKind::Session { .. } => None,
            };
            let close = match (holds(l.end), holds(l.start), longest) {
                (Some(end), _, _) => WindowClose::End(end),
                (None, Some(start), Some(longest)) => WindowClose::StartPlus(start, longest),
                _ => {
                    return not_impl_err!(
                        "a window function over a window TVF's rows is evaluated per window when it closes: PARTITION BY window_start, window_end (window_end is missing)"
                    );
                }
            };
            needs_watermark("a window function per window")?;
            let node = StreamNode::WindowTopN {
                functions,
                close,
                input_schema,
                schema,
                limit,
                late,
            };
            let closed = WindowLineage { complete: true, ..l };
            return Ok(self.then(&planned, node, Some(closed)));
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
                    planned
                        .sources
                        .orders_by_event_time("a window function (OVER) ordered by event time")?;
                    self.warn_keys_kept("a window function (OVER) ordered by event time", &planned);
                    let ttl = self.state_ttl();
                    let spec = OverAggregateSpec {
                        functions,
                        time,
                        input_schema,
                        schema,
                        ttl,
                    };
                    return Ok(self.then(&planned, StreamNode::OverAggregate { spec, late }, lineage));
                }
            }
        }
        if !planned.sources.bounded {
            return not_impl_err!(
                "window functions (OVER) on an unbounded source need ORDER BY an event-time column first (ascending; each row goes out when the watermark passes it), or PARTITION BY window_start, window_end of a window TVF or windowed aggregate (Top-N per window)"
            );
        }
        let node = StreamNode::WindowFunctions {
            functions,
            input_schema,
            schema,
            at_end: true,
        };
        Ok(self.then(&planned, node, lineage))
    }
}

impl StreamPlanner<'_> {
    /// The physical window function of `expr` over rows of `input`.
    fn window_function(
        &self,
        expr: &Expr,
        input: &DFSchema,
    ) -> Result<Arc<dyn datafusion::physical_expr::window::WindowExpr>> {
        create_window_expr(
            expr,
            input,
            self.state.execution_props(),
            &PhysicalPlanningContext::default(),
        )
    }

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
    fn warn_keys_kept(&mut self, what: &str, planned: &Planned) {
        if !planned.sources.bounded && self.state_ttl().is_none() {
            self.warn(format!(
                "{what} keeps state for every key it sees and no state.ttl is set, so its state grows with the keys: SET 'state.ttl' = '1 h' forgets a key idle that long"
            ));
        }
    }

    /// `WHERE rn <= N` (or `rn = 1`, `rn < N`) over `ROW_NUMBER() OVER
    /// (PARTITION BY k ORDER BY ...)`: ordered by event time with `N = 1`, a
    /// dedup keeping each key's first row (append-only); ordered otherwise,
    /// an updating Top-N; partitioned by a window (or the first `N > 1` rows
    /// by event time, or in a replay that aggregates to the end), the window
    /// functions and then the filter, the window Top-N told `N`. `None`: not
    /// that shape (planned as the filter and window functions it is).
    pub(super) fn ranked(&mut self, filter: &datafusion::logical_expr::Filter) -> Result<Option<Planned>> {
        // A projection may stand between (the optimizer prunes columns and
        // pulls expressions up there); the row number must pass it as is.
        let (window, projection) = match logical(&filter.input) {
            LogicalPlan::Window(window) => (window, None),
            LogicalPlan::Projection(p) => match logical(&p.input) {
                LogicalPlan::Window(window) => (window, Some(p)),
                _ => return Ok(None),
            },
            _ => return Ok(None),
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
        let rn = window.schema.fields().len() - 1;
        let is_rn = |c: &datafusion::common::Column| {
            let column = match projection {
                None => Some(c),
                Some(p) => p
                    .schema
                    .index_of_column(c)
                    .ok()
                    .and_then(|i| p.expr.get(i))
                    .and_then(|e| match strip_alias(e) {
                        Expr::Column(w) => Some(w),
                        _ => None,
                    }),
            };
            column.is_some_and(|w| window.schema.index_of_column(w).ok() == Some(rn))
        };
        let limit = row_limit(&filter.predicate, is_rn);
        let Some(limit) = limit.filter(|_| is_row_number) else {
            return Ok(None);
        };
        let planned = self.lowered(&window.input)?;
        let input = window.input.schema();
        let by_window = planned.lineage.is_some_and(|l| {
            function
                .params
                .partition_by
                .iter()
                .any(|e| is_bound_column(e, &l, input))
        });
        let time = self.event_time_order(&function.params.order_by, input)?;
        let (by_time, updating) = (time.is_some(), planned.updating.is_some());
        let (mut ranked, filter_after) = match time {
            Some(time) if !by_window && limit == 1 && !updating => {
                (self.dedup(planned, window, expr, time)?, false)
            }
            // Over an updating input even a ranking by event time updates.
            _ if !by_window && !self.final_at_end && (!by_time || updating) => {
                (self.top_n(planned, window, expr, limit)?, false)
            }
            // Ranked per window (told the limit), the first N rows by event
            // time, or at the end of a replay: the window functions, then the
            // filter.
            _ => (self.window_functions_over(planned, window, Some(limit))?, true),
        };
        if let Some(projection) = projection {
            ranked = self.project(&ranked, projection)?;
        }
        if filter_after {
            let predicate = self.physical(&filter.predicate, filter.input.schema())?;
            ranked = self.then(&ranked, StreamNode::Filter { predicate }, ranked.lineage);
        }
        Ok(Some(ranked))
    }

    /// A dedup keeping each key's first row by event time `time`, for `expr`
    /// (a `ROW_NUMBER()` of `window`).
    fn dedup(
        &mut self,
        planned: Planned,
        window: &datafusion::logical_expr::Window,
        expr: &Expr,
        time: Arc<dyn PhysicalExpr>,
    ) -> Result<Planned> {
        let input = window.input.schema();
        self.appended_only(&planned, "a dedup (ROW_NUMBER() ... = 1)")?;
        if self.changes {
            return not_impl_err!(
                "a dedup with EMIT CHANGES is not supported yet: it is append-only, drop EMIT CHANGES"
            );
        }
        planned
            .sources
            .orders_by_event_time("a dedup ordered by event time")?;
        let function = self.window_function(expr, input)?;
        self.warn_keys_kept("a dedup", &planned);
        let node = StreamNode::Dedup {
            function,
            time,
            input_schema: Arc::new(input.as_arrow().clone()),
            schema: Arc::new(window.schema.as_arrow().clone()),
            ttl: self.state_ttl(),
            late: planned.sources.late_path.clone(),
        };
        Ok(self.then(&planned, node, planned.lineage))
    }

    /// An updating Top-N: the best `limit` rows per key of `expr` (a
    /// `ROW_NUMBER()` of `window`), as a changelog of ranks. In a bounded
    /// replay whose result must be appended rows, `None`: the window
    /// function runs at the end of input.
    fn top_n(
        &mut self,
        planned: Planned,
        window: &datafusion::logical_expr::Window,
        expr: &Expr,
        limit: usize,
    ) -> Result<Planned> {
        let input = window.input.schema();
        self.warn_keys_kept("a Top-N", &planned);
        let function = self.window_function(expr, input)?;
        let node = TopNNode {
            ranking: Ranking::of(function.as_ref()),
            limit,
            skip: 0,
            input_schema: Arc::new(input.as_arrow().clone()),
            schema: Arc::new(window.schema.as_arrow().clone()),
            ttl: self.state_ttl(),
            retracting: planned.updating.is_some(),
        };
        let mut ranked = self.then(&planned, StreamNode::TopN(node), planned.lineage);
        ranked.updating = Some(
            "a Top-N (ROW_NUMBER() ... <= N) not ordered by event time, which updates its ranks as rows come"
                .to_string(),
        );
        Ok(ranked)
    }

    /// `order` as physical sort expressions over `input`.
    fn physical_order(
        &self,
        order: &[datafusion::logical_expr::SortExpr],
        input: &DFSchema,
    ) -> Result<Vec<PhysicalSortExpr>> {
        order
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
            .collect()
    }

    /// `ORDER BY ... LIMIT fetch` over an updating input (RisingWave's
    /// Top-N, Nexmark q105's over a GROUP BY): the top rows as a changelog,
    /// with no order to keep.
    fn top_of(
        &mut self,
        planned: Planned,
        sort: &datafusion::logical_expr::Sort,
        fetch: usize,
    ) -> Result<Planned> {
        self.top_of_skipping(planned, sort, (0, fetch))
    }

    /// `ORDER BY ... LIMIT fetch OFFSET skip` over an updating input: the top
    /// `skip + fetch` rows, the first `skip` of them not shown.
    fn top_of_skipping(
        &mut self,
        planned: Planned,
        sort: &datafusion::logical_expr::Sort,
        (skip, fetch): (usize, usize),
    ) -> Result<Planned> {
        let order = self.physical_order(&sort.expr, sort.input.schema())?;
        let label = format!(
            "ORDER BY {} {}",
            order.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", "),
            limit_text(skip, fetch)
        );
        self.top_rows(planned, sort.input.schema(), order, (skip, fetch), label)
    }

    /// `LIMIT fetch OFFSET skip` over an updating input, as Flink runs it
    /// (`StreamExecLimit`: a rank over the whole result in any order, ranks
    /// `skip + 1` to `skip + fetch`): a Top-N of the result with no order, so
    /// the rows in force that came first, by arrival; a row taken back lets
    /// the next one in (`-D`, then `+I`). Limiting the changes instead would
    /// end the query after `fetch` changes, with a result that is no LIMIT of
    /// the query's. Over `ORDER BY ... LIMIT` (DataFusion's Sort with a
    /// fetch, under the Limit that has the offset) the two are one Top-N by
    /// that order. Over appended rows, the ordinary operators.
    pub(super) fn limit(
        &mut self,
        limit: &datafusion::logical_expr::Limit,
        (skip, fetch): (usize, Option<usize>),
    ) -> Result<Planned> {
        let sorted = match logical(&limit.input) {
            LogicalPlan::Sort(sort) if sort.fetch.is_some() => Some(sort),
            _ => None,
        };
        let planned = match sorted {
            Some(sort) => self.lowered(&sort.input)?,
            None => self.lowered(&limit.input)?,
        };
        let count = match (&planned.updating, fetch) {
            // An offset counts in an order; one with a Sort out of reach
            // (under a projection) would count in arrival order instead.
            (Some(updating), Some(_)) if skip > 0 && sorted.is_none() && sorts(&limit.input) => {
                return not_impl_err!(
                    "an OFFSET over an updating input ({updating}) whose ORDER BY is not right below it is not supported yet: write ORDER BY ... LIMIT ... OFFSET in one query block"
                );
            }
            (Some(_), Some(fetch @ 1..)) => fetch,
            (Some(updating), None) if skip > 0 => {
                return not_impl_err!(
                    "an OFFSET without a LIMIT over an updating input ({updating}) is not supported: its rows change, so every row after the offset would be kept; add a LIMIT, as Flink asks"
                );
            }
            // Appended rows, or none wanted: the ordinary operators.
            _ => {
                let planned = match sorted {
                    Some(sort) => self.sort_planned(planned, sort)?,
                    None => planned,
                };
                return Ok(self.then(&planned, StreamNode::Limit { skip, fetch }, planned.lineage));
            }
        };
        match sorted {
            Some(sort) => self.top_of_skipping(planned, sort, (skip, count)),
            None => {
                let label = limit_text(skip, count);
                self.top_rows(planned, limit.input.schema(), Vec::new(), (skip, count), label)
            }
        }
    }

    /// The best `skip + fetch` rows by `order` of an updating input, the
    /// first `skip` not shown, as a changelog of rows joining and leaving them.
    fn top_rows(
        &mut self,
        planned: Planned,
        input: &DFSchema,
        order: Vec<PhysicalSortExpr>,
        (skip, fetch): (usize, usize),
        label: String,
    ) -> Result<Planned> {
        let what = match order.is_empty() {
            true => "a LIMIT over an updating input, which updates its rows in force as rows come",
            false => "an ORDER BY ... LIMIT over an updating input, which updates its top rows as rows come",
        };
        let ranking = Ranking {
            keys: Vec::new(),
            order,
            ranks: false,
            label,
        };
        let schema = Arc::new(input.as_arrow().clone());
        let node = TopNNode {
            ranking,
            limit: skip.saturating_add(fetch),
            skip,
            input_schema: Arc::clone(&schema),
            schema,
            ttl: self.state_ttl(),
            retracting: true,
        };
        let mut top = self.then(&planned, StreamNode::TopN(node), None);
        top.updating = Some(what.to_string());
        Ok(top)
    }

    pub(super) fn sort(&mut self, sort: &datafusion::logical_expr::Sort) -> Result<Planned> {
        let planned = self.lowered(&sort.input)?;
        self.sort_planned(planned, sort)
    }

    /// `sort` over its input, `planned`.
    fn sort_planned(&mut self, planned: Planned, sort: &datafusion::logical_expr::Sort) -> Result<Planned> {
        if let (Some(fetch), Some(_)) = (sort.fetch, &planned.updating) {
            return self.top_of(planned, sort, fetch);
        }
        self.appended_only(&planned, "ORDER BY")?;
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
        let order = self.physical_order(&sort.expr, input)?;
        let schema = Arc::new(sort.input.schema().as_arrow().clone());
        let node = StreamNode::SortPerWatermark {
            order,
            schema,
            fetch: sort.fetch,
            at_end: !leads_with_window,
        };
        let sorted = self.then(&planned, node, lineage);
        Ok(match sort.fetch {
            // Each emission keeps its first rows; the LIMIT holds across them.
            Some(fetch) if leads_with_window => {
                let limit = StreamNode::Limit {
                    skip: 0,
                    fetch: Some(fetch),
                };
                self.then(&sorted, limit, lineage)
            }
            _ => sorted,
        })
    }
}

/// Whether `plan` is sorted under projections, filters and aliases.
fn sorts(plan: &LogicalPlan) -> bool {
    match logical(plan) {
        LogicalPlan::Sort(_) => true,
        LogicalPlan::Projection(p) => sorts(&p.input),
        LogicalPlan::Filter(f) => sorts(&f.input),
        LogicalPlan::SubqueryAlias(a) => sorts(&a.input),
        _ => false,
    }
}

/// `LIMIT fetch`, and its `OFFSET skip` if any, as EXPLAIN shows them.
fn limit_text(skip: usize, fetch: usize) -> String {
    match skip {
        0 => format!("LIMIT {fetch}"),
        _ => format!("LIMIT {fetch} OFFSET {skip}"),
    }
}

/// How many row numbers `predicate` keeps of the column `is_rn` names:
/// `rn <= N` and `rn = 1` keep N and 1, `rn < N` keeps N - 1.
fn row_limit(predicate: &Expr, is_rn: impl Fn(&datafusion::common::Column) -> bool) -> Option<usize> {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = predicate else {
        return None;
    };
    let (Expr::Column(column), Expr::Literal(value, _)) = (strip_alias(left), strip_alias(right)) else {
        return None;
    };
    let value = match value.cast_to(&DataType::Int64).ok()? {
        datafusion::common::ScalarValue::Int64(Some(v)) => usize::try_from(v).ok()?,
        _ => return None,
    };
    if !is_rn(column) {
        return None;
    }
    match op {
        Operator::Eq if value == 1 => Some(1),
        Operator::LtEq if value >= 1 => Some(value),
        Operator::Lt if value >= 2 => Some(value - 1),
        _ => None,
    }
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

    /// Refuse `what`, which orders rows by an event-time column, where it
    /// cannot run: a stream with no watermark, or a query on processing
    /// time (whose watermark, the wall clock, says nothing of event time).
    pub(super) fn orders_by_event_time(&self, what: &str) -> Result<()> {
        if self.processing_time {
            return plan_err!(
                "{what} in a query that windows by a PROCTIME() column: such a query runs on processing time (its sources' watermark is the wall clock), which says nothing of the rows' event time; window by event time instead, or run {what} in a query of its own"
            );
        }
        self.needs_event_time(what)
    }
}

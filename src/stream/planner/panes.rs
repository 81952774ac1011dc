//! The planner's first rule: which windows a windowed aggregate makes of
//! panes. It runs over the whole logical plan before the lowering, so that
//! lowering a node depends only on the node and its lowered inputs.

use datafusion::common::tree_node::{Transformed, TreeNode};

use super::*;

impl StreamPlanner<'_> {
    /// `plan` with each window TVF marked [`WindowTvf::panes`] whose
    /// aggregate above makes its windows of panes: a HOP's rows then carry
    /// their slide, a CUMULATE's their step, a SESSION's their own interval,
    /// and the aggregate puts panes together into windows, never copying a
    /// row into each of its windows.
    pub(super) fn mark_panes(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        plan.transform_down(|node| {
            let LogicalPlan::Aggregate(aggregate) = &node else {
                return Ok(Transformed::no(node));
            };
            if !self.aggregates_panes(aggregate) {
                return Ok(Transformed::no(node));
            }
            let LogicalPlan::Aggregate(mut aggregate) = node else {
                return Ok(Transformed::no(node));
            };
            aggregate.input = Arc::new(with_panes(Arc::unwrap_or_clone(aggregate.input), true)?);
            Ok(Transformed::yes(LogicalPlan::Aggregate(aggregate)))
        })
        .map(|transformed| transformed.data)
    }

    /// Whether `aggregate` makes its windows of panes: it groups by the
    /// window's bounds (otherwise it needs every copy of a row, as
    /// `count(*)` over a HOP's rows does) of a HOP, CUMULATE or SESSION
    /// right below it, over tables with watermarks (without one, windows
    /// never close and the aggregate updates, keyed by each row's own
    /// windows) that are not changelogs (a row taken back must find its
    /// windows; other updating inputs are found when planned, see
    /// [`StreamPlanner::aggregate_input`]), and, but for SESSION, without
    /// `EMIT CHANGES` (which shows each window as it grows).
    fn aggregates_panes(&self, aggregate: &datafusion::logical_expr::Aggregate) -> bool {
        let by_window = aggregate.group_expr.iter().any(|e| {
            matches!(e, Expr::Column(c) if [WINDOW_START, WINDOW_END, WINDOW_TIME].contains(&c.name.as_str()))
        });
        by_window
            && window_below(&aggregate.input).is_some_and(|w| match w.kind {
                WindowKind::Tumble { .. } => false,
                WindowKind::Session { .. } => true,
                _ => !self.changes && !self.reads_changelog(&aggregate.input),
            })
            && !self.reads_unwatermarked(&aggregate.input)
    }
}

impl StreamPlanner<'_> {
    /// An aggregate's input, lowered. Whether its rows are changes is
    /// known only once lowered: a HOP or CUMULATE marked as panes over rows
    /// that are changes (an updating aggregate, an outer join of two
    /// streams) is lowered again unmarked (the window and what stands
    /// between it and the aggregate; its input stays as lowered), each row
    /// copied into its windows, so that a row taken back finds them (what a
    /// changelog table's gets at once, see
    /// [`StreamPlanner::aggregates_panes`]).
    pub(super) fn aggregate_input(
        &mut self,
        aggregate: &datafusion::logical_expr::Aggregate,
    ) -> Result<Planned> {
        let planned = self.lowered(&aggregate.input)?;
        let panes = window_below(&aggregate.input)
            .is_some_and(|w| w.panes && !matches!(w.kind, WindowKind::Session { .. }));
        if planned.updating.is_none() || !panes {
            return Ok(planned);
        }
        // The first lowering is not read.
        self.used.pop();
        let unmarked = self.lower(&with_panes(aggregate.input.as_ref().clone(), false)?)?;
        self.lowered(&unmarked)
    }
}

/// `plan` with the window [`window_below`] finds marked as made of panes
/// (or, not `panes`, unmarked).
fn with_panes(plan: LogicalPlan, panes: bool) -> Result<LogicalPlan> {
    // Over a lowered plan, the nodes are looked at as they were (and lowered
    // again); the window's input stays as lowered.
    let given = plan;
    let plan = logical(&given).clone();
    match &plan {
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => plan
            .map_children(|input| with_panes(input, panes).map(Transformed::yes))
            .map(|transformed| transformed.data),
        other => match WindowTvf::from_plan(other) {
            Some(window) => {
                let mut window = window.clone();
                window.panes = panes;
                Ok(window.into_plan())
            }
            None => Ok(given),
        },
    }
}

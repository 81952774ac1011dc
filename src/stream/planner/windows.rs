//! Planning window TVFs: through batch's own lowering, or as panes and
//! sessions under an aggregate.

use super::*;

impl StreamPlanner<'_> {
    /// A window TVF: its lowering (or, for panes, a TUMBLE of one pane).
    pub(super) fn window(&mut self, window: &WindowTvf) -> Result<Planned> {
        let panes = window.panes;
        let lowered = match window.kind {
            WindowKind::Hop { slide, offset, .. } if panes => {
                retyped(window, WindowKind::Tumble { size: slide, offset })?.lower()?
            }
            WindowKind::Cumulate { step, offset, .. } if panes => {
                retyped(window, WindowKind::Tumble { size: step, offset })?.lower()?
            }
            WindowKind::Session { gap } if panes => session_intervals(window, gap)?,
            WindowKind::Session { .. } => {
                return not_impl_err!(
                    "SESSION windows run in continuous mode only under an aggregate (GROUP BY window_start, window_end, ...): a row's session is not known until the session closes"
                );
            }
            _ => window.lower()?,
        };
        let lowered = TypeCoercion::new().analyze(lowered, self.state.config_options())?;
        let lowered = self.lower(&lowered)?;
        let planned = self.lowered(&lowered)?;
        let width = window.input_width();
        let lineage = WindowLineage {
            kind: window.kind,
            panes,
            complete: false,
            start: Some(width),
            end: Some(width + 1),
            time: Some(width + 2),
        };
        Ok(planned.at(Arc::clone(&planned.plan), Some(lineage)))
    }
}

/// The same window with another kind (a HOP's panes are a TUMBLE of one slide).
pub(super) fn retyped(window: &WindowTvf, kind: WindowKind) -> Result<WindowTvf> {
    Ok(WindowTvf::try_new(
        Arc::clone(&window.input),
        window.time.clone(),
        kind,
        window.partition_keys.clone(),
    )?
    .counting_with(window))
}

/// SESSION under an aggregate: each row as its own session `[ts, ts + gap)`
/// in the window's columns; the session aggregate unites overlapping ones.
pub(super) fn session_intervals(window: &WindowTvf, gap: i64) -> Result<LogicalPlan> {
    let DataType::Timestamp(unit, _) = window.time.get_type(window.input.schema())? else {
        return plan_err!("SESSION needs a timestamp time column");
    };
    let end = window.time.clone() + duration(gap, unit);
    let columns = window.input.schema().columns().into_iter().map(Expr::Column);
    let extra = [
        window.time.clone().alias(WINDOW_START),
        end.clone().alias(WINDOW_END),
        (end - duration(MILLISECOND, unit)).alias(WINDOW_TIME),
    ];
    LogicalPlanBuilder::from(window.input.as_ref().clone())
        .filter(crate::plan::event_time_check(
            window.time.clone(),
            unit,
            gap,
            window.null_times(),
        ))?
        .project(columns.chain(extra))?
        .build()
}

/// The window under an aggregate, when only plain projections and filters
/// that leave the window's bounds alone stand between them (then the
/// aggregate may work on panes, or on rows' sessions).
pub(super) fn window_below(plan: &LogicalPlan) -> Option<&WindowTvf> {
    let is_bound = |name: &str| [WINDOW_START, WINDOW_END, WINDOW_TIME].contains(&name);
    match logical(plan) {
        LogicalPlan::Projection(p) => {
            let computes_on_bounds = p.expr.iter().any(|e| {
                !matches!(strip_alias(e), Expr::Column(_))
                    && e.column_refs().iter().any(|c| is_bound(&c.name))
            });
            if computes_on_bounds {
                return None;
            }
            window_below(&p.input)
        }
        LogicalPlan::Filter(f) => {
            if f.predicate.column_refs().iter().any(|c| is_bound(&c.name)) {
                return None;
            }
            window_below(&f.input)
        }
        LogicalPlan::SubqueryAlias(a) => window_below(&a.input),
        other => WindowTvf::from_plan(other),
    }
}

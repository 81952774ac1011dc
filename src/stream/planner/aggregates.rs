//! Planning aggregates: windowed, per session, or at the end of a bounded
//! replay.

use super::*;
use crate::stream::plan::{ClosingWindows, UpdatingAggregateNode};

impl StreamPlanner<'_> {
    pub(super) fn aggregate(&mut self, aggregate: &datafusion::logical_expr::Aggregate) -> Result<Planned> {
        // A window right below: SESSION's keys are its PARTITION BY.
        let window = window_below(&aggregate.input);
        let planned = self.aggregate_input(aggregate)?;
        let input = aggregate.input.schema();
        let grouped = |lineage: &WindowLineage| {
            aggregate.group_expr.iter().any(|e| match e {
                Expr::Column(c) => input
                    .index_of_column(c)
                    .ok()
                    .and_then(|i| lineage.role(i))
                    .is_some(),
                _ => false,
            })
        };
        let Some(lineage) = planned.lineage.filter(grouped) else {
            return self.final_aggregate(aggregate, &planned);
        };
        if let Some(table) = &planned.sources.unwatermarked {
            if self.on_window_close || matches!(lineage.kind, WindowKind::Session { .. }) {
                let what = match self.on_window_close {
                    true => "EMIT ON WINDOW CLOSE",
                    false => "a SESSION window",
                };
                return plan_err!(
                    "table '{table}' has no watermark, so its windows would never close and {what} cannot run over it: declare one, as in WATERMARK FOR ts AS ts - INTERVAL '5' SECOND (without one, TUMBLE, HOP and CUMULATE aggregates run as updating aggregates, the window bounds ordinary keys)"
                );
            }
            return self.final_aggregate(aggregate, &planned);
        }
        // Sessions take changes themselves (their rows wait until they close).
        if planned.updating.is_some() && !matches!(lineage.kind, WindowKind::Session { .. }) {
            return self.retracting_window_aggregate(aggregate, &planned, lineage);
        }
        let mut group_columns = Vec::new();
        let mut keys = Vec::new();
        for expr in &aggregate.group_expr {
            let role = match expr {
                Expr::Column(c) => input.index_of_column(c).ok().and_then(|i| lineage.role(i)),
                _ => None,
            };
            match role {
                Some(role) => group_columns.push(GroupColumn::Window(role)),
                None => {
                    group_columns.push(GroupColumn::Key(keys.len()));
                    keys.push(self.physical(expr, input)?);
                }
            }
        }
        let aggregates = self.aggregate_exprs(aggregate)?;
        let (panes_spec, length) = match (lineage.panes, lineage.kind) {
            (true, WindowKind::Hop { slide, size, .. }) => (Panes::Hop { slide, size }, Some(slide)),
            (true, WindowKind::Cumulate { step, size, offset }) => {
                (Panes::Cumulate { step, size, offset }, Some(step))
            }
            (_, WindowKind::Tumble { size, .. } | WindowKind::Hop { size, .. }) => {
                (Panes::Windows, Some(size))
            }
            (_, _) => (Panes::Windows, None),
        };
        let key_fields = group_columns
            .iter()
            .zip(aggregate.schema.fields())
            .filter(|(c, _)| matches!(c, GroupColumn::Key(_)))
            .map(|(_, f)| Arc::clone(f))
            .collect();
        let aggregates = Aggregates::try_new(keys, key_fields, aggregates)?;
        if let WindowKind::Session { gap } = lineage.kind {
            if self.changes {
                return not_impl_err!(
                    "EMIT CHANGES over SESSION windows is not supported yet; TUMBLE, HOP and CUMULATE emit changes"
                );
            }
            let session = SessionPlan { window, lineage, gap };
            return self.session_aggregate(aggregate, &planned, session, group_columns, aggregates);
        }
        if lineage.end.is_none() && lineage.time.is_none() && length.is_none() {
            return plan_err!(
                "a CUMULATE aggregate must GROUP BY window_end (window_start alone names several windows)"
            );
        }
        let spec = WindowAggregateSpec {
            panes: panes_spec,
            pane_columns: PaneColumns {
                start: lineage.start,
                end: lineage.end,
                time: lineage.time,
                length,
            },
            group_columns: group_columns.clone(),
            aggregates,
            schema: Arc::new(aggregate.schema.as_arrow().clone()),
        };
        let node = StreamNode::WindowAggregate {
            spec,
            late: planned.sources.late_path.clone(),
            emit_changes: self.changes,
        };
        let lineage = output_lineage(lineage.kind, &group_columns);
        Ok(self.then(&planned, node, Some(lineage)))
    }
}

impl StreamPlanner<'_> {
    /// A GROUP BY without a window: an updating aggregate, whose result is a
    /// changelog; in a bounded replay whose result must be appended rows (see
    /// [`StreamPlanner::plan`]), aggregated to the end of input instead.
    pub(super) fn final_aggregate(
        &mut self,
        aggregate: &datafusion::logical_expr::Aggregate,
        input_plan: &Planned,
    ) -> Result<Planned> {
        self.updating_aggregate(aggregate, input_plan, None)
    }

    /// A TUMBLE, HOP or CUMULATE aggregate over an updating input (a
    /// changelog table, an updating aggregate, an outer join): an updating
    /// aggregate whose keys include the window's bounds, which takes rows
    /// back and emits each window's groups when the watermark closes it
    /// (appended rows), or with `EMIT CHANGES` their changes as they come.
    /// Each row carries its window (HOP and CUMULATE copy a row into each of
    /// its windows: see [`StreamPlanner::aggregate_input`]).
    fn retracting_window_aggregate(
        &mut self,
        aggregate: &datafusion::logical_expr::Aggregate,
        planned: &Planned,
        lineage: WindowLineage,
    ) -> Result<Planned> {
        let size = match lineage.kind {
            WindowKind::Tumble { size, .. } | WindowKind::Hop { size, .. } if !lineage.panes => Some(size),
            WindowKind::Cumulate { .. } if !lineage.panes => None,
            _ => {
                // A bounded replay is planned again with its GROUP BYs at the end.
                self.refused_updating = true;
                let updating = planned.updating.as_deref().unwrap_or_default();
                return not_impl_err!(
                    "a windowed aggregate over an updating input ({updating}) needs each row in its own windows, and these rows carry panes of windows: put the window TVF right under the aggregate"
                );
            }
        };
        let (column, to_end) = match (lineage.end, lineage.time, lineage.start, size) {
            (Some(end), ..) => (end, 0),
            (None, Some(time), ..) => (time, MILLISECOND),
            (None, None, Some(start), Some(size)) => (start, size),
            _ => {
                return plan_err!(
                    "a CUMULATE aggregate over an updating input must GROUP BY window_end (window_start alone names several windows)"
                );
            }
        };
        let windows = ClosingWindows {
            column,
            to_end,
            late: planned.sources.late_path.clone(),
            emit_changes: self.changes,
        };
        let mut out = self.updating_aggregate(aggregate, planned, Some(windows))?;
        // The window bounds among the output's columns (the GROUP BY's first).
        let input = aggregate.input.schema();
        let roles: Vec<GroupColumn> = aggregate
            .group_expr
            .iter()
            .enumerate()
            .map(|(i, e)| match e {
                Expr::Column(c) => match input.index_of_column(c).ok().and_then(|i| lineage.role(i)) {
                    Some(role) => GroupColumn::Window(role),
                    None => GroupColumn::Key(i),
                },
                _ => GroupColumn::Key(i),
            })
            .collect();
        out.lineage = Some(output_lineage(lineage.kind, &roles));
        out.updating = self.changes.then(|| {
            "a windowed aggregate with EMIT CHANGES over an updating input, which updates its open windows"
                .to_string()
        });
        Ok(out)
    }

    /// An updating aggregate (see [`StreamPlanner::final_aggregate`]); with
    /// `windows`, one per window (TUMBLE, HOP, CUMULATE) over an updating input.
    fn updating_aggregate(
        &mut self,
        aggregate: &datafusion::logical_expr::Aggregate,
        input_plan: &Planned,
        windows: Option<ClosingWindows>,
    ) -> Result<Planned> {
        if aggregate
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
        {
            return not_impl_err!("GROUPING SETS, ROLLUP and CUBE are not supported in continuous mode yet");
        }
        let input = aggregate.input.schema();
        let keys = aggregate
            .group_expr
            .iter()
            .map(|e| self.physical(e, input))
            .collect::<Result<Vec<_>>>()?;
        let key_fields = aggregate
            .schema
            .fields()
            .iter()
            .take(keys.len())
            .cloned()
            .collect();
        let group_columns: Vec<GroupColumn> = (0..keys.len()).map(GroupColumn::Key).collect();
        let aggregates = Aggregates::try_new(keys, key_fields, self.aggregate_exprs(aggregate)?)?;
        let schema = Arc::new(aggregate.schema.as_arrow().clone());
        if self.final_at_end
            && input_plan.sources.bounded
            && input_plan.updating.is_none()
            && !self.changes
            && windows.is_none()
        {
            let node = StreamNode::FinalAggregate {
                aggregates,
                group_columns,
                schema,
                input_schema: Arc::new(input.as_arrow().clone()),
            };
            return Ok(self.then(input_plan, node, None));
        }
        // A window's groups are bounded by its close, not by a TTL.
        let ttl = self.state_ttl().filter(|_| windows.is_none());
        let node = UpdatingAggregateNode {
            aggregates,
            group_columns,
            schema,
            retracting: input_plan.updating.is_some(),
            ttl,
            // Windows emitted at their close wait for no clock.
            emit_every: match &windows {
                Some(w) if !w.emit_changes => None,
                _ => self.emit_interval(),
            },
            windows,
        };
        let mut planned = self.then(input_plan, StreamNode::UpdatingAggregate(node), None);
        planned.updating = Some(if aggregate.aggr_expr.is_empty() {
            "a DISTINCT or GROUP BY without a window, which updates its result as rows come".to_string()
        } else {
            "a GROUP BY without a window, which updates its result as rows come".to_string()
        });
        Ok(planned)
    }
}

impl StreamPlanner<'_> {
    /// The aggregate functions of an Aggregate node, physical.
    pub(super) fn aggregate_exprs(
        &self,
        aggregate: &datafusion::logical_expr::Aggregate,
    ) -> Result<Vec<crate::stream::groups::Aggregate>> {
        let input = aggregate.input.schema();
        aggregate
            .aggr_expr
            .iter()
            .map(|e| {
                let lowered = LoweredAggregateBuilder::new(
                    e,
                    input,
                    input.as_arrow(),
                    self.state.execution_props(),
                    &PhysicalPlanningContext::default(),
                )
                .build()?;
                Ok((lowered.aggregate, lowered.filter))
            })
            .collect()
    }
}

impl StreamPlanner<'_> {
    /// A session aggregate: sessions per PARTITION BY key, which must be
    /// among the GROUP BY keys.
    pub(super) fn session_aggregate(
        &mut self,
        aggregate: &datafusion::logical_expr::Aggregate,
        input_plan: &Planned,
        session: SessionPlan<'_>,
        group_columns: Vec<GroupColumn>,
        aggregates: Aggregates,
    ) -> Result<Planned> {
        let SessionPlan { window, lineage, gap } = session;
        let Some(start) = lineage.start else {
            return plan_err!("a SESSION aggregate must GROUP BY window_start and window_end");
        };
        let key_names: Vec<String> = aggregate
            .group_expr
            .iter()
            .filter(|e| !is_bound_column(e, &lineage, aggregate.input.schema()))
            .map(|e| match strip_alias(e) {
                Expr::Column(c) => c.name.clone(),
                other => other.schema_name().to_string(),
            })
            .collect();
        let mut session_keys = Vec::new();
        for key in window.map(|w| w.partition_keys.as_slice()).unwrap_or_default() {
            let name = match strip_alias(key) {
                Expr::Column(c) => c.name.clone(),
                other => other.schema_name().to_string(),
            };
            match key_names.iter().position(|k| *k == name) {
                Some(i) => session_keys.push(i),
                None => {
                    return not_impl_err!(
                        "a SESSION aggregate must GROUP BY its PARTITION BY key '{name}' (as Flink requires) in continuous mode"
                    );
                }
            }
        }
        let spec = SessionAggregateSpec {
            gap,
            start,
            group_columns: group_columns.clone(),
            session_keys,
            aggregates,
            schema: Arc::new(aggregate.schema.as_arrow().clone()),
            retracting: input_plan.updating.is_some(),
        };
        let node = StreamNode::SessionAggregate {
            spec,
            late: input_plan.sources.late_path.clone(),
        };
        let lineage = output_lineage(lineage.kind, &group_columns);
        // Each session goes out once, final, when it closes: appended rows.
        let mut planned = self.then(input_plan, node, Some(lineage));
        planned.updating = None;
        Ok(planned)
    }
}

/// A SESSION window under an aggregate.
pub(super) struct SessionPlan<'a> {
    window: Option<&'a WindowTvf>,
    lineage: WindowLineage,
    gap: i64,
}

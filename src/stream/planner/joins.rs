//! Planning joins and unions: of two streams, or of a stream with a bounded
//! table read when the query starts (a lookup).

use super::*;
use crate::stream::interval_bounds::join_interval_bounds;
use crate::stream::operators::join::{Emits, JoinSpec};
use crate::stream::operators::lookup_join::LookupJoinOperator;
use crate::stream::operators::window_join::WindowBound;
use crate::stream::plan::LookupJoinNode;

impl StreamPlanner<'_> {
    /// A join: of two streams (both sides stream), or of a stream with a
    /// bounded table (a lookup). A side is a lookup table when it is bounded
    /// and the other is not; in a bounded replay, when it has no watermark
    /// while the other has one, or reads no table at all (HOP's shifts), or
    /// when neither has one and the join is not FULL.
    pub(super) fn join(&mut self, join: &datafusion::logical_expr::Join) -> Result<Planned> {
        use datafusion::common::JoinType;
        let (left, right) = (self.sources_of(&join.left), self.sources_of(&join.right));
        let lookup_side = match (left.bounded, right.bounded) {
            (false, false) => None,
            (false, true) => Some(false),
            (true, false) => Some(true),
            // A bounded replay.
            (true, true) => match (reads_table(&join.left), reads_table(&join.right)) {
                (true, false) => Some(false),
                (false, true) => Some(true),
                _ => match (left.watermarked, right.watermarked) {
                    (true, true) => None,
                    (true, false) => Some(false),
                    (false, true) => Some(true),
                    // A FULL join pads both sides' unmatched rows, which
                    // a lookup (one side read whole, the other streamed)
                    // cannot: both stream.
                    (false, false) if join.join_type == JoinType::Full => None,
                    (false, false) => Some(matches!(
                        join.join_type,
                        JoinType::Right | JoinType::RightSemi | JoinType::RightAnti
                    )),
                },
            },
        };
        match lookup_side {
            // `Some(true)`: the left side is the table.
            Some(table_is_left) => self.lookup_join(join, !table_is_left),
            None => self.stream_join(join),
        }
    }
}

impl StreamPlanner<'_> {
    /// A join of two streams: both sides stream. A window join when both
    /// sides are windowed by the same window and joined on its bounds; an
    /// interval join when the condition bounds one side's time by the
    /// other's; otherwise a regular join that keeps every row (for
    /// `state.ttl`, or for ever, with a warning).
    fn stream_join(&mut self, join: &datafusion::logical_expr::Join) -> Result<Planned> {
        if join.null_equality == datafusion::common::NullEquality::NullEqualsNull {
            return not_impl_err!(
                "a join of two streams where NULL keys match (IS NOT DISTINCT FROM) is not supported yet; compare with ="
            );
        }
        let left = self.lowered(&join.left)?;
        let right = self.lowered(&join.right)?;
        let updating_input = left.updating.clone().or_else(|| right.updating.clone());
        let (left_schema, right_schema) = (join.left.schema(), join.right.schema());
        let (left_keys, right_keys): (Vec<_>, Vec<_>) = join.on.iter().cloned().unzip();
        let pairs_schema = left_schema.join(right_schema)?;
        let spec = JoinSpec {
            join_type: join.join_type,
            left_keys: left_keys
                .iter()
                .map(|k| self.physical(k, left_schema))
                .collect::<Result<_>>()?,
            right_keys: right_keys
                .iter()
                .map(|k| self.physical(k, right_schema))
                .collect::<Result<_>>()?,
            filter: join
                .filter
                .as_ref()
                .map(|f| self.physical(f, &pairs_schema))
                .transpose()?,
            left_schema: Arc::new(left_schema.as_arrow().clone()),
            right_schema: Arc::new(right_schema.as_arrow().clone()),
            schema: Arc::new(join.schema.as_arrow().clone()),
        };
        let sources = left.sources.and(&right.sources);
        let late = [&left, &right].map(|side| side.sources.late_path.clone());
        let needs_watermark = |kind: &str| match &sources.unwatermarked {
            Some(table) => plan_err!(
                "table '{table}' has no watermark, so {kind} over it would never free its state: declare one, as in WATERMARK FOR ts AS ts - INTERVAL '5' SECOND"
            ),
            None => Ok(()),
        };
        let window = window_join_bounds(join, &left, &right);
        // (node, window bounds of its output, whether it is updating)
        let (node, lineage, updating) = if let Some((left_end, right_end, lineage)) = window {
            needs_watermark("a window join")?;
            self.appended_only(&left, "a window join")?;
            self.appended_only(&right, "a window join")?;
            let node = StreamNode::WindowJoin {
                spec,
                left_end,
                right_end,
                late,
            };
            (node, lineage, None)
        } else if let Some((bounds, _)) = join_interval_bounds(join) {
            needs_watermark("an interval join")?;
            sources.orders_by_event_time("an interval join")?;
            self.appended_only(&left, "an interval join")?;
            self.appended_only(&right, "an interval join")?;
            (StreamNode::IntervalJoin { spec, bounds, late }, None, None)
        } else {
            let ttl = self.state_ttl();
            if ttl.is_none() || sources.unwatermarked.is_some() {
                let why = match ttl {
                    Some(_) => " and a side has no watermark to expire state.ttl by",
                    None => " and no state.ttl",
                };
                self.warn(format!(
                        "the {} join of two streams has no time bound{why}, so its state grows without bound: bound it by time (a.ts BETWEEN b.ts - INTERVAL .. AND b.ts + ..), join on the same window, or SET 'state.ttl' = '1 h'",
                        join.join_type
                    ));
            }
            // An outer (anti) row is sent padded (alone) at once, and
            // retracted when its match comes; a join of an updating input
            // takes back what its retracted rows made.
            let updating = match &updating_input {
                Some(input) => Some(format!("a join of two streams over {input}")),
                None => Emits::of(join.join_type, "StreamJoin")?
                    .unmatched
                    .contains(&true)
                    .then(|| {
                        format!(
                            "the {} join of two streams, which retracts its NULL-padded rows",
                            join.join_type
                        )
                    }),
            };
            let node = StreamNode::StreamJoin {
                spec,
                ttl,
                updating_inputs: updating_input.is_some(),
            };
            (node, None, updating)
        };
        Ok(Planned {
            plan: StreamPlan::over(node, vec![left.plan, right.plan]),
            lineage,
            sources,
            updating,
        })
    }
}

impl StreamPlanner<'_> {
    /// A join of the stream with a bounded table: the stream's side streams;
    /// the other is read once, in batch, and looked up.
    pub(super) fn lookup_join(
        &mut self,
        join: &datafusion::logical_expr::Join,
        stream_is_left: bool,
    ) -> Result<Planned> {
        let (stream_side, table_side) = if stream_is_left {
            (&join.left, &join.right)
        } else {
            (&join.right, &join.left)
        };
        // The table side is plain batch, as it was before lowering: lower
        // its windows as batch does.
        let table_side = &unlowered(table_side)?;
        let table_plan =
            crate::plan::LowerWindows.analyze(table_side.clone(), self.state.config_options())?;
        // An updating stream is looked up too: the table does not change, so
        // the join of a change is the change of the join.
        let stream = self.lowered(stream_side)?;
        let (stream_keys, table_keys): (Vec<&Expr>, Vec<&Expr>) = join
            .on
            .iter()
            .map(|(l, r)| if stream_is_left { (l, r) } else { (r, l) })
            .unzip();
        let stream_keys = stream_keys
            .into_iter()
            .map(|k| self.physical(k, stream_side.schema()))
            .collect::<Result<Vec<_>>>()?;
        let table_keys = table_keys
            .into_iter()
            .map(|k| self.physical(k, table_side.schema()))
            .collect::<Result<Vec<_>>>()?;
        let pairs_schema = join.left.schema().join(join.right.schema())?;
        let filter = join
            .filter
            .as_ref()
            .map(|f| self.physical(f, &pairs_schema))
            .transpose()?;
        let join_type = join.join_type;
        let pairs_schema = Arc::new(pairs_schema.as_arrow().clone());
        let schema = Arc::new(join.schema.as_arrow().clone());
        // Refused kinds are refused now; the table is read when the query starts.
        LookupJoinOperator::try_new(
            join_type,
            stream_is_left,
            stream_keys.clone(),
            RecordBatch::new_empty(Arc::new(table_plan.schema().as_arrow().clone())),
            table_keys.clone(),
            filter.clone(),
            Arc::clone(&pairs_schema),
            Arc::clone(&schema),
        )?;
        let tables = tables_of(table_side);
        let name = format!(
            "LookupJoin: {join_type} join, the stream {} {}, read when the query starts",
            if stream_is_left { "left of" } else { "right of" },
            match tables.is_empty() {
                true => "constant rows".to_string(),
                false => format!("bounded table {}", tables.join(", ")),
            }
        );
        let node = LookupJoinNode {
            name,
            table: table_plan,
            session: self.state.clone(),
            join_type,
            stream_is_left,
            stream_keys,
            table_keys,
            filter,
            pairs_schema,
            schema,
        };
        // The stream's window bounds move right by the table's width when the
        // table's columns come first.
        let offset = if stream_is_left {
            0
        } else {
            table_side.schema().fields().len()
        };
        let lineage = stream.lineage.and_then(|l| l.remap(|i| Some(i + offset)));
        Ok(self.then(&stream, StreamNode::LookupJoin(Box::new(node)), lineage))
    }
}

impl StreamPlanner<'_> {
    /// `UNION ALL` of streams (or of streams and tables): every input streams.
    pub(super) fn union(&mut self, union: &datafusion::logical_expr::Union) -> Result<Planned> {
        let mut inputs = Vec::with_capacity(union.inputs.len());
        for input in &union.inputs {
            inputs.push(self.lowered(input)?);
        }
        if inputs.is_empty() {
            return plan_err!("a UNION with no inputs");
        }
        let sources = inputs.iter().fold(Sources::none(), |all, i| all.and(&i.sources));
        let schema = Arc::new(union.schema.as_arrow().clone());
        let node = StreamNode::Union {
            inputs: inputs.len(),
            schema,
        };
        let plan = StreamPlan::over(node, inputs.iter().map(|i| Arc::clone(&i.plan)).collect());
        // Window bounds survive a union only where every input has them at
        // the same place, of the same window.
        let lineage = inputs
            .iter()
            .map(|i| i.lineage)
            .reduce(|a, b| match (a, b) {
                (Some(a), Some(b)) if a == b => Some(a),
                _ => None,
            })
            .flatten();
        Ok(Planned {
            plan,
            lineage,
            sources,
            updating: inputs.iter().find_map(|i| i.updating.clone()),
        })
    }
}

impl StreamPlanner<'_> {
    /// What the sources `plan` reads are like, views included (before
    /// planning it: a join chooses its kind by them).
    pub(super) fn sources_of(&self, plan: &LogicalPlan) -> Sources {
        let mut sources = Sources::none();
        self.visit_tables(plan, &mut |table, info| {
            sources = sources.and(&Sources::of_table(table, info));
            true
        });
        sources
    }
}

/// Where a join of two streams finds its window: both sides windowed by the
/// same window and joined on their `window_end`s (or `window_time`s). The
/// left and right `window_end` columns, and the bounds in the join's output,
/// where a window's rows come together (a window join emits at its close).
pub(super) fn window_join_bounds(
    join: &datafusion::logical_expr::Join,
    left: &Planned,
    right: &Planned,
) -> Option<(WindowBound, WindowBound, Option<WindowLineage>)> {
    use datafusion::common::JoinType;
    let (l, r) = (left.lineage?, right.lineage?);
    if l.kind != r.kind || l.panes || r.panes {
        return None;
    }
    let role = |expr: &Expr, schema: &DFSchema, lineage: &WindowLineage| match strip_alias(expr) {
        Expr::Column(c) => schema.index_of_column(c).ok().and_then(|i| lineage.role(i)),
        _ => None,
    };
    // A fixed-size window is named by its start too.
    let size = match l.kind {
        WindowKind::Tumble { size, .. } | WindowKind::Hop { size, .. } => Some(size),
        _ => None,
    };
    let on_window = join.on.iter().any(|(a, b)| {
        let (ra, rb) = (role(a, join.left.schema(), &l), role(b, join.right.schema(), &r));
        ra == rb
            && match ra {
                Some(WindowColumn::End | WindowColumn::Time) => true,
                Some(WindowColumn::Start) => size.is_some(),
                None => false,
            }
    });
    if !on_window {
        return None;
    }
    // Where each side's window ends: its window_end, window_time + 1 ms, or
    // window_start + the size.
    let bound = |lineage: &WindowLineage| {
        lineage
            .end
            .map(WindowBound::end)
            .or_else(|| {
                lineage.time.map(|column| WindowBound {
                    column,
                    to_end: MILLISECOND,
                })
            })
            .or_else(|| {
                Some(WindowBound {
                    column: lineage.start?,
                    to_end: size?,
                })
            })
    };
    let (left_end, right_end) = (bound(&l)?, bound(&r)?);
    let width = join.left.schema().fields().len();
    let output = match join.join_type {
        JoinType::RightSemi | JoinType::RightAnti => Some(r),
        JoinType::Right => r.remap(|i| Some(i + width)),
        // Either side's bounds may be NULL-padded.
        JoinType::Full => None,
        _ => Some(l),
    };
    let output = output.map(|lineage| WindowLineage {
        complete: true,
        ..lineage
    });
    Some((left_end, right_end, output))
}

/// The tables `plan` scans, by name (a lowered node's, those its original
/// scans).
fn tables_of(plan: &LogicalPlan) -> Vec<String> {
    let mut tables = Vec::new();
    let _ = plan.apply(|node| {
        if extension::Lowered::of(node).is_some() {
            tables.extend(tables_of(logical(node)));
            return Ok(datafusion::common::tree_node::TreeNodeRecursion::Jump);
        }
        if let LogicalPlan::TableScan(scan) = node {
            tables.push(scan.table_name.to_string());
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    tables
}

/// Whether `plan` reads a table (rather than only constants).
pub(super) fn reads_table(plan: &LogicalPlan) -> bool {
    !tables_of(plan).is_empty()
}

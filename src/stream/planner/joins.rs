//! Planning joins and unions: of two streams, or of a stream with a bounded
//! table read when the query starts (a lookup).

use super::*;

impl StreamPlanner<'_> {
    /// A join: of two streams (both sides stream), or of a stream with a
    /// bounded table (a lookup). A side is a lookup table when it is bounded
    /// and the other is not; in a bounded replay, when it has no watermark
    /// while the other has one, or reads no table at all (HOP's shifts).
    pub(super) async fn join(&mut self, join: &datafusion::logical_expr::Join) -> Result<Planned> {
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
                // Until two streams can meet, a replay looks the side its
                // join does not keep up.
                _ => Some(matches!(
                    join.join_type,
                    JoinType::Right | JoinType::RightSemi | JoinType::RightAnti
                )),
            },
        };
        match lookup_side {
            // `Some(true)`: the left side is the table.
            Some(table_is_left) => self.lookup_join(join, !table_is_left).await,
            None => self.stream_join(join).await,
        }
    }
}

impl StreamPlanner<'_> {
    /// A join of two streams.
    pub(super) async fn stream_join(&mut self, join: &datafusion::logical_expr::Join) -> Result<Planned> {
        not_impl_err!(
            "a {} join of two unbounded sources is not supported yet; a stream joins bounded tables (a lookup)",
            join.join_type
        )
    }
}

impl StreamPlanner<'_> {
    /// A join of the stream with a bounded table: the stream's side streams;
    /// the other is read once, in batch, and looked up.
    pub(super) async fn lookup_join(
        &mut self,
        join: &datafusion::logical_expr::Join,
        stream_is_left: bool,
    ) -> Result<Planned> {
        let (stream_side, table_side) = if stream_is_left {
            (&join.left, &join.right)
        } else {
            (&join.right, &join.left)
        };
        // The table side is plain batch: lower its windows as batch does.
        let table_plan =
            crate::plan::LowerWindows.analyze(table_side.as_ref().clone(), self.state.config_options())?;
        let physical = self.state.create_physical_plan(&table_plan).await?;
        let stream = self.node(stream_side, false).await?;
        stream.appended_only("a lookup join")?;
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
        let lookup = move |table: RecordBatch| {
            LookupJoinOperator::try_new(
                join_type,
                stream_is_left,
                stream_keys.clone(),
                table,
                table_keys.clone(),
                filter.clone(),
                Arc::clone(&pairs_schema),
                Arc::clone(&schema),
            )
        };
        // Refused kinds are refused now; the table is read when the query starts.
        lookup(RecordBatch::new_empty(physical.schema()))?;
        let build: Build = Box::new(move |table| Ok(Box::new(lookup(table)?) as Box<dyn Operator>));
        let name = format!(
            "LookupJoin: {join_type} join, the stream {} a bounded table read when the query starts",
            if stream_is_left { "left of" } else { "right of" }
        );
        let operator = DeferredOperator::new(name, physical, build);
        // The stream's window bounds move right by the table's width when the
        // table's columns come first.
        let offset = if stream_is_left {
            0
        } else {
            table_side.schema().fields().len()
        };
        let lineage = stream.lineage.and_then(|l| l.remap(|i| Some(i + offset)));
        Ok(self.then(&stream, Box::new(operator), lineage))
    }
}

impl StreamPlanner<'_> {
    /// `UNION ALL` of streams (or of streams and tables): every input streams.
    pub(super) async fn union(&mut self, union: &datafusion::logical_expr::Union) -> Result<Planned> {
        let mut inputs = Vec::with_capacity(union.inputs.len());
        for input in &union.inputs {
            inputs.push(self.node(input, false).await?);
        }
        let Some(first) = inputs.first() else {
            return plan_err!("a UNION with no inputs");
        };
        let sources = inputs
            .iter()
            .skip(1)
            .fold(first.sources.clone(), |all, i| all.and(&i.sources));
        let schema = Arc::new(union.schema.as_arrow().clone());
        let operator = UnionOperator::new(inputs.len(), schema);
        let tail = self
            .graph
            .merge(inputs.iter().map(|i| i.tail).collect(), Box::new(operator))?;
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
            tail,
            lineage,
            sources,
            updating: inputs.iter().any(|i| i.updating),
        })
    }
}

impl StreamPlanner<'_> {
    /// What the sources `plan` reads are like, views included (before
    /// planning it: a join chooses its kind by them).
    pub(super) fn sources_of(&self, plan: &LogicalPlan) -> Sources {
        let mut sources = Sources {
            bounded: true,
            unwatermarked: None,
            watermarked: true,
            late_path: None,
        };
        let _ = plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(provider) = source_as_provider(&scan.source)
            {
                let of_scan = match provider.get_logical_plan() {
                    Some(view) => self.sources_of(&view),
                    None => match self.catalog.source_of(&provider) {
                        Some(info) => Sources {
                            bounded: info.boundedness == Boundedness::Bounded,
                            unwatermarked: None,
                            watermarked: info.watermark.is_some(),
                            late_path: None,
                        },
                        None => Sources {
                            bounded: true,
                            unwatermarked: None,
                            watermarked: false,
                            late_path: None,
                        },
                    },
                };
                sources = sources.and(&of_scan);
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
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
) -> Option<(usize, usize, Option<WindowLineage>)> {
    use datafusion::common::JoinType;
    let (l, r) = (left.lineage?, right.lineage?);
    if l.kind != r.kind || l.panes || r.panes {
        return None;
    }
    let role = |expr: &Expr, schema: &DFSchema, lineage: &WindowLineage| match strip_alias(expr) {
        Expr::Column(c) => schema.index_of_column(c).ok().and_then(|i| lineage.role(i)),
        _ => None,
    };
    let on_window = join.on.iter().any(|(a, b)| {
        let (ra, rb) = (role(a, join.left.schema(), &l), role(b, join.right.schema(), &r));
        ra == rb && matches!(ra, Some(WindowColumn::End | WindowColumn::Time))
    });
    let (left_end, right_end) = (l.end?, r.end?);
    if !on_window {
        return None;
    }
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

/// Whether `plan` reads a table (rather than only constants).
pub(super) fn reads_table(plan: &LogicalPlan) -> bool {
    plan.exists(|n| Ok(matches!(n, LogicalPlan::TableScan(_))))
        .unwrap_or(true)
}

//! The build step: a [`StreamPlan`] made into an operator [`Graph`], each
//! node an operator instance. Building reads the plan only, so one plan can
//! be built again; runtime parts (metrics, late-row writers) are given here,
//! not kept in the plan.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::error::Result;

use super::{StreamNode, StreamPlan};
use crate::stream::StreamMetrics;
use crate::stream::graph::{Graph, GraphBuilder, Tail};
use crate::stream::late::LateRows;
use crate::stream::operator::{MultiInputOperator, Operator};
use crate::stream::operators::dedup::DedupOperator;
use crate::stream::operators::deferred::{Build, DeferredOperator, Planning};
use crate::stream::operators::emit_on_watermark::EmitOnWatermarkOperator;
use crate::stream::operators::final_aggregate::FinalAggregateOperator;
use crate::stream::operators::interval_join::IntervalJoinOperator;
use crate::stream::operators::lookup_join::LookupJoinOperator;
use crate::stream::operators::over_aggregate::OverAggregateOperator;
use crate::stream::operators::session_aggregate::SessionAggregateOperator;
use crate::stream::operators::sort::SortPerWatermarkOperator;
use crate::stream::operators::stateless::{
    FilterOperator, LimitOperator, ProjectionOperator, RenameOperator,
};
use crate::stream::operators::stream_join::StreamJoinOperator;
use crate::stream::operators::top_n::TopNOperator;
use crate::stream::operators::union::UnionOperator;
use crate::stream::operators::unnest::UnnestOperator;
use crate::stream::operators::updating_aggregate::{
    UpdatingAggregateOperator, UpdatingAggregateSpec, WindowClose,
};
use crate::stream::operators::window_aggregate::WindowAggregateOperator;
use crate::stream::operators::window_functions::WindowFunctionOperator;
use crate::stream::operators::window_join::WindowJoinOperator;
use crate::stream::operators::window_top_n::WindowTopNOperator;

/// An operator of one input or of several.
enum Built {
    Single(Box<dyn Operator>),
    Multi(Box<dyn MultiInputOperator>),
}

impl StreamPlan {
    /// The operator graph of this plan, whose operators count what they see
    /// into `metrics`.
    pub fn build(&self, metrics: &Arc<StreamMetrics>) -> Result<Graph> {
        let mut graph = GraphBuilder::default();
        let root = self.build_into(&mut graph, metrics)?;
        graph.finish(root)
    }

    fn build_into(&self, graph: &mut GraphBuilder, metrics: &Arc<StreamMetrics>) -> Result<Tail> {
        if let StreamNode::Source(spec) = &self.node {
            return Ok(graph.source(spec.clone()));
        }
        let inputs = self
            .inputs
            .iter()
            .map(|input| input.build_into(graph, metrics))
            .collect::<Result<Vec<_>>>()?;
        match (operator(&self.node, metrics)?, inputs.as_slice()) {
            (Built::Single(operator), [input]) => Ok(graph.chain(*input, operator)),
            (Built::Multi(operator), _) => graph.merge(inputs, operator),
            (Built::Single(operator), _) => datafusion::common::internal_err!(
                "{} takes one input, given {}",
                operator.name(),
                inputs.len()
            ),
        }
    }
}

/// The operator of `node`.
fn operator(node: &StreamNode, metrics: &Arc<StreamMetrics>) -> Result<Built> {
    let late = |path: &super::LatePath| LateRows::new(Arc::clone(metrics), path.clone());
    let single = |operator: Box<dyn Operator>| Ok(Built::Single(operator));
    match node {
        StreamNode::Source(spec) => {
            datafusion::common::internal_err!("source '{}' is not an operator", spec.table)
        }
        StreamNode::Filter { predicate } => single(Box::new(FilterOperator::new(Arc::clone(predicate)))),
        StreamNode::Projection { exprs, schema } => single(Box::new(ProjectionOperator::new(
            exprs.clone(),
            Arc::clone(schema),
        ))),
        StreamNode::Rename { schema } => single(Box::new(RenameOperator::new(Arc::clone(schema)))),
        StreamNode::Limit { skip, fetch } => single(Box::new(LimitOperator::new(*skip, *fetch))),
        StreamNode::Unnest(spec) => single(Box::new(UnnestOperator::try_new(spec.clone())?)),
        StreamNode::WindowAggregate {
            spec,
            late: path,
            emit_changes,
        } => {
            let operator = WindowAggregateOperator::new(spec.clone(), late(path));
            match emit_changes {
                true => single(Box::new(operator.emit_changes()?)),
                false => single(Box::new(operator)),
            }
        }
        StreamNode::SessionAggregate { spec, late: path } => single(Box::new(
            SessionAggregateOperator::try_new(spec.clone(), late(path))?,
        )),
        StreamNode::UpdatingAggregate(node) => {
            let spec = UpdatingAggregateSpec {
                aggregates: node.aggregates.clone(),
                group_columns: node.group_columns.clone(),
                schema: Arc::clone(&node.schema),
                retracting: node.retracting,
                ttl: node.ttl,
                emit_every: node.emit_every,
                windows: node.windows.as_ref().map(|w| WindowClose {
                    column: w.column,
                    to_end: w.to_end,
                    late: late(&w.late),
                    emit_changes: w.emit_changes,
                }),
            };
            let operator = UpdatingAggregateOperator::try_new(spec)?.with_metrics(Arc::clone(metrics));
            single(Box::new(operator))
        }
        StreamNode::FinalAggregate {
            aggregates,
            group_columns,
            schema,
            input_schema,
        } => single(Box::new(FinalAggregateOperator::try_new(
            aggregates.clone(),
            group_columns.clone(),
            Arc::clone(schema),
            Arc::clone(input_schema),
        )?)),
        StreamNode::LookupJoin(node) => {
            let node = node.as_ref().clone();
            let (name, table, session) = (node.name.clone(), node.table.clone(), node.session.clone());
            let plan: Planning =
                Box::new(move || Box::pin(async move { session.create_physical_plan(&table).await }));
            let build: Build = Box::new(move |rows: RecordBatch| {
                let operator = LookupJoinOperator::try_new(
                    node.join_type,
                    node.stream_is_left,
                    node.stream_keys,
                    rows,
                    node.table_keys,
                    node.filter,
                    node.pairs_schema,
                    node.schema,
                )?;
                Ok(Box::new(operator) as Box<dyn Operator>)
            });
            single(Box::new(DeferredOperator::new(name, plan, build)))
        }
        StreamNode::StreamJoin {
            spec,
            ttl,
            updating_inputs,
        } => {
            let mut operator = StreamJoinOperator::try_new(spec.clone(), *ttl)?;
            if *updating_inputs {
                operator = operator.with_updating_inputs(Arc::clone(metrics));
            }
            Ok(Built::Multi(Box::new(operator)))
        }
        StreamNode::IntervalJoin {
            spec,
            bounds,
            late: [left, right],
        } => Ok(Built::Multi(Box::new(IntervalJoinOperator::try_new(
            spec.clone(),
            *bounds,
            [late(left), late(right)],
        )?))),
        StreamNode::WindowJoin {
            spec,
            left_end,
            right_end,
            late: [left, right],
        } => Ok(Built::Multi(Box::new(WindowJoinOperator::try_new(
            spec.clone(),
            *left_end,
            *right_end,
            [late(left), late(right)],
        )?))),
        StreamNode::Union { inputs, schema } => Ok(Built::Multi(Box::new(UnionOperator::new(
            *inputs,
            Arc::clone(schema),
        )))),
        StreamNode::WindowFunctions {
            functions,
            input_schema,
            schema,
            at_end,
        } => single(Box::new(WindowFunctionOperator::new(
            functions.clone(),
            Arc::clone(input_schema),
            Arc::clone(schema),
            *at_end,
        ))),
        StreamNode::WindowTopN {
            functions,
            close,
            input_schema,
            schema,
            limit,
            late: path,
        } => single(Box::new(WindowTopNOperator::new(
            functions.clone(),
            *close,
            Arc::clone(input_schema),
            Arc::clone(schema),
            *limit,
            late(path),
        ))),
        StreamNode::OverAggregate { spec, late: path } => single(Box::new(OverAggregateOperator::try_new(
            spec.clone(),
            late(path),
        )?)),
        StreamNode::Dedup {
            function,
            time,
            input_schema,
            schema,
            ttl,
            late: path,
        } => single(Box::new(DedupOperator::try_new(
            Arc::clone(function),
            Arc::clone(time),
            Arc::clone(input_schema),
            Arc::clone(schema),
            *ttl,
            late(path),
        )?)),
        StreamNode::TopN(node) => {
            let operator = TopNOperator::try_new(
                node.ranking.clone(),
                node.limit,
                Arc::clone(&node.input_schema),
                Arc::clone(&node.schema),
                node.ttl,
            )?
            .skipping(node.skip);
            match node.retracting {
                true => single(Box::new(operator.retracting(Arc::clone(metrics)))),
                false => single(Box::new(operator)),
            }
        }
        StreamNode::EmitOnWatermark {
            time,
            schema,
            late: path,
        } => single(Box::new(EmitOnWatermarkOperator::new(
            Arc::clone(time),
            Arc::clone(schema),
            late(path),
        ))),
        StreamNode::SortPerWatermark {
            order,
            schema,
            fetch,
            at_end,
        } => single(Box::new(SortPerWatermarkOperator::new(
            order.clone(),
            Arc::clone(schema),
            *fetch,
            *at_end,
        ))),
    }
}

//! The stream plan: what a continuous query runs, as data.
//!
//! The planner (`super::planner`) maps DataFusion's optimized logical plan
//! to a tree of [`StreamPlan`] nodes, one [`StreamNode`] each: it decides
//! which operator runs where and with what, and nothing else. It opens no
//! file, keeps no runtime metrics and builds no operator. Named rewrite
//! rules (`rules.rs`, [`StreamPlan::optimized`]) then simplify the tree, and
//! the build step ([`StreamPlan::build`], `build.rs`) turns it into an
//! operator graph through one `match` over the node kinds, so the compiler
//! checks that every kind is built; a plan can be built again (a restore, a
//! partition) because building only reads it.
//!
//! Rows flow from the leaves (sources) to the root; a node with several
//! inputs (a union, a join of two streams) merges them by watermark.

mod build;
mod rules;

pub use rules::{StreamRule, rules};

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::JoinType;
use datafusion::physical_expr::window::WindowExpr;
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};

use super::groups::{Aggregates, GroupColumn};
use super::operator::Nanos;
use super::operators::interval_join::IntervalBounds;
use super::operators::join::JoinSpec;
use super::operators::over_aggregate::OverAggregateSpec;
use super::operators::session_aggregate::SessionAggregateSpec;
use super::operators::top_n::Ranking;
use super::operators::unnest::UnnestSpec;
use super::operators::window_aggregate::WindowAggregateSpec;
use super::operators::window_join::WindowBound;
use super::operators::window_top_n;
use super::source::SourceSpec;

/// A node of the stream plan and the nodes it reads from, in port order.
#[derive(Clone)]
pub struct StreamPlan {
    /// What this node does.
    pub node: StreamNode,
    /// Its inputs: none for a source, one for most, two or more for a merge.
    pub inputs: Vec<Arc<StreamPlan>>,
}

impl StreamPlan {
    /// A source: a leaf.
    pub fn source(spec: SourceSpec) -> Arc<StreamPlan> {
        Arc::new(StreamPlan {
            node: StreamNode::Source(spec),
            inputs: Vec::new(),
        })
    }

    /// `node` over `inputs`.
    pub fn over(node: StreamNode, inputs: Vec<Arc<StreamPlan>>) -> Arc<StreamPlan> {
        Arc::new(StreamPlan { node, inputs })
    }
}

/// Where a windowed operator sends the rows it finds late: counted always,
/// and written to `late.path` when the table declares one.
pub type LatePath = Option<PathBuf>;

/// What one node of the stream plan does, with everything its operator is
/// built from. Expressions are physical, planned over the node's input.
#[derive(Clone)]
pub enum StreamNode {
    /// A table's rows and their watermark.
    Source(SourceSpec),
    /// Rows for which `predicate` holds.
    Filter { predicate: Arc<dyn PhysicalExpr> },
    /// `exprs` over each row, as columns of `schema`.
    Projection {
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
    },
    /// The same columns under the names of `schema` (a subquery's alias).
    Rename { schema: SchemaRef },
    /// `OFFSET skip LIMIT fetch` of appended rows.
    Limit { skip: usize, fetch: Option<usize> },
    /// `unnest(...)`: each row as many rows as its lists have elements.
    Unnest(UnnestSpec),
    /// TUMBLE, HOP or CUMULATE aggregates, each window emitted at its close
    /// (or, with `emit_changes`, as it grows).
    WindowAggregate {
        spec: WindowAggregateSpec,
        late: LatePath,
        emit_changes: bool,
    },
    /// SESSION aggregates, each session emitted at its close.
    SessionAggregate {
        spec: SessionAggregateSpec,
        late: LatePath,
    },
    /// A GROUP BY that updates its result as rows come (a changelog), or one
    /// keyed by window bounds over an updating input.
    UpdatingAggregate(UpdatingAggregateNode),
    /// A GROUP BY of a bounded replay aggregated to the end of input,
    /// emitted once (as batch does).
    FinalAggregate {
        aggregates: Aggregates,
        group_columns: Vec<GroupColumn>,
        schema: SchemaRef,
        input_schema: SchemaRef,
    },
    /// A join of the stream with a bounded table, read when the query starts.
    LookupJoin(Box<LookupJoinNode>),
    /// A regular join of two streams: every row kept (for `state.ttl`, or
    /// for ever).
    StreamJoin {
        spec: JoinSpec,
        ttl: Option<Nanos>,
        /// An input is a changelog: the join takes back what its retracted
        /// rows made.
        updating_inputs: bool,
    },
    /// A join of two streams whose condition bounds one side's time by the
    /// other's.
    IntervalJoin {
        spec: JoinSpec,
        bounds: IntervalBounds,
        late: [LatePath; 2],
    },
    /// A join of two streams windowed alike, on their window bounds.
    WindowJoin {
        spec: JoinSpec,
        left_end: WindowBound,
        right_end: WindowBound,
        late: [LatePath; 2],
    },
    /// `UNION ALL` of `inputs` streams.
    Union { inputs: usize, schema: SchemaRef },
    /// Window functions per emission of a windowed aggregate, or (`at_end`)
    /// over the whole input of a bounded replay.
    WindowFunctions {
        functions: Vec<Arc<dyn WindowExpr>>,
        input_schema: SchemaRef,
        schema: SchemaRef,
        at_end: bool,
    },
    /// Window functions per window of a window TVF's rows, at its close
    /// (window Top-N and dedup).
    WindowTopN {
        functions: Vec<Arc<dyn WindowExpr>>,
        close: window_top_n::WindowClose,
        input_schema: SchemaRef,
        schema: SchemaRef,
        limit: Option<usize>,
        late: LatePath,
    },
    /// OVER aggregations ordered by event time, each row out once the
    /// watermark passes it.
    OverAggregate { spec: OverAggregateSpec, late: LatePath },
    /// `ROW_NUMBER() ... = 1` by event time: each key's first row.
    Dedup {
        function: Arc<dyn WindowExpr>,
        time: Arc<dyn PhysicalExpr>,
        input_schema: SchemaRef,
        schema: SchemaRef,
        ttl: Option<Nanos>,
        late: LatePath,
    },
    /// The best rows per key as a changelog of ranks (`ROW_NUMBER() <= N`,
    /// `ORDER BY ... LIMIT` or `LIMIT` over an updating input).
    TopN(TopNNode),
    /// `EMIT ON WINDOW CLOSE` of a query with no window: each row once the
    /// watermark passes its `time`.
    EmitOnWatermark {
        time: Arc<dyn PhysicalExpr>,
        schema: SchemaRef,
        late: LatePath,
    },
    /// `ORDER BY`, per emission of windows (or, `at_end`, of a bounded replay).
    SortPerWatermark {
        order: Vec<PhysicalSortExpr>,
        schema: SchemaRef,
        fetch: Option<usize>,
        at_end: bool,
    },
}

/// An updating aggregate (see [`StreamNode::UpdatingAggregate`]).
#[derive(Clone)]
pub struct UpdatingAggregateNode {
    pub aggregates: Aggregates,
    pub group_columns: Vec<GroupColumn>,
    pub schema: SchemaRef,
    /// The input is a changelog: rows are taken back.
    pub retracting: bool,
    /// `state.ttl`: a group no row touched for this long is dropped.
    pub ttl: Option<Nanos>,
    /// `sluice.emit.interval`: changes folded and emitted this often.
    pub emit_every: Option<std::time::Duration>,
    /// Keyed by window bounds: where each window closes.
    pub windows: Option<ClosingWindows>,
}

/// The window an updating aggregate's group belongs to closes at the value
/// of `column` plus `to_end`; `emit_changes` shows it as it grows.
#[derive(Clone)]
pub struct ClosingWindows {
    pub column: usize,
    pub to_end: Nanos,
    pub late: LatePath,
    pub emit_changes: bool,
}

/// A lookup join (see [`StreamNode::LookupJoin`]).
#[derive(Clone)]
pub struct LookupJoinNode {
    /// As EXPLAIN shows it.
    pub name: String,
    /// The table side, a batch plan (windows lowered), made physical and
    /// run when the query starts...
    pub table: datafusion::logical_expr::LogicalPlan,
    /// ...by this session.
    pub session: datafusion::execution::session_state::SessionState,
    pub join_type: JoinType,
    pub stream_is_left: bool,
    pub stream_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub table_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub pairs_schema: SchemaRef,
    pub schema: SchemaRef,
}

/// A Top-N (see [`StreamNode::TopN`]).
#[derive(Clone)]
pub struct TopNNode {
    pub ranking: Ranking,
    /// Rows kept per key (`skip` of them not shown).
    pub limit: usize,
    pub skip: usize,
    pub input_schema: SchemaRef,
    pub schema: SchemaRef,
    pub ttl: Option<Nanos>,
    /// The input is a changelog.
    pub retracting: bool,
}

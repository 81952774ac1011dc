//! The continuous executor: incremental operators over unbounded sources.
//!
//! The plan is analyzed without batch's window lowering and optimized by
//! DataFusion, then [`planner`] maps it to a [`graph::Graph`]: sources at the
//! leaves, [`operator::Operator`]s and [`operator::MultiInputOperator`]s
//! (unions, joins) above them, one sink at the root. The [`driver`] reads
//! every source on its own task and pushes their events through the graph;
//! rows are sent as soon as an operator emits them, into a bounded channel,
//! and dropping the result stream stops the query.

pub mod changelog;
pub mod driver;
pub mod graph;
pub mod groups;
pub mod insert;
pub mod interval_bounds;
pub mod late;
pub mod memory;
pub mod metrics;
pub mod operator;
pub mod operators;
pub mod planner;
mod rolling_sink;
pub mod source;
pub mod state_options;
mod stop;

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;

pub use changelog::{
    CHANGE_COLUMN, Change, Changes, changelog_schema, is_changelog, unmarked_schema, with_changes,
};
pub use driver::execute;
pub use insert::execute_insert;
pub use metrics::StreamMetrics;
pub use operators::updating_aggregate::EmitInterval;
pub use stop::leave_signals_to_the_shell;

use crate::plan::SourceCatalog;
use crate::sql::Emit;
use planner::{Pipeline, StreamPlanner};

/// Plan `plan` for continuous execution (for EXPLAIN and [`execute`]).
pub async fn plan(
    state: &SessionState,
    plan: &LogicalPlan,
    emit: Option<Emit>,
    catalog: &SourceCatalog,
    metrics: Arc<StreamMetrics>,
) -> Result<Pipeline> {
    let optimized = state.optimize(plan)?;
    StreamPlanner::new(state, catalog, metrics)
        .with_emit(emit)
        .plan(&optimized)
        .await
}

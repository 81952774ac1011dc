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
pub mod checkpoint;
pub mod driver;
pub mod graph;
pub mod groups;
pub mod idle;
pub mod insert;
pub mod interval_bounds;
pub mod late;
pub mod memory;
pub mod metrics;
pub mod operator;
pub mod operators;
pub mod plan;
pub mod planner;
pub mod process_memory;
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

/// Whether `plan` reads a table whose late rows are written aside
/// (`'late.policy' = 'side-output'`).
fn writes_late_rows_aside(plan: &LogicalPlan, catalog: &SourceCatalog) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
        {
            found |= catalog
                .source_of(&provider)
                .is_some_and(|s| s.late_path.is_some());
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    found
}

/// Plan `plan` for continuous execution (for EXPLAIN and [`execute`]).
pub async fn plan(
    state: &SessionState,
    plan: &LogicalPlan,
    emit: Option<Emit>,
    catalog: &SourceCatalog,
    metrics: Arc<StreamMetrics>,
) -> Result<Pipeline> {
    // Over a stream PROCTIME() reads the clock; a bounded replay keeps
    // batch's meaning (the query's start time), so that it gives batch's rows.
    let live = crate::plan::choose_executor(plan, catalog)?
        .sources
        .iter()
        .any(|s| s.boundedness != crate::connectors::Boundedness::Bounded);
    let plan = match live {
        true => crate::plan::proctime::live_proctime(plan.clone())?,
        false => plan.clone(),
    };
    // The continuous session rewrites scalar subqueries into joins.
    crate::plan::scalar_subqueries::check_single_row_subqueries(&plan)?;
    let optimized = if writes_late_rows_aside(&plan, catalog) {
        // Late rows written aside keep every column of their table: no
        // column is pruned from the scans.
        let rules = state
            .optimizers()
            .iter()
            .filter(|r| r.name() != "optimize_projections")
            .cloned()
            .collect();
        let whole = datafusion::execution::SessionStateBuilder::new_from_existing(state.clone())
            .with_optimizer_rules(rules)
            .build();
        whole.optimize(&plan)?
    } else {
        state.optimize(&plan)?
    };
    let pipeline = StreamPlanner::new(state, catalog)
        .with_emit(emit)
        .with_live_clock(live, &optimized)?
        .plan(&optimized)?
        .build(&metrics)?;
    // Whoever shows the result folds its changes by this key.
    if let Some(key) = &pipeline.key {
        let _ = metrics.result_key.set(key.clone());
    }
    Ok(pipeline)
}

//! The batch executor: a bounded query's logical plan runs on DataFusion as is.
//!
//! There is deliberately nothing here but the hand-over: DataFusion optimizes,
//! plans physically and executes. Sluice's dialect reaches this point already
//! rewritten into plain relational plans.

use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;

/// Run a plan to a stream of record batches. DDL and `SET` take effect here
/// and yield an empty stream.
pub async fn execute(ctx: &SessionContext, plan: LogicalPlan) -> Result<SendableRecordBatchStream> {
    ctx.execute_logical_plan(plan).await?.execute_stream().await
}

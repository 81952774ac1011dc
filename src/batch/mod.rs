//! The batch executor: a bounded query's logical plan runs on DataFusion as is.
//!
//! There is deliberately nothing here but the hand-over: DataFusion optimizes,
//! plans physically and executes. Sluice's dialect reaches this point already
//! rewritten into plain relational plans. The one exception is output to
//! files, which `output` stages and renames into place.

mod output;

use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;

/// Run a plan to a stream of record batches. DDL and `SET` take effect here
/// and yield an empty stream.
pub async fn execute(ctx: &SessionContext, plan: LogicalPlan) -> Result<SendableRecordBatchStream> {
    match &plan {
        LogicalPlan::Copy(copy) => return output::copy(ctx, copy).await,
        LogicalPlan::Dml(dml) => {
            if let Some((target, op)) = output::insert_target(dml) {
                return output::insert(ctx, dml, target, op).await;
            }
        }
        _ => {}
    }
    ctx.execute_logical_plan(plan).await?.execute_stream().await
}

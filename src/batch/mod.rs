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
    Ok(execute_with_plan(ctx, plan).await?.0)
}

/// [`execute`], also giving the physical plan that runs, whose metrics
/// (rows and bytes its scans have read) a progress display can read while
/// it runs; `None` for output to files, which `output` stages.
pub async fn execute_with_plan(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> Result<(
    SendableRecordBatchStream,
    Option<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>,
)> {
    match &plan {
        LogicalPlan::Copy(copy) => return Ok((output::copy(ctx, copy).await?, None)),
        LogicalPlan::Dml(dml) => {
            if let Some((target, op)) = output::insert_target(dml) {
                return Ok((output::insert(ctx, dml, target, op).await?, None));
            }
        }
        _ => {}
    }
    let frame = ctx.execute_logical_plan(plan).await?;
    let task = std::sync::Arc::new(frame.task_ctx());
    let physical = frame.create_physical_plan().await?;
    let stream = datafusion::physical_plan::execute_stream(std::sync::Arc::clone(&physical), task)?;
    Ok((stream, Some(physical)))
}

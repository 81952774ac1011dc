//! An operator built when the query starts from rows a batch plan reads then
//! (a lookup join's table), so that planning, and so `EXPLAIN`, reads
//! nothing: the batch plan is made physical (which may list files) and run
//! only when the operator opens.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::internal_err;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use futures::future::BoxFuture;

use crate::stream::checkpoint::StateSnapshot;
use crate::stream::operator::{Event, Nanos, Operator, StreamBatch};

/// Makes the operator from the rows the plan read.
pub type Build = Box<dyn FnOnce(RecordBatch) -> Result<Box<dyn Operator>> + Send>;

/// Makes the physical plan of the rows to read.
pub type Planning = Box<dyn FnOnce() -> BoxFuture<'static, Result<Arc<dyn ExecutionPlan>>> + Send>;

/// The operator, before and after it opens.
pub struct DeferredOperator {
    /// What EXPLAIN calls it before it is built.
    name: String,
    /// The plan of the rows to read when it opens; `None` once it did.
    plan: Option<Planning>,
    /// `Some` until it opens.
    build: Option<Build>,
    /// `Some` once it opened.
    operator: Option<Box<dyn Operator>>,
    /// The state a checkpoint gave before it opened (a restarted query
    /// restores before it opens): the operator takes it when built.
    restored: Option<StateSnapshot>,
}

impl DeferredOperator {
    /// An operator `name` that `build` makes out of what the plan `plan`
    /// makes reads.
    pub fn new(name: String, plan: Planning, build: Build) -> Self {
        Self {
            name,
            plan: Some(plan),
            build: Some(build),
            operator: None,
            restored: None,
        }
    }

    fn operator(&mut self) -> Result<&mut Box<dyn Operator>> {
        match self.operator.as_mut() {
            Some(operator) => Ok(operator),
            None => internal_err!("{} was given rows before it opened", self.name),
        }
    }
}

impl Operator for DeferredOperator {
    fn name(&self) -> String {
        match &self.operator {
            Some(operator) => operator.name(),
            None => self.name.clone(),
        }
    }

    fn open(&mut self, task: Arc<TaskContext>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let (Some(build), Some(plan)) = (self.build.take(), self.plan.take()) else {
                return Ok(()); // opened already
            };
            let plan = plan().await?;
            let schema = plan.schema();
            let batches = datafusion::physical_plan::collect(plan, task).await?;
            let rows = arrow::compute::concat_batches(&schema, &batches)?;
            let mut operator = build(rows)?;
            if let Some(state) = self.restored.take() {
                operator.restore(&state)?;
            }
            self.operator = Some(operator);
            Ok(())
        })
    }

    fn state(&self) -> Option<String> {
        match &self.operator {
            Some(operator) => operator.state(),
            None => Some("the table's rows, read once when the query starts (bounded)".into()),
        }
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        match (&mut self.operator, &self.restored) {
            (Some(operator), _) => operator.snapshot(into),
            // Not opened yet (the check at start, before a restore, has
            // nothing; after one, what it restored is the state still).
            (None, Some(restored)) => {
                *into = restored.clone();
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        match &mut self.operator {
            Some(operator) => operator.restore(from),
            None => {
                self.restored = Some(from.clone());
                Ok(())
            }
        }
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        self.operator()?.process(input, out)
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        self.operator()?.on_watermark(watermark, out)
    }

    fn on_end(&mut self, out: &mut Vec<Event>) -> Result<()> {
        self.operator()?.on_end(out)
    }

    fn is_finished(&self) -> bool {
        self.operator.as_ref().is_some_and(|o| o.is_finished())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operator::{END_OF_INPUT, RowWatermarks};
    use crate::stream::operators::sort::SortPerWatermarkOperator;
    use crate::stream::operators::testing::{batch, rows_text};
    use arrow::compute::SortOptions;
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::physical_expr::PhysicalSortExpr;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::empty::EmptyExec;

    fn rows() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]))
    }

    /// A sort by `v`, built when it opens (from a plan of no rows).
    fn deferred() -> DeferredOperator {
        let build: Build = Box::new(|_| {
            let order = vec![PhysicalSortExpr::new(
                Arc::new(Column::new("v", 0)),
                SortOptions::default(),
            )];
            Ok(Box::new(SortPerWatermarkOperator::new(
                order,
                rows(),
                None,
                false,
            )))
        });
        let plan: Planning =
            Box::new(|| Box::pin(async { Ok(Arc::new(EmptyExec::new(rows())) as Arc<dyn ExecutionPlan>) }));
        DeferredOperator::new("a sort".into(), plan, build)
    }

    #[tokio::test]
    async fn a_state_restored_before_it_opens_is_the_operators_once_built() {
        let task = datafusion::prelude::SessionContext::new().task_ctx();
        let mut first = deferred();
        // Before it opens there is nothing to keep (the check at start).
        let mut empty = StateSnapshot::default();
        first.snapshot(&mut empty).expect("a snapshot before it opens");
        assert!(empty.is_empty());
        first.open(Arc::clone(&task)).await.expect("it opens");
        let mut out = Vec::new();
        let held = StreamBatch::new(batch(&rows(), "(3) (1)"), RowWatermarks::Constant(0));
        first.process(held, &mut out).expect("rows");
        let mut state = StateSnapshot::default();
        first.snapshot(&mut state).expect("a snapshot");

        // A restarted query restores, then opens.
        let mut second = deferred();
        second.restore(&state).expect("kept until it opens");
        let mut again = StateSnapshot::default();
        second.snapshot(&mut again).expect("a snapshot before it opens");
        assert_eq!(again.rows(), 2, "what it restored is its state until it opens");
        second.open(task).await.expect("it opens");
        second.on_watermark(END_OF_INPUT, &mut out).expect("a watermark");
        let sorted: Vec<String> = out
            .iter()
            .filter_map(|e| match e {
                Event::Data(b) => Some(rows_text(b.batch.columns(), b.batch.num_rows())),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(sorted, ["(1)", "(3)"]);
    }
}

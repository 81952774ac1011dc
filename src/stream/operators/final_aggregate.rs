//! A GROUP BY without a window over a bounded replay (`--mode continuous`
//! over files or tables): rows are aggregated as they come and the result is
//! emitted once, when the input ends, as batch would. Over an unbounded
//! source the planner refuses it: that needs an updating aggregate.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::internal_err;
use datafusion::error::Result;
use datafusion::execution::TaskContext;

use crate::stream::checkpoint::{StateSnapshot, int_columns, int_rows, with_columns};
use crate::stream::groups::{Aggregates, GroupColumn, Groups, assemble};
use crate::stream::memory::StateMemory;
use crate::stream::operator::{END_OF_INPUT, Event, Nanos, Operator, RowWatermarks, StreamBatch};

/// Aggregates everything, emits at the end of input.
pub struct FinalAggregateOperator {
    aggregates: Aggregates,
    groups: Option<Groups>,
    group_columns: Vec<GroupColumn>,
    schema: SchemaRef,
    /// The aggregate's input, to evaluate a keyless aggregate over no rows.
    input_schema: SchemaRef,
    /// The groups' share of the memory pool.
    memory: StateMemory,
}

impl FinalAggregateOperator {
    /// An operator with no rows yet.
    pub fn try_new(
        aggregates: Aggregates,
        group_columns: Vec<GroupColumn>,
        schema: SchemaRef,
        input_schema: SchemaRef,
    ) -> Result<Self> {
        Ok(Self {
            groups: Some(aggregates.new_groups()?),
            aggregates,
            group_columns,
            schema,
            input_schema,
            memory: StateMemory::new("FinalAggregate", "groups")
                .with_fix("group by fewer keys, or aggregate per window"),
        })
    }

    /// Resize the memory pool's share to the groups held.
    fn reserve(&self) -> Result<()> {
        self.memory.resize(self.state_bytes(), || {
            format!("{} groups", self.groups.as_ref().map_or(0, Groups::len))
        })
    }
}

impl Operator for FinalAggregateOperator {
    fn name(&self) -> String {
        format!(
            "FinalAggregate at end of input (bounded replay): {}",
            self.aggregates.names().join(", ")
        )
    }

    fn state(&self) -> Option<String> {
        Some("groups per key, until the end of input (bounded replays only)".into())
    }

    fn state_rows(&self) -> usize {
        self.groups.as_ref().map_or(0, Groups::len)
    }

    fn state_bytes(&self) -> usize {
        self.groups.as_ref().map_or(0, Groups::size)
    }

    fn open(&mut self, task: std::sync::Arc<TaskContext>) -> futures::future::BoxFuture<'_, Result<()>> {
        let bytes = self.state_bytes();
        self.memory.opened(&task, bytes)
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        // The groups' partial states (after a row number, so a batch of no
        // groups still has a column); none once the input ended.
        let Some(groups) = &mut self.groups else {
            into.put_value("final_ended", 1);
            return Ok(());
        };
        let partial = self.aggregates.copy_out(groups)?;
        let numbers = int_columns(&["group"], (0..partial.len() as i64).map(|i| vec![i]))?;
        into.put_batch("final_groups", with_columns(numbers, vec![partial.columns()])?);
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        if from.value("final_ended").is_ok() {
            self.groups = None;
            return Ok(());
        }
        let batch = from.batch("final_groups")?;
        let rows = int_rows(batch, 1)?.len();
        let partial = self.aggregates.partial_from(&batch.columns()[1..], rows)?;
        let mut groups = self.aggregates.new_groups()?;
        groups.merge(&partial)?;
        self.groups = Some(groups);
        Ok(())
    }

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        let (keys, arguments) = self.aggregates.evaluate(&input.batch)?;
        match &mut self.groups {
            Some(groups) => groups.update(&keys, &arguments, input.batch.num_rows())?,
            None => return internal_err!("rows after the end of input"),
        }
        self.reserve()
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark == END_OF_INPUT
            && let Some(mut groups) = self.groups.take()
        {
            // A GROUP BY with no keys has one row even over no input (count 0).
            let keyless = !self
                .group_columns
                .iter()
                .any(|c| matches!(c, GroupColumn::Key(_)));
            if keyless && groups.is_empty() {
                let empty = RecordBatch::new_empty(std::sync::Arc::clone(&self.input_schema));
                let (keys, arguments) = self.aggregates.evaluate(&empty)?;
                groups.update_one_group(&keys, &arguments)?;
            }
            let rows = groups.len();
            let (keys, values) = groups.finish()?;
            let batch = assemble(&self.schema, &self.group_columns, &keys, values, rows, |_, _| {
                internal_err!("an aggregate without a window has no window columns")
            })?;
            out.push(Event::Data(StreamBatch::new(
                batch,
                RowWatermarks::Constant(watermark),
            )));
        }
        out.push(Event::Watermark(watermark));
        self.reserve()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::stream::operators::testing::{
        Harness, check_memory_limit_of, check_restores, count_by, metrics,
    };
    use arrow::datatypes::{DataType, Field, Schema};

    /// `count(*)` of rows `(k, v)` by `k`, at the end of input.
    fn counts() -> Harness {
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let operator = FinalAggregateOperator::try_new(
            count_by(&input, "k"),
            vec![GroupColumn::Key(0)],
            schema,
            Arc::clone(&input),
        )
        .expect("an aggregate");
        Harness::single(Box::new(operator), input, &metrics())
    }

    #[test]
    fn a_restored_final_aggregate_carries_on_where_it_stopped() {
        check_restores(
            counts,
            "
            rows (1, 5) (2, 7) (1, 9)
            wm 5
            rows (3, 1) (2, 9) (null, 4)
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn groups_beyond_the_memory_limit_are_an_error_naming_them() {
        let script = "rows (1, 5) (2, 7) (1, 9)\nwm 5";
        // The accumulators hold a few KB before any group.
        let empty = counts().state_bytes() + 1;
        check_memory_limit_of(counts, script, "FinalAggregate", "groups: 2 groups", empty);
    }
}

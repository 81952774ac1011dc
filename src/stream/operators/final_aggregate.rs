//! A GROUP BY without a window over a bounded replay (`--mode continuous`
//! over files or tables): rows are aggregated as they come and the result is
//! emitted once, when the input ends, as batch would. Over an unbounded
//! source the planner refuses it: that needs an updating aggregate.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::internal_err;
use datafusion::error::Result;

use crate::stream::groups::{Aggregates, GroupColumn, Groups, assemble};
use crate::stream::operator::{END_OF_INPUT, Event, Nanos, Operator, RowWatermarks, StreamBatch};

/// Aggregates everything, emits at the end of input.
pub struct FinalAggregateOperator {
    aggregates: Aggregates,
    groups: Option<Groups>,
    group_columns: Vec<GroupColumn>,
    schema: SchemaRef,
    /// The aggregate's input, to evaluate a keyless aggregate over no rows.
    input_schema: SchemaRef,
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

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        let (keys, arguments) = self.aggregates.evaluate(&input.batch)?;
        match &mut self.groups {
            Some(groups) => groups.update(&keys, &arguments, input.batch.num_rows()),
            None => internal_err!("rows after the end of input"),
        }
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
        Ok(())
    }
}

//! `UNION ALL` of streams: every input's rows, as they come, under the
//! union's schema. The graph's merge gives each row the minimum of its own
//! watermark and the other inputs' current ones, and passes the union's
//! watermark on as the minimum over its inputs, so a window after the union
//! closes only when every input has passed its end.

use arrow::datatypes::SchemaRef;
use datafusion::common::plan_err;
use datafusion::error::Result;

use crate::stream::operator::{Event, MultiInputOperator, StreamBatch};

/// The operator.
pub struct UnionOperator {
    /// How many inputs.
    inputs: usize,
    /// The union's columns; every input has the same types (the planner's
    /// type coercion casts them).
    schema: SchemaRef,
}

impl UnionOperator {
    /// A union of `inputs` inputs into batches of `schema`.
    pub fn new(inputs: usize, schema: SchemaRef) -> Self {
        Self { inputs, schema }
    }
}

impl MultiInputOperator for UnionOperator {
    fn name(&self) -> String {
        format!("Union: {} inputs", self.inputs)
    }

    fn inputs(&self) -> usize {
        self.inputs
    }

    fn process(&mut self, port: usize, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let types = |s: &SchemaRef| {
            s.fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect::<Vec<_>>()
        };
        if types(&input.batch.schema()) != types(&self.schema) {
            return plan_err!(
                "input {} of a UNION ALL has columns ({}) where the union has ({}): cast them to the same types",
                port + 1,
                input
                    .batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.data_type().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.schema
                    .fields()
                    .iter()
                    .map(|f| f.data_type().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        out.push(Event::Data(input.renamed(&self.schema)?));
        Ok(())
    }
}

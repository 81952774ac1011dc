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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{Harness, check, metrics};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    fn input() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]))
    }

    #[test]
    fn rows_pass_with_watermarks_capped_by_the_other_inputs_and_the_end_waits_for_all() {
        let operator = UnionOperator::new(3, input());
        let mut harness = Harness::multi(Box::new(operator), vec![input(), input(), input()], &metrics());
        check(
            &mut harness,
            "
            0 wm 10
            1 wm 4
            0 rows (1, 11)
            2 wm 6
            1 rows@9 (2, 9) (null, 12)
            0 end
            1 wm 20
            1 end
            2 rows (3, 7)
            2 end
            ",
            "
            (1, 11) @-inf
            wm 4
            (2, 9) @6
            (null, 12) @6
            wm 6
            (3, 7) @6
            wm +inf
            end
            ",
        );
    }

    #[test]
    fn an_input_of_other_types_is_refused() {
        let operator = UnionOperator::new(2, input());
        let other = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let mut harness = Harness::multi(Box::new(operator), vec![input(), other], &metrics());
        let out = harness.run("1 rows ('a', 1)");
        assert!(
            out.starts_with("error") && out.contains("input 2 of a UNION ALL"),
            "{out}"
        );
    }
}

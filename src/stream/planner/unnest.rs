//! Planning `unnest(...)`: a stateless operator running DataFusion's own
//! unnest over each batch (see [`crate::stream::operators::unnest`]).

use super::*;
use crate::stream::operators::unnest::UnnestSpec;
use datafusion::physical_plan::unnest::ListUnnest;

impl StreamPlanner<'_> {
    /// `unnest` over its input's rows, appended or changes; window bounds
    /// pass through where they are columns it repeats.
    pub(super) fn unnest(&mut self, unnest: &datafusion::logical_expr::Unnest) -> Result<Planned> {
        let planned = self.lowered(&unnest.input)?;
        let lists = unnest
            .list_type_columns
            .iter()
            .map(|(index, unnesting)| ListUnnest {
                index_in_input_schema: *index,
                depth: unnesting.depth,
            })
            .collect::<Vec<_>>();
        let unnested = |i: usize| {
            lists.iter().any(|l| l.index_in_input_schema == i) || unnest.struct_type_columns.contains(&i)
        };
        // Each output column's input column, where it is that column repeated.
        let repeated: Vec<usize> = unnest
            .dependency_indices
            .iter()
            .map(|&i| if unnested(i) { usize::MAX } else { i })
            .collect();
        let lineage = planned.lineage.and_then(|l| l.select(&repeated));
        let spec = UnnestSpec {
            lists,
            structs: unnest.struct_type_columns.clone(),
            options: unnest.options.clone(),
            input_schema: Arc::new(unnest.input.schema().as_arrow().clone()),
            schema: Arc::new(unnest.schema.as_arrow().clone()),
        };
        Ok(self.then(&planned, StreamNode::Unnest(spec), lineage))
    }
}

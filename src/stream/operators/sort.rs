//! `ORDER BY` over windowed results: the rows one watermark emits (every
//! window it closes) are sorted among themselves. Windows close in end order,
//! so when the sort starts with a window bound the output is globally sorted,
//! as in batch. Any other sort needs all rows: it is allowed over a bounded
//! replay (`--mode continuous`), sorting once at the end of input, and
//! refused over an unbounded source.

use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalSortExpr;
use futures::future::BoxFuture;

use crate::stream::checkpoint::StateSnapshot;
use crate::stream::memory::{HeldBatches, StateMemory};
use crate::stream::operator::{Event, Nanos, Operator, RowWatermarks, StreamBatch};

/// Buffers rows until the next watermark, then emits them sorted.
pub struct SortPerWatermarkOperator {
    order: Vec<PhysicalSortExpr>,
    schema: SchemaRef,
    pending: HeldBatches,
    /// `pending`'s share of the memory pool.
    memory: StateMemory,
    watermark: Nanos,
    fetch: Option<usize>,
    /// Sort only at the end of input (a bounded replay).
    at_end: bool,
}

impl SortPerWatermarkOperator {
    /// Sort by `order`; with `fetch`, keep the first rows of each emission.
    pub fn new(order: Vec<PhysicalSortExpr>, schema: SchemaRef, fetch: Option<usize>, at_end: bool) -> Self {
        Self {
            order,
            schema,
            pending: HeldBatches::default(),
            memory: StateMemory::new("Sort", "sort_rows")
                .with_fix("sort by a window bound first, so each emission sorts alone"),
            watermark: crate::stream::operator::NO_WATERMARK,
            fetch,
            at_end,
        }
    }
}

impl Operator for SortPerWatermarkOperator {
    fn name(&self) -> String {
        let order: Vec<String> = self.order.iter().map(|o| o.to_string()).collect();
        let when = if self.at_end {
            "at end of input"
        } else {
            "per emission"
        };
        format!("Sort {when}: {}", order.join(", "))
    }

    fn state_rows(&self) -> usize {
        // The rows waiting for the watermark (or the end).
        self.pending.rows()
    }

    fn state_bytes(&self) -> usize {
        self.pending.bytes()
    }

    fn open(&mut self, task: std::sync::Arc<TaskContext>) -> BoxFuture<'_, Result<()>> {
        let bytes = self.state_bytes();
        self.memory.opened(&task, bytes)
    }

    fn state(&self) -> Option<String> {
        Some(if self.at_end {
            "every row, until the end of input (bounded replays only)".into()
        } else {
            "the rows of one emission, sorted when the watermark moves".into()
        })
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        into.put_batch("sort_rows", concat_batches(&self.schema, self.pending.batches())?);
        into.put_value("watermark", self.watermark);
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        self.pending.set(held_rows(from, "sort_rows", &self.schema)?);
        self.watermark = from.value("watermark")?;
        Ok(())
    }

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        self.pending.push(input.batch);
        self.reserve()
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        let ready = !self.at_end || watermark == crate::stream::operator::END_OF_INPUT;
        if ready && !self.pending.is_empty() {
            let batch = concat_batches(&self.schema, &self.pending.take())?;
            let columns = self
                .order
                .iter()
                .map(|o| {
                    Ok(SortColumn {
                        values: o.expr.evaluate(&batch)?.into_array(batch.num_rows())?,
                        options: Some(o.options),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let indices = lexsort_to_indices(&columns, self.fetch)?;
            let sorted = take_record_batch(&batch, &indices)?;
            out.push(Event::Data(StreamBatch::new(
                sorted,
                RowWatermarks::Constant(self.watermark),
            )));
        }
        self.watermark = watermark;
        out.push(Event::Watermark(watermark));
        self.reserve()
    }
}

impl SortPerWatermarkOperator {
    /// Resize the memory pool's share to the rows waiting.
    fn reserve(&self) -> Result<()> {
        self.memory
            .resize(self.pending.bytes(), || format!("{} rows", self.state_rows()))
    }
}

/// The rows a checkpoint kept as part `name`, as batches of `schema` to
/// hold (none if it kept none); for the operators that hold rows until a
/// watermark (this sort, the window functions).
pub(super) fn held_rows(from: &StateSnapshot, name: &str, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let kept = from.batch(name)?;
    if kept.num_rows() == 0 {
        return Ok(Vec::new());
    }
    Ok(vec![RecordBatch::try_new(
        std::sync::Arc::clone(schema),
        kept.columns().to_vec(),
    )?])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::stream::operators::testing::{Harness, check_memory_limit, check_restores, metrics};
    use arrow::compute::SortOptions;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::Column;

    /// Rows `(k, v)` sorted by `v` descending, then `k`; the first `fetch`.
    fn sort(fetch: Option<usize>, at_end: bool) -> Harness {
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let order = vec![
            PhysicalSortExpr::new(Arc::new(Column::new("v", 1)), SortOptions::new(true, false)),
            PhysicalSortExpr::new(Arc::new(Column::new("k", 0)), SortOptions::default()),
        ];
        let operator = SortPerWatermarkOperator::new(order, Arc::clone(&input), fetch, at_end);
        Harness::single(Box::new(operator), input, &metrics())
    }

    #[test]
    fn a_restored_sort_carries_on_where_it_stopped() {
        let script = "
            rows (1, 5) (2, 7)
            rows (3, 7)
            wm 5
            rows (4, 1) (5, 9)
            wm 10
            wm 12
            rows (6, 2)
            wm +inf
            ";
        check_restores(|| sort(None, false), script);
        check_restores(|| sort(Some(2), false), script);
        check_restores(|| sort(None, true), script);
    }

    #[test]
    fn rows_beyond_the_memory_limit_are_an_error_naming_the_sort() {
        check_memory_limit(
            || sort(None, true),
            "rows (1, 5) (2, 7)\nwm 5",
            "Sort",
            "sort_rows: 2 rows",
        );
    }
}

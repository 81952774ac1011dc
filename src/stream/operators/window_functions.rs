//! Window functions (`ROW_NUMBER() OVER (...)`, `rank()`, `sum(x) OVER
//! (...)`) evaluated by DataFusion's own window expressions on rows held
//! until they are complete:
//!
//! - per emission, when every function is partitioned by a window bound of
//!   a windowed aggregate above which it runs (Top-N per window): a watermark
//!   emits whole windows, so each emission holds whole partitions;
//! - at the end of input, over a bounded replay (Top-N or dedup over all
//!   rows); over an unbounded source the planner refuses that.
//!
//! As DataFusion's `WindowAggExec` does, rows are sorted by the partition
//! keys and the ORDER BY, cut into partitions, and each function evaluated
//! per partition; its values are appended to the row.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{SortColumn, concat, concat_batches, lexsort_to_indices, take, take_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion::common::utils::evaluate_partition_ranges;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::window::WindowExpr;
use futures::future::BoxFuture;

use crate::stream::checkpoint::StateSnapshot;
use crate::stream::memory::{HeldBatches, StateMemory};
use crate::stream::operator::{END_OF_INPUT, Event, Nanos, Operator, RowWatermarks, StreamBatch};

/// Holds rows, then appends the window functions' values.
pub struct WindowFunctionOperator {
    functions: Vec<Arc<dyn WindowExpr>>,
    input_schema: SchemaRef,
    schema: SchemaRef,
    pending: HeldBatches,
    /// `pending`'s share of the memory pool.
    memory: StateMemory,
    /// Evaluate only at the end of input (else at every watermark).
    at_end: bool,
    watermark: Nanos,
}

impl WindowFunctionOperator {
    /// Functions sharing one PARTITION BY and ORDER BY (the planner checks).
    pub fn new(
        functions: Vec<Arc<dyn WindowExpr>>,
        input_schema: SchemaRef,
        schema: SchemaRef,
        at_end: bool,
    ) -> Self {
        Self {
            functions,
            input_schema,
            schema,
            pending: HeldBatches::default(),
            memory: StateMemory::new("WindowFunctions", "function_rows")
                .with_fix("partition the functions by a window bound, so each emission holds one window"),
            at_end,
            watermark: crate::stream::operator::NO_WATERMARK,
        }
    }
}

impl Operator for WindowFunctionOperator {
    fn name(&self) -> String {
        let names: Vec<&str> = self.functions.iter().map(|f| f.name()).collect();
        let when = if self.at_end {
            "at end of input (bounded replay)"
        } else {
            "per emission"
        };
        format!("WindowFunctions {when}: {}", names.join(", "))
    }

    fn state(&self) -> Option<String> {
        Some(if self.at_end {
            "every row, until the end of input (bounded replays only)".into()
        } else {
            "the rows of one emission, evaluated when the watermark moves".into()
        })
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        into.put_batch(
            "function_rows",
            concat_batches(&self.input_schema, self.pending.batches())?,
        );
        into.put_value("watermark", self.watermark);
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        self.pending
            .set(super::sort::held_rows(from, "function_rows", &self.input_schema)?);
        self.watermark = from.value("watermark")?;
        Ok(())
    }

    fn open(&mut self, task: Arc<TaskContext>) -> BoxFuture<'_, Result<()>> {
        let bytes = self.state_bytes();
        self.memory.opened(&task, bytes)
    }

    fn state_rows(&self) -> usize {
        self.pending.rows()
    }

    fn state_bytes(&self) -> usize {
        self.pending.bytes()
    }

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        self.pending.push(input.batch);
        self.reserve()
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        let ready = !self.at_end || watermark == END_OF_INPUT;
        if ready && !self.pending.is_empty() {
            let rows = concat_batches(&self.input_schema, &self.pending.take())?;
            let batch = evaluate(&self.functions, &self.schema, rows)?;
            out.push(Event::Data(StreamBatch::new(
                batch,
                RowWatermarks::Constant(self.watermark),
            )));
        }
        self.watermark = watermark;
        out.push(Event::Watermark(watermark));
        self.reserve()
    }
}

impl WindowFunctionOperator {
    /// Resize the memory pool's share to the rows held.
    fn reserve(&self) -> Result<()> {
        self.memory
            .resize(self.pending.bytes(), || format!("{} rows", self.pending.rows()))
    }
}

/// `batch` with the values of `functions` (sharing one PARTITION BY and
/// ORDER BY) appended, as rows of `schema`: rows are sorted by the partition
/// keys and the ORDER BY, cut into partitions, and each function evaluated
/// per partition.
pub fn evaluate(
    functions: &[Arc<dyn WindowExpr>],
    schema: &SchemaRef,
    batch: RecordBatch,
) -> Result<RecordBatch> {
    let Some(first) = functions.first() else {
        return Ok(batch);
    };
    let (batch, keys) = sort_by_partition(first.as_ref(), &batch)?;
    let partitions = evaluate_partition_ranges(batch.num_rows(), &keys)?;
    append(functions, schema, &batch, partitions)
}

/// `batch` sorted by `function`'s partition keys, then its ORDER BY, with
/// the partition keys' columns in that order (as DataFusion's `WindowAggExec`
/// sorts before evaluating).
pub fn sort_by_partition(
    function: &dyn WindowExpr,
    batch: &RecordBatch,
) -> Result<(RecordBatch, Vec<SortColumn>)> {
    let mut order: Vec<SortColumn> = function
        .partition_by()
        .iter()
        .map(|e| {
            Ok(SortColumn {
                values: e.evaluate(batch)?.into_array(batch.num_rows())?,
                options: None,
            })
        })
        .collect::<Result<_>>()?;
    let partition_keys = order.len();
    order.extend(function.order_by_columns(batch)?);
    if order.is_empty() {
        return Ok((batch.clone(), Vec::new()));
    }
    let sorted = lexsort_to_indices(&order, None)?;
    let keys = order[..partition_keys]
        .iter()
        .map(|key| {
            Ok(SortColumn {
                values: take(key.values.as_ref(), &sorted, None)?,
                options: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((take_record_batch(batch, &sorted)?, keys))
}

/// `batch` with each function's values over each of its `partitions`.
fn append(
    functions: &[Arc<dyn WindowExpr>],
    schema: &SchemaRef,
    batch: &RecordBatch,
    partitions: Vec<std::ops::Range<usize>>,
) -> Result<RecordBatch> {
    let mut per_function: Vec<Vec<ArrayRef>> = vec![Vec::new(); functions.len()];
    for range in partitions {
        let partition = batch.slice(range.start, range.end - range.start);
        for (values, function) in per_function.iter_mut().zip(functions) {
            values.push(function.evaluate(&partition)?);
        }
    }
    let mut columns = batch.columns().to_vec();
    for values in per_function {
        let refs: Vec<&dyn arrow::array::Array> = values.iter().map(|v| v.as_ref()).collect();
        columns.push(concat(&refs)?);
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// Each row's bytes for some columns in arrow's row format (a key, an
/// ORDER BY), or the empty bytes for every row when there is no column (no
/// PARTITION BY: one key).
pub struct RowBytes(Option<arrow::row::Rows>);

impl RowBytes {
    /// `columns` through `converter` (made for their types).
    pub fn new(converter: &arrow::row::RowConverter, columns: &[ArrayRef]) -> Result<Self> {
        if columns.is_empty() {
            return Ok(RowBytes(None));
        }
        Ok(RowBytes(Some(converter.convert_columns(columns)?)))
    }

    /// Row `i`'s bytes.
    pub fn get(&self, i: usize) -> &[u8] {
        match &self.0 {
            Some(rows) => rows.row(i).data(),
            None => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{
        Harness, check_memory_limit, check_restores, metrics, window_function_out,
    };
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::functions_window::expr_fn::row_number;
    use datafusion::logical_expr::{ExprFunctionExt, col};

    /// `ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC)` over rows `(k, v)`.
    fn ranked(at_end: bool) -> Harness {
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let expr = row_number()
            .partition_by(vec![col("k")])
            .order_by(vec![col("v").sort(false, false)])
            .build()
            .expect("a window function");
        let (function, schema) = window_function_out(expr, &input, "rn");
        let operator = WindowFunctionOperator::new(vec![function], Arc::clone(&input), schema, at_end);
        Harness::single(Box::new(operator), input, &metrics())
    }

    #[test]
    fn restored_window_functions_carry_on_where_they_stopped() {
        let script = "
            rows (1, 5) (2, 7) (1, 9)
            rows (1, 7)
            wm 5
            rows (2, 1) (2, 9)
            wm 10
            wm 12
            rows (1, 2)
            wm +inf
            ";
        check_restores(|| ranked(false), script);
        check_restores(|| ranked(true), script);
    }

    #[test]
    fn rows_beyond_the_memory_limit_are_an_error_naming_the_functions() {
        let script = "rows (1, 5) (2, 7) (1, 9)\nwm 5";
        check_memory_limit(
            || ranked(true),
            script,
            "WindowFunctions",
            "function_rows: 3 rows",
        );
    }
}

//! Window functions straight over a window TVF's rows, partitioned by the
//! window (Flink's window Top-N and window dedup): `ROW_NUMBER() OVER
//! (PARTITION BY window_start, window_end ORDER BY price DESC)` over
//! `TABLE(TUMBLE(...))`, with no aggregate between. A window's rows are held
//! until the watermark reaches its end, then evaluated together by
//! DataFusion's window expressions and emitted: append-only, each window
//! once. A row whose window had closed when it came is late (counted, and
//! written aside under the late policy).

use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use datafusion::physical_expr::window::WindowExpr;

use super::window_functions::evaluate;
use crate::stream::late::LateRows;
use crate::stream::operator::{
    Event, NO_WATERMARK, Nanos, Operator, RowWatermarks, StreamBatch, nanos_values, to_nanos,
};

/// Holds each window's rows until it closes, then appends the functions'
/// values.
pub struct WindowTopNOperator {
    /// Functions sharing one PARTITION BY (which holds the window) and ORDER BY.
    functions: Vec<Arc<dyn WindowExpr>>,
    /// Where `window_end` is in the input.
    window_end: usize,
    input_schema: SchemaRef,
    schema: SchemaRef,
    /// Rows of open windows, with each row's window end.
    pending: Vec<(RecordBatch, Vec<Nanos>)>,
    late: LateRows,
    watermark: Nanos,
}

impl WindowTopNOperator {
    /// Functions over rows of `input_schema` whose column `window_end` ends
    /// their window; rows out are of `schema`.
    pub fn new(
        functions: Vec<Arc<dyn WindowExpr>>,
        window_end: usize,
        input_schema: SchemaRef,
        schema: SchemaRef,
        late: LateRows,
    ) -> Self {
        Self {
            functions,
            window_end,
            input_schema,
            schema,
            pending: Vec::new(),
            late,
            watermark: NO_WATERMARK,
        }
    }

    fn ends(&self, batch: &RecordBatch) -> Result<Vec<Nanos>> {
        let ends = to_nanos(batch.column(self.window_end), "window_end")?;
        // A window TVF puts a row with a NULL time in no window; its bound
        // never comes, so treat it as closed already (late, counted).
        let ends = nanos_values(&ends)?;
        Ok((0..ends.len())
            .map(|i| {
                if ends.is_null(i) {
                    NO_WATERMARK
                } else {
                    ends.value(i)
                }
            })
            .collect())
    }
}

impl Operator for WindowTopNOperator {
    fn name(&self) -> String {
        let names: Vec<&str> = self.functions.iter().map(|f| f.name()).collect();
        format!(
            "WindowTopN per window when it closes: {}; {}",
            names.join(", "),
            self.late.policy()
        )
    }

    fn state(&self) -> Option<String> {
        Some("window_rows: the rows of each open window, freed when the watermark reaches its end".into())
    }

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        let batch = input.batch;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ends = self.ends(&batch)?;
        let late: BooleanArray = ends
            .iter()
            .enumerate()
            .map(|(i, &end)| Some(end <= input.watermarks.get(i)))
            .collect();
        if late.true_count() == 0 {
            self.pending.push((batch, ends));
            return Ok(());
        }
        self.late.record(&filter_record_batch(&batch, &late)?)?;
        let on_time: Vec<Nanos> = ends
            .iter()
            .zip(late.values().iter())
            .filter(|(_, late)| !late)
            .map(|(&end, _)| end)
            .collect();
        if !on_time.is_empty() {
            let batch = filter_record_batch(&batch, &arrow::compute::not(&late)?)?;
            self.pending.push((batch, on_time));
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        let mut closed = Vec::new();
        let mut open = Vec::new();
        for (batch, ends) in std::mem::take(&mut self.pending) {
            if ends.iter().all(|&end| end <= watermark) {
                closed.push(batch);
            } else if ends.iter().all(|&end| end > watermark) {
                open.push((batch, ends));
            } else {
                let mask: BooleanArray = ends.iter().map(|&end| Some(end <= watermark)).collect();
                closed.push(filter_record_batch(&batch, &mask)?);
                let still: Vec<Nanos> = ends.into_iter().filter(|&end| end > watermark).collect();
                open.push((filter_record_batch(&batch, &arrow::compute::not(&mask)?)?, still));
            }
        }
        self.pending = open;
        if !closed.is_empty() {
            let rows = concat_batches(&self.input_schema, &closed)?;
            let batch = evaluate(&self.functions, &self.schema, rows)?;
            // As a windowed aggregate's results, emitted rows carry the
            // watermark before the one that closed their window.
            out.push(Event::Data(StreamBatch::new(
                batch,
                RowWatermarks::Constant(self.watermark),
            )));
        }
        self.late.flush()?;
        self.watermark = watermark;
        out.push(Event::Watermark(watermark));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{Harness, check, late, metrics, window_function};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::functions_window::expr_fn::row_number;
    use datafusion::logical_expr::{ExprFunctionExt, col};

    /// `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY
    /// price DESC)` over rows `(price, window_start, window_end)`.
    fn top_n() -> Harness {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let input = Arc::new(Schema::new(vec![
            Field::new("price", DataType::Int64, true),
            Field::new("window_start", ts.clone(), false),
            Field::new("window_end", ts, false),
        ]));
        let expr = row_number()
            .partition_by(vec![col("window_start"), col("window_end")])
            .order_by(vec![col("price").sort(false, false)])
            .build()
            .expect("a window function");
        let (function, field) = window_function(expr, &input, "rn");
        let mut fields = input.fields().to_vec();
        fields.push(field);
        let metrics = metrics();
        let operator = WindowTopNOperator::new(
            vec![function],
            2,
            Arc::clone(&input),
            Arc::new(Schema::new(fields)),
            late(&metrics),
        );
        Harness::single(Box::new(operator), input, &metrics)
    }

    #[test]
    fn a_windows_rows_are_ranked_when_it_closes_and_a_row_for_it_then_is_late() {
        check(
            &mut top_n(),
            "
            rows (5, 0, 10) (9, 0, 10) (7, 10, 20)
            wm 9
            rows (8, 0, 10) (1, 10, 20)
            wm 10
            rows (100, 0, 10)
            late
            wm +inf
            ",
            "
            wm 9
            (9, 0, 10, 1) @9
            (8, 0, 10, 2) @9
            (5, 0, 10, 3) @9
            wm 10
            late 1
            (7, 10, 20, 1) @10
            (1, 10, 20, 2) @10
            wm +inf
            ",
        );
    }
}

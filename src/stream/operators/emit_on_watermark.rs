//! `EMIT ON WINDOW CLOSE` of a query with no window (RisingWave's EOWC over
//! a plain selection): each row is held until the watermark passes its event
//! time, then emitted, in time order. Rows behind the watermark when they
//! come are late (counted, or written aside), as for a window.

use std::sync::Arc;

use datafusion::execution::TaskContext;

use arrow::compute::{SortOptions, sort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion::common::exec_err;
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;

use super::pending_rows::PendingRows;
use crate::stream::checkpoint::StateSnapshot;
use crate::stream::late::LateRows;
use crate::stream::memory::StateMemory;
use crate::stream::operator::{Event, NO_WATERMARK, Nanos, Operator, RowWatermarks, StreamBatch};

/// Rows held until the watermark passes their time.
pub struct EmitOnWatermarkOperator {
    pending: PendingRows,
    late: LateRows,
    watermark: Nanos,
    /// The waiting rows' share of the memory pool.
    memory: StateMemory,
}

impl EmitOnWatermarkOperator {
    /// Hold rows of `schema` until the watermark passes `time` of each.
    pub fn new(time: Arc<dyn PhysicalExpr>, schema: SchemaRef, late: LateRows) -> Self {
        Self {
            pending: PendingRows::new(time, schema),
            late,
            watermark: NO_WATERMARK,
            memory: StateMemory::new("EmitOnWatermark", "waiting_rows")
                .with_fix("lower the watermark's delay, or drop EMIT ON WINDOW CLOSE"),
        }
    }

    /// Resize the memory pool's share to the waiting rows.
    fn reserve(&self) -> Result<()> {
        self.memory
            .resize(self.state_bytes(), || format!("{} rows", self.pending.len()))
    }
}

impl Operator for EmitOnWatermarkOperator {
    fn name(&self) -> String {
        format!(
            "EmitOnWatermark: each row once the watermark passes {}, in its order; {}",
            self.pending.time(),
            self.late.policy()
        )
    }

    fn state(&self) -> Option<String> {
        Some("waiting_rows until the watermark passes their time".to_string())
    }

    fn state_rows(&self) -> usize {
        self.pending.len()
    }

    fn state_bytes(&self) -> usize {
        self.pending.bytes()
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        self.late.flush()?;
        self.pending.snapshot(into, "waiting_rows")?;
        into.put_value("watermark", self.watermark);
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        self.pending.restore(from, "waiting_rows")?;
        self.watermark = from.value("watermark")?;
        Ok(())
    }

    fn open(&mut self, task: Arc<TaskContext>) -> futures::future::BoxFuture<'_, Result<()>> {
        let bytes = self.state_bytes();
        self.memory.opened(&task, bytes)
    }

    fn process(&mut self, input: StreamBatch, _out: &mut Vec<Event>) -> Result<()> {
        self.pending.push(input, &mut self.late)?;
        self.reserve()
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        if let Some(rows) = self.pending.release(watermark)? {
            let times = self.pending.times(&rows)?;
            let order = sort_to_indices(&times, Some(SortOptions::default()), None)?;
            let rows = take_record_batch(&rows, &order)?;
            // Released rows are at or after the previous watermark (earlier
            // ones were late), so they carry it.
            out.push(Event::Data(StreamBatch::new(
                rows,
                RowWatermarks::Constant(self.watermark),
            )));
        }
        self.late.flush()?;
        self.watermark = watermark;
        out.push(Event::Watermark(watermark));
        self.reserve()
    }

    fn on_end(&mut self, out: &mut Vec<Event>) -> Result<()> {
        // The end passes every time: what waits goes out.
        self.on_watermark(Nanos::MAX, out)?;
        if !self.pending.is_empty() {
            return exec_err!("rows still wait after the end of input");
        }
        out.push(Event::End);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{
        Harness, check, check_memory_limit, check_restores, late, metrics,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::physical_expr::expressions::Column;

    /// Rows `(ts, v)` held by `ts`.
    fn held() -> Harness {
        let input = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("v", DataType::Int64, true),
        ]));
        let metrics = metrics();
        let operator =
            EmitOnWatermarkOperator::new(Arc::new(Column::new("ts", 0)), Arc::clone(&input), late(&metrics));
        Harness::single(Box::new(operator), input, &metrics)
    }

    #[test]
    fn rows_wait_for_the_watermark_and_go_out_in_time_order() {
        check(
            &mut held(),
            "
            rows (5, 50) (2, 20) (9, 90)
            state
            wm 6
            rows (4, 40)
            late
            wm 20
            ",
            "
            state 3
            (2, 20) @-inf
            (5, 50) @-inf
            wm 6
            late 1
            (9, 90) @6
            wm 20
            ",
        );
    }

    #[test]
    fn a_restored_hold_carries_on() {
        check_restores(
            held,
            "
            rows (5, 50) (2, 20) (9, 90)
            wm 6
            rows (7, 70)
            wm 8
            end
            ",
        );
    }

    #[test]
    fn waiting_rows_beyond_the_memory_limit_are_an_error_naming_them() {
        check_memory_limit(
            held,
            "rows (5, 50) (2, 20)\nwm 1",
            "EmitOnWatermark",
            "waiting_rows: 2 rows",
        );
    }
}

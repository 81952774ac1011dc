//! Rows waiting for the watermark to pass their event time, for operators
//! that release rows in time order (`OverAggregate`, `Dedup`). A row that
//! comes after the watermark has passed its time is late: counted (and
//! written aside under the late policy), never kept; so is a row with a NULL
//! time, which no watermark would ever pass.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter, filter_record_batch, not};
use arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;

use crate::stream::checkpoint::StateSnapshot;
use crate::stream::late::LateRows;
use crate::stream::operator::{Nanos, StreamBatch, nanos_values, to_nanos};

/// Rows by event time, until the watermark passes them.
pub struct PendingRows {
    /// The event time of a row.
    time: Arc<dyn PhysicalExpr>,
    /// The rows' schema.
    schema: SchemaRef,
    /// Batches waiting, each with its rows' times in nanoseconds.
    waiting: Vec<(RecordBatch, ArrayRef)>,
    /// Bytes of `waiting`, kept as it changes (read after every batch).
    bytes: usize,
}

/// Bytes of a waiting batch and its times.
fn waiting_bytes((batch, times): &(RecordBatch, ArrayRef)) -> usize {
    batch.get_array_memory_size() + times.get_array_memory_size()
}

impl PendingRows {
    /// How many rows wait.
    pub fn len(&self) -> usize {
        self.waiting.iter().map(|(batch, _)| batch.num_rows()).sum()
    }

    /// Bytes of the waiting rows and their times.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keep a batch waiting.
    fn wait(&mut self, batch: RecordBatch, times: ArrayRef) {
        let waiting = (batch, times);
        self.bytes += waiting_bytes(&waiting);
        self.waiting.push(waiting);
    }

    /// Whether no row waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Rows of `schema` whose event time is `time`.
    pub fn new(time: Arc<dyn PhysicalExpr>, schema: SchemaRef) -> Self {
        Self {
            time,
            schema,
            waiting: Vec::new(),
            bytes: 0,
        }
    }

    /// The event time, for EXPLAIN.
    pub fn time(&self) -> &Arc<dyn PhysicalExpr> {
        &self.time
    }

    /// The event times of `batch`'s rows, in nanoseconds.
    pub fn times(&self, batch: &RecordBatch) -> Result<ArrayRef> {
        let time = self.time.evaluate(batch)?.into_array(batch.num_rows())?;
        to_nanos(&time, &self.time.to_string())
    }

    /// Keep `input`'s rows that are on time; give the late ones to `late`.
    pub fn push(&mut self, input: StreamBatch, late: &mut LateRows) -> Result<()> {
        let batch = input.batch;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let times = self.times(&batch)?;
        let values = nanos_values(&times)?;
        let behind: BooleanArray = (0..batch.num_rows())
            .map(|i| Some(values.is_null(i) || values.value(i) < input.watermarks.get(i)))
            .collect();
        if behind.true_count() == 0 {
            self.wait(batch, times);
            return Ok(());
        }
        late.record(&filter_record_batch(&batch, &behind)?)?;
        let on_time = not(&behind)?;
        let batch = filter_record_batch(&batch, &on_time)?;
        if batch.num_rows() > 0 {
            let times = filter(times.as_ref(), &on_time)?;
            self.wait(batch, times);
        }
        Ok(())
    }

    /// Take out the rows the watermark passed (`time < watermark`).
    pub fn release(&mut self, watermark: Nanos) -> Result<Option<RecordBatch>> {
        let mut released = Vec::new();
        let mut kept = Vec::new();
        for (batch, times) in std::mem::take(&mut self.waiting) {
            let values = nanos_values(&times)?;
            let passed: BooleanArray = values.values().iter().map(|&t| Some(t < watermark)).collect();
            match passed.true_count() {
                0 => kept.push((batch, times)),
                n if n == batch.num_rows() => released.push(batch),
                _ => {
                    released.push(filter_record_batch(&batch, &passed)?);
                    let waiting = not(&passed)?;
                    kept.push((
                        filter_record_batch(&batch, &waiting)?,
                        filter(times.as_ref(), &waiting)?,
                    ));
                }
            }
        }
        self.bytes = kept.iter().map(waiting_bytes).sum();
        self.waiting = kept;
        if released.is_empty() {
            return Ok(None);
        }
        Ok(Some(concat_batches(&self.schema, &released)?))
    }

    /// Keep the waiting rows as part `name` of a checkpoint (one batch, in
    /// the order they came: releasing them then gives the same rows in the
    /// same order as the batches they came in).
    pub fn snapshot(&self, into: &mut StateSnapshot, name: &str) -> Result<()> {
        let batches: Vec<&RecordBatch> = self.waiting.iter().map(|(batch, _)| batch).collect();
        into.put_batch(name, concat_batches(&self.schema, batches)?);
        Ok(())
    }

    /// Take back the rows [`PendingRows::snapshot`] kept as part `name`;
    /// their times are evaluated again (the same expression over the same
    /// rows).
    pub fn restore(&mut self, from: &StateSnapshot, name: &str) -> Result<()> {
        let kept = from.batch(name)?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), kept.columns().to_vec())?;
        self.waiting.clear();
        self.bytes = 0;
        if batch.num_rows() > 0 {
            let times = self.times(&batch)?;
            self.wait(batch, times);
        }
        Ok(())
    }
}

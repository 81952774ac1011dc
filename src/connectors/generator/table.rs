//! The table provider shared by the generator connectors.
//!
//! A generator is a [`RowSource`]: given row ordinals `a..b` and the columns a
//! query reads, it returns those columns' arrays. Each value depends only on
//! the seed and the row ordinal, so the scan may cut the ordinal range into
//! partitions (one per target partition, in whole batches) and every run
//! gives the same rows, whatever the partitioning or batch size.

use std::fmt::Debug;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::internal_err;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::StreamExt;

/// Casts to declared types fail on overflow instead of giving nulls.
const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: arrow::util::display::FormatOptions::new(),
};

/// Rows generated on demand, columnar.
pub trait RowSource: Debug + Send + Sync + 'static {
    /// The columns the source generates, with their natural types.
    fn schema(&self) -> &SchemaRef;

    /// The arrays of `columns` (indices into [`RowSource::schema`]) for the
    /// row ordinals `rows`. A pure function of its arguments.
    fn generate(&self, columns: &[usize], rows: Range<u64>) -> Result<Vec<ArrayRef>>;

    /// The wall-clock rows per second an unbounded run should keep to
    /// (`'rate'`, `'rows-per-second'`); `None` for as fast as possible.
    fn rate(&self) -> Option<u64> {
        None
    }
}

/// A generated table: bounded (`rows`) or not.
#[derive(Debug)]
pub struct GeneratorProvider {
    /// What makes the rows.
    source: Arc<dyn RowSource>,
    /// The table's columns as declared, in types castable from the source's.
    schema: SchemaRef,
    /// For each column of `schema`, the source column it reads.
    source_columns: Vec<usize>,
    /// How many rows the table has; `None` for unbounded.
    rows: Option<u64>,
    /// The first row a scan generates (a query resumed from a checkpoint
    /// starts where it was, without generating the rows before).
    first: u64,
}

impl GeneratorProvider {
    /// A provider over `source` exposing `schema`, whose column `i` is the
    /// source's column `source_columns[i]` (cast to the declared type).
    pub fn new(
        source: Arc<dyn RowSource>,
        schema: SchemaRef,
        source_columns: Vec<usize>,
        rows: Option<u64>,
    ) -> Self {
        Self {
            source,
            schema,
            source_columns,
            rows,
            first: 0,
        }
    }

    /// The same table, its scans starting at row `first` (ordinals, and so
    /// values, are those of the full table).
    pub fn starting_at(&self, first: u64) -> Self {
        Self {
            source: Arc::clone(&self.source),
            schema: Arc::clone(&self.schema),
            source_columns: self.source_columns.clone(),
            rows: self.rows,
            first,
        }
    }

    /// The wall-clock rows per second an unbounded run should keep to, if limited.
    pub fn rate(&self) -> Option<u64> {
        self.source.rate()
    }

    /// The row count, `None` when unbounded.
    pub fn rows(&self) -> Option<u64> {
        self.rows
    }

    /// The partition streams of a scan of `columns` (of the table's schema),
    /// `limit` rows at most.
    pub fn partitions(
        &self,
        columns: &[usize],
        limit: Option<usize>,
        batch_size: usize,
        target_partitions: usize,
    ) -> Result<Vec<Arc<dyn PartitionStream>>> {
        let schema = Arc::new(self.schema.project(columns)?);
        let source_columns = columns
            .iter()
            .map(|&c| match self.source_columns.get(c) {
                Some(&s) => Ok(s),
                None => internal_err!("column {c} is out of range for a generated table"),
            })
            .collect::<Result<Vec<_>>>()?;
        let total = match (self.rows, limit) {
            (Some(rows), Some(limit)) => rows.min(limit as u64),
            (Some(rows), None) => rows,
            (None, Some(limit)) => limit as u64,
            (None, None) => u64::MAX,
        };
        let batch_size = batch_size.max(1) as u64;
        let first = self.first.min(total);
        let batches = (total - first).div_ceil(batch_size);
        let count = if self.rows.is_none() && limit.is_none() {
            1
        } else {
            batches.clamp(1, target_partitions.max(1) as u64)
        };
        let per_partition = batches.div_ceil(count).saturating_mul(batch_size);
        Ok((0..count)
            .map(|i| {
                let start = first.saturating_add(i * per_partition).min(total);
                let end = start.saturating_add(per_partition).min(total);
                Arc::new(GeneratorPartition {
                    source: Arc::clone(&self.source),
                    schema: Arc::clone(&schema),
                    columns: source_columns.clone(),
                    rows: start..end,
                    batch_size,
                }) as Arc<dyn PartitionStream>
            })
            .collect())
    }
}

#[async_trait]
impl TableProvider for GeneratorProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let config = state.config();
        let partitions = self.partitions(&columns, limit, config.batch_size(), config.target_partitions())?;
        let schema = Arc::new(self.schema.project(&columns)?);
        let exec = StreamingTableExec::try_new(schema, partitions, None, [], self.rows.is_none(), None)?;
        Ok(Arc::new(exec))
    }
}

/// One partition of a scan: a contiguous range of row ordinals.
#[derive(Debug, Clone)]
struct GeneratorPartition {
    /// What makes the rows.
    source: Arc<dyn RowSource>,
    /// The projected output schema.
    schema: SchemaRef,
    /// The source's columns to generate, in output order.
    columns: Vec<usize>,
    /// The row ordinals of this partition.
    rows: Range<u64>,
    /// Rows per batch.
    batch_size: u64,
}

impl GeneratorPartition {
    /// One batch: generate, then cast to the declared types where they differ.
    fn batch(&self, rows: Range<u64>) -> Result<RecordBatch> {
        let len = (rows.end - rows.start) as usize;
        let arrays = self.source.generate(&self.columns, rows)?;
        let arrays = arrays
            .into_iter()
            .zip(self.schema.fields())
            .map(|(array, field)| {
                if array.data_type() == field.data_type() {
                    Ok(array)
                } else {
                    Ok(cast_with_options(&array, field.data_type(), &STRICT)?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(len));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            arrays,
            &options,
        )?)
    }
}

impl PartitionStream for GeneratorPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let this = self.clone();
        let rate = self.source.rate().map(|r| r.max(1));
        // A limited rate also limits the batch: a second's rows at most, so a
        // slow stream does not wait long to fill one.
        let step = rate.map_or(self.batch_size, |r| self.batch_size.min(r));
        let (start, end) = (self.rows.start, self.rows.end);
        let starts = (start..end).step_by(step as usize);
        let schema = Arc::clone(&self.schema);
        match rate {
            None => {
                let batches = starts.map(move |s| this.batch(s..s.saturating_add(step).min(end)));
                Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::iter(batches),
                ))
            }
            // At most `rate` rows per wall-clock second: each batch waits
            // until the time its first row is due, counted from the start.
            Some(rate) => {
                let began = tokio::time::Instant::now();
                let batches = futures::stream::iter(starts).then(move |s| {
                    let this = this.clone();
                    async move {
                        let due = std::time::Duration::from_secs_f64((s - start) as f64 / rate as f64);
                        tokio::time::sleep_until(began + due).await;
                        this.batch(s..s.saturating_add(step).min(end))
                    }
                });
                Box::pin(RecordBatchStreamAdapter::new(schema, batches))
            }
        }
    }
}

/// Ordinals `0..n` cut into batches, for tests and benches that drive a
/// source directly.
pub fn batch_ranges(n: u64, batch_size: u64) -> impl Iterator<Item = Range<u64>> {
    (0..n)
        .step_by(batch_size.max(1) as usize)
        .map(move |s| s..(s + batch_size).min(n))
}

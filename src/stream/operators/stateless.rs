//! Operators that keep no state between batches: filter, projection,
//! renaming and LIMIT. Expressions are DataFusion
//! `PhysicalExpr`s, evaluated a batch at a time.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;

use crate::stream::changelog::{Change, Changes};
use crate::stream::operator::{Event, Operator, StreamBatch};

/// `WHERE` / `HAVING`.
pub struct FilterOperator {
    predicate: Arc<dyn PhysicalExpr>,
}

impl FilterOperator {
    /// Keep the rows where `predicate` is true.
    pub fn new(predicate: Arc<dyn PhysicalExpr>) -> Self {
        Self { predicate }
    }
}

impl Operator for FilterOperator {
    fn name(&self) -> String {
        format!("Filter: {}", self.predicate)
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let mask = self
            .predicate
            .evaluate(&input.batch)?
            .into_array(input.batch.num_rows())?;
        let Some(mask) = mask.as_boolean_opt() else {
            return plan_err!("a filter must be a boolean expression, not {}", mask.data_type());
        };
        let kept = match &input.changes {
            None => input.filter(mask)?,
            Some(changes) => filter_changes(&input, mask, changes)?,
        };
        if kept.batch.num_rows() > 0 {
            out.push(Event::Data(kept));
        }
        Ok(())
    }
}

/// The changes of an updating stream that `mask` keeps, with each `-U`/`+U`
/// pair kept together: both pass, the pair stays; only the old row passes,
/// it is deleted (`-D`); only the new one, it is inserted (`+I`). A HAVING
/// that stops holding so takes its row back.
fn filter_changes(input: &StreamBatch, mask: &BooleanArray, changes: &Changes) -> Result<StreamBatch> {
    let passes = |i: usize| mask.is_valid(i) && mask.value(i);
    let rows = input.batch.num_rows();
    let mut keep = vec![false; rows];
    let mut kept_changes = Vec::with_capacity(rows);
    let mut i = 0;
    while i < rows {
        let change = changes.get(i);
        if change == Change::UpdateBefore && i + 1 < rows && changes.get(i + 1) == Change::UpdateAfter {
            match (passes(i), passes(i + 1)) {
                (true, true) => {
                    keep[i] = true;
                    keep[i + 1] = true;
                    kept_changes.extend([Change::UpdateBefore, Change::UpdateAfter]);
                }
                (true, false) => {
                    keep[i] = true;
                    kept_changes.push(Change::Delete);
                }
                (false, true) => {
                    keep[i + 1] = true;
                    kept_changes.push(Change::Insert);
                }
                (false, false) => {}
            }
            i += 2;
            continue;
        }
        if passes(i) {
            keep[i] = true;
            kept_changes.push(change);
        }
        i += 1;
    }
    let keep = BooleanArray::from(keep);
    Ok(StreamBatch {
        batch: arrow::compute::filter_record_batch(&input.batch, &keep)?,
        watermarks: input.watermarks.filter(&keep)?,
        changes: Some(Changes::from_changes(kept_changes)),
    })
}

/// `SELECT` expressions.
pub struct ProjectionOperator {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl ProjectionOperator {
    /// Compute `exprs` into batches of `schema`.
    pub fn new(exprs: Vec<Arc<dyn PhysicalExpr>>, schema: SchemaRef) -> Self {
        Self { exprs, schema }
    }
}

impl Operator for ProjectionOperator {
    fn name(&self) -> String {
        let exprs: Vec<String> = self.exprs.iter().map(|e| e.to_string()).collect();
        format!("Projection: {}", exprs.join(", "))
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let rows = input.batch.num_rows();
        let columns = self
            .exprs
            .iter()
            .map(|e| e.evaluate(&input.batch)?.into_array(rows))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?;
        out.push(Event::Data(input.with_batch(batch)));
        Ok(())
    }
}

/// A new name for the same columns (`AS alias`, a view's name).
pub struct RenameOperator {
    schema: SchemaRef,
}

impl RenameOperator {
    /// Batches take `schema` (same types, in order).
    pub fn new(schema: SchemaRef) -> Self {
        Self { schema }
    }
}

impl Operator for RenameOperator {
    fn name(&self) -> String {
        "Rename".to_string()
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        out.push(Event::Data(input.renamed(&self.schema)?));
        Ok(())
    }
}

/// `LIMIT fetch OFFSET skip`: ends the query once it has its rows.
pub struct LimitOperator {
    skip: usize,
    fetch: Option<usize>,
}

impl LimitOperator {
    /// Skip `skip` rows, then pass `fetch` (all when `None`).
    pub fn new(skip: usize, fetch: Option<usize>) -> Self {
        Self { skip, fetch }
    }
}

impl Operator for LimitOperator {
    fn name(&self) -> String {
        format!("Limit: skip {}, fetch {:?}", self.skip, self.fetch)
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let rows = input.batch.num_rows();
        let skipped = self.skip.min(rows);
        self.skip -= skipped;
        let available = rows - skipped;
        let taken = self.fetch.map_or(available, |f| f.min(available));
        if let Some(fetch) = &mut self.fetch {
            *fetch -= taken;
        }
        if taken > 0 {
            out.push(Event::Data(input.slice(skipped, taken)));
        }
        Ok(())
    }

    fn is_finished(&self) -> bool {
        self.fetch == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operator::RowWatermarks;
    use arrow::array::Int64Array;

    fn batch(values: Vec<i64>) -> StreamBatch {
        let batch = RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(values)) as ArrayRef)])
            .expect("a batch");
        StreamBatch::new(batch, RowWatermarks::Constant(0))
    }

    fn values(events: &[Event]) -> Vec<i64> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Data(b) => Some(
                    b.batch
                        .column(0)
                        .as_primitive::<arrow::datatypes::Int64Type>()
                        .values()
                        .to_vec(),
                ),
                Event::Watermark(_) | Event::End => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn limit_skips_then_takes_across_batches_and_finishes() {
        let mut limit = LimitOperator::new(2, Some(3));
        let mut out = Vec::new();
        limit.process(batch(vec![1]), &mut out).expect("runs");
        limit.process(batch(vec![2, 3, 4]), &mut out).expect("runs");
        assert!(!limit.is_finished());
        limit.process(batch(vec![5, 6, 7]), &mut out).expect("runs");
        assert_eq!(values(&out), vec![3, 4, 5]);
        assert!(limit.is_finished());
    }

    #[test]
    fn a_filter_keeps_update_pairs_together_and_turns_half_pairs_into_inserts_or_deletes() {
        use datafusion::logical_expr::Operator as Op;
        use datafusion::physical_expr::expressions::{BinaryExpr, col, lit};
        let mut rows = batch(vec![1, 2, 3, 9, 8, 1, 9, 8, 2]);
        use Change::*;
        rows.changes = Some(Changes::from_changes([
            UpdateBefore,
            UpdateAfter, // both pass: kept
            UpdateBefore,
            UpdateAfter, // only the old: -D
            UpdateBefore,
            UpdateAfter, // only the new: +I
            UpdateBefore,
            UpdateAfter, // neither
            Delete,
        ]));
        let schema = rows.batch.schema();
        let below_five = Arc::new(BinaryExpr::new(col("v", &schema).expect("v"), Op::Lt, lit(5i64)));
        let mut out = Vec::new();
        FilterOperator::new(below_five)
            .process(rows, &mut out)
            .expect("filters");
        assert_eq!(values(&out), vec![1, 2, 3, 1, 2]);
        let Some(Event::Data(kept)) = out.first() else {
            panic!("rows kept")
        };
        let changes: Vec<Change> = kept.changes.as_ref().expect("changes").iter().collect();
        assert_eq!(changes, [UpdateBefore, UpdateAfter, Delete, Insert, Delete]);
    }
}

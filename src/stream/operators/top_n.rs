//! Top-N per key with retractions: `SELECT * FROM (SELECT *, ROW_NUMBER()
//! OVER (PARTITION BY k ORDER BY x DESC) AS rn FROM t) WHERE rn <= N`
//! (Nexmark q19; with `ORDER BY ts DESC` and `N = 1`, a dedup keeping each
//! key's last row, q18). Not ordered by event time, so no row is final: each
//! key keeps its best `N` rows, and after every input batch the ranks that
//! changed go out as a changelog, as Flink's rank operator sends them: `+I`
//! for a rank newly filled, `-U` (the row that held it) then `+U` (the row
//! that holds it now) for a rank taken over, `-D` never (the input only
//! appends, so a filled rank stays filled). A key whose ranks did not change
//! sends nothing. Among equal ORDER BY values the earlier row ranks first.
//!
//! State: per key, at most `N` rows (in arrow's row format). With
//! `state.ttl`, a key no row touched while the watermark advanced that far is
//! forgotten, silently: its rows stay in the result, and its next row starts
//! it afresh at rank 1 (documented as changing results, as Flink's TTL).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::physical_expr::window::WindowExpr;

use super::window_functions::RowBytes;
use crate::stream::operator::{
    END_OF_INPUT, Event, MILLISECOND, NO_WATERMARK, Nanos, Operator, RowWatermarks, StreamBatch,
};
use crate::stream::{Change, Changes};

/// One row a key ranks.
#[derive(Clone)]
struct Ranked {
    /// Its ORDER BY values, in a form that sorts as the ORDER BY does.
    order: Box<[u8]>,
    /// The row itself.
    row: OwnedRow,
}

/// A key's best rows, best first.
struct Key {
    ranked: Vec<Ranked>,
    /// The watermark when a row last touched it (for `state.ttl`).
    touched: Nanos,
}

/// Keeps each key's best `N` rows and sends the changes of their ranks.
pub struct TopNOperator {
    /// The `ROW_NUMBER()` it stands for: its PARTITION BY is the key, its
    /// ORDER BY the ranking.
    function: Arc<dyn WindowExpr>,
    /// How many ranks a key keeps.
    limit: usize,
    /// The input's columns, then the rank.
    schema: SchemaRef,
    keys: RowConverter,
    order: RowConverter,
    rows: RowConverter,
    state: HashMap<Box<[u8]>, Key>,
    ttl: Option<Nanos>,
    watermark: Nanos,
    swept: Nanos,
}

impl TopNOperator {
    /// The best `limit` rows per PARTITION BY key of `function` by its
    /// ORDER BY, over rows of `input_schema`; rows out are of `schema`.
    pub fn try_new(
        function: Arc<dyn WindowExpr>,
        limit: usize,
        input_schema: SchemaRef,
        schema: SchemaRef,
        ttl: Option<Nanos>,
    ) -> Result<Self> {
        if limit == 0 {
            return plan_err!("a Top-N keeps at least one row per key (ROW_NUMBER() ... <= N with N >= 1)");
        }
        let key_fields = function
            .partition_by()
            .iter()
            .map(|e| Ok(SortField::new(e.data_type(&input_schema)?)))
            .collect::<Result<Vec<_>>>()?;
        let order_fields = function
            .order_by()
            .iter()
            .map(|o| {
                Ok(SortField::new_with_options(
                    o.expr.data_type(&input_schema)?,
                    o.options,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let row_fields = input_schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        Ok(Self {
            function,
            limit,
            schema,
            keys: RowConverter::new(key_fields)?,
            order: RowConverter::new(order_fields)?,
            rows: RowConverter::new(row_fields)?,
            state: HashMap::new(),
            ttl,
            watermark: NO_WATERMARK,
            swept: NO_WATERMARK,
        })
    }

    fn evaluate(
        &self,
        exprs: impl Iterator<Item = Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
        batch: &RecordBatch,
    ) -> Result<Vec<ArrayRef>> {
        exprs
            .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
            .collect()
    }

    /// Rank `batch`'s rows into their keys; the ranks that changed, as
    /// (row, rank, change) in order.
    fn rank(&mut self, batch: &RecordBatch) -> Result<Vec<(OwnedRow, usize, Change)>> {
        let keys = self.evaluate(self.function.partition_by().iter().cloned(), batch)?;
        let order = self.evaluate(
            self.function.order_by().iter().map(|o| Arc::clone(&o.expr)),
            batch,
        )?;
        let keys = RowBytes::new(&self.keys, &keys)?;
        let order = RowBytes::new(&self.order, &order)?;
        let rows = self.rows.convert_columns(batch.columns())?;
        // Each touched key's ranks before this batch, in first-touch order.
        let mut before: Vec<(Box<[u8]>, Vec<Ranked>)> = Vec::new();
        let mut seen: HashSet<Box<[u8]>> = HashSet::new();
        for i in 0..batch.num_rows() {
            let key = keys.get(i);
            if !self.state.contains_key(key) {
                self.state.insert(
                    key.into(),
                    Key {
                        ranked: Vec::new(),
                        touched: NO_WATERMARK,
                    },
                );
            }
            let Some(entry) = self.state.get_mut(key) else {
                continue;
            };
            entry.touched = self.watermark;
            if !seen.contains(key) {
                seen.insert(key.into());
                before.push((key.into(), entry.ranked.clone()));
            }
            // Equal ORDER BY values: the earlier row first, so a newcomer
            // goes after its equals.
            let order = order.get(i);
            let at = entry.ranked.partition_point(|r| r.order.as_ref() <= order);
            if at >= self.limit {
                continue;
            }
            let candidate = Ranked {
                order: order.into(),
                row: rows.row(i).owned(),
            };
            entry.ranked.insert(at, candidate);
            entry.ranked.truncate(self.limit);
        }
        let mut changes = Vec::new();
        for (key, old) in before {
            let Some(now) = self.state.get(&key) else { continue };
            for rank in 0..self.limit.max(old.len()) {
                match (old.get(rank), now.ranked.get(rank)) {
                    // The same row (or an equal one) still holds the rank.
                    (Some(was), Some(is)) if was.row == is.row => {}
                    (Some(was), Some(is)) => {
                        changes.push((was.row.clone(), rank + 1, Change::UpdateBefore));
                        changes.push((is.row.clone(), rank + 1, Change::UpdateAfter));
                    }
                    (None, Some(is)) => changes.push((is.row.clone(), rank + 1, Change::Insert)),
                    (Some(was), None) => changes.push((was.row.clone(), rank + 1, Change::Delete)),
                    (None, None) => {}
                }
            }
        }
        Ok(changes)
    }

    /// The changed ranks as rows with their changes.
    fn emit(&self, changes: Vec<(OwnedRow, usize, Change)>, out: &mut Vec<Event>) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut columns = self
            .rows
            .convert_rows(changes.iter().map(|(row, _, _)| row.row()))?;
        let rank_type = self.schema.field(self.schema.fields().len() - 1).data_type();
        let ranks = changes
            .iter()
            .map(|(_, rank, _)| ScalarValue::UInt64(Some(*rank as u64)).cast_to(rank_type))
            .collect::<Result<Vec<_>>>()?;
        columns.push(ScalarValue::iter_to_array(ranks)?);
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let mut rows = StreamBatch::new(batch, RowWatermarks::Constant(self.watermark));
        rows.changes = Some(Changes::from_changes(changes.iter().map(|(_, _, c)| *c)));
        out.push(Event::Data(rows));
        Ok(())
    }

    /// Forget keys untouched for `state.ttl` of event time.
    fn sweep(&mut self) {
        let Some(ttl) = self.ttl else { return };
        if self.watermark == END_OF_INPUT || self.watermark.saturating_sub(self.swept) < ttl / 2 {
            return;
        }
        self.swept = self.watermark;
        let horizon = self.watermark.saturating_sub(ttl);
        self.state.retain(|_, key| key.touched >= horizon);
    }
}

impl Operator for TopNOperator {
    fn name(&self) -> String {
        format!(
            "TopN (updating) keeping {} per key: {}",
            self.limit,
            self.function.name()
        )
    }

    fn state(&self) -> Option<String> {
        let bound = match self.ttl {
            Some(ttl) => format!(
                "a key untouched while the watermark advances state.ttl ({} ms) is forgotten",
                ttl / MILLISECOND
            ),
            None => "keys are kept for ever (bound them with SET 'state.ttl')".to_string(),
        };
        Some(format!("top_rows: at most {} rows per key; {bound}", self.limit))
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        if input.changes.as_ref().is_some_and(|c| !c.all_inserts()) {
            return datafusion::common::not_impl_err!(
                "a Top-N over an updating input (rows taken back) is not supported yet"
            );
        }
        if input.batch.num_rows() == 0 {
            return Ok(());
        }
        let changes = self.rank(&input.batch)?;
        self.emit(changes, out)
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.sweep();
        }
        out.push(Event::Watermark(watermark));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{Harness, S, check, metrics, window_function};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::functions_window::expr_fn::row_number;
    use datafusion::logical_expr::{ExprFunctionExt, col};

    /// The best two rows `(k, v)` per `k` by `v` descending.
    fn top_two(ttl: Option<Nanos>) -> Harness {
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let expr = row_number()
            .partition_by(vec![col("k")])
            .order_by(vec![col("v").sort(false, true)])
            .build()
            .expect("a window function");
        let (function, field) = window_function(expr, &input, "rn");
        let mut fields = input.fields().to_vec();
        fields.push(field);
        let operator = TopNOperator::try_new(
            function,
            2,
            Arc::clone(&input),
            Arc::new(Schema::new(fields)),
            ttl,
        )
        .expect("a top-n");
        Harness::single(Box::new(operator), input, &metrics())
    }

    #[test]
    fn ranks_that_change_go_out_once_per_batch_and_ties_keep_the_earlier_row() {
        check(
            &mut top_two(None),
            "
            rows (1, 5) (1, 7) (2, 1)
            # 6 takes rank 2 from 5, then the second 7 takes it from 6 (it
            # ties the first 7 and goes after it): one change for the batch.
            rows (1, 6) (1, 7)
            # Nothing better: no change.
            rows (1, 3)
            # 9 takes rank 1; rank 2 still shows a 7: no change there.
            rows (1, 9)
            ",
            "
            +I (1, 7, 1) @-inf
            +I (1, 5, 2) @-inf
            +I (2, 1, 1) @-inf
            -U (1, 5, 2) @-inf
            +U (1, 7, 2) @-inf
            -U (1, 7, 1) @-inf
            +U (1, 9, 1) @-inf
            ",
        );
    }

    #[test]
    fn a_key_untouched_for_the_ttl_starts_afresh() {
        check(
            &mut top_two(Some(10 * S)),
            "
            wm 0
            rows (1, 5)
            wm 5
            # Touched at 5 s: the sweep at 14 s keeps it, the one at 20 s does not.
            rows (1, 4)
            wm 14
            wm 20
            rows (1, 1)
            ",
            "
            wm 0
            +I (1, 5, 1) @0
            wm 5
            +I (1, 4, 2) @5
            wm 14
            wm 20
            +I (1, 1, 1) @20
            ",
        );
    }
}

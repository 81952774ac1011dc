//! Top-N per key with retractions: `SELECT * FROM (SELECT *, ROW_NUMBER()
//! OVER (PARTITION BY k ORDER BY x DESC) AS rn FROM t) WHERE rn <= N`
//! (Nexmark q19; with `ORDER BY ts DESC` and `N = 1`, a dedup keeping each
//! key's last row, q18). Not ordered by event time, so no row is final: each
//! key keeps its best `N` rows, and after every input batch the ranks that
//! changed go out as a changelog, as Flink's rank operator sends them: `+I`
//! for a rank newly filled, `-U` (the row that held it) then `+U` (the row
//! that holds it now) for a rank taken over, `-D` for a rank left empty. A
//! key whose ranks did not change sends nothing. Among equal ORDER BY
//! values the earlier row ranks first.
//!
//! Over appended rows a filled rank stays filled, so a key keeps at most `N`
//! rows (in arrow's row format). Over an updating input (a Top-N over a
//! GROUP BY, Nexmark q105's), a row taken back (`-U`, `-D`) leaves its key
//! and the next row moves up, so a key keeps every row of its input that is
//! in force; taking back a row that is not there is counted and reported,
//! never applied. With
//! `state.ttl`, a key no row touched while the watermark advanced that far is
//! forgotten, silently: its rows stay in the result, and its next row starts
//! it afresh at rank 1 (documented as changing results, as Flink's TTL).

use std::sync::Arc;

use arrow::array::UInt64Array;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::row::{OwnedRow, Row, RowConverter, SortField};
use datafusion::common::{HashMap, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::window::WindowExpr;
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};

use super::window_functions::RowBytes;
use crate::stream::checkpoint::{StateSnapshot, int_columns, int_rows, with_columns};
use crate::stream::memory::StateMemory;
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
    /// The last input batch that touched it (its ranks before that batch
    /// are kept aside once per batch).
    batch: u64,
}

/// What a Top-N ranks by.
#[derive(Clone)]
pub struct Ranking {
    /// The key (a `ROW_NUMBER()`'s PARTITION BY; none for `ORDER BY ...
    /// LIMIT`).
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The ranking (its ORDER BY).
    pub order: Vec<PhysicalSortExpr>,
    /// Whether rows out carry their rank (`ROW_NUMBER()`'s column, last), or
    /// are the top rows alone (`ORDER BY ... LIMIT`).
    pub ranks: bool,
    /// What EXPLAIN calls it.
    pub label: String,
}

impl Ranking {
    /// The ranking of a `ROW_NUMBER()`.
    pub fn of(function: &dyn WindowExpr) -> Self {
        Ranking {
            keys: function.partition_by().to_vec(),
            order: function.order_by().to_vec(),
            ranks: true,
            label: function.name().to_string(),
        }
    }
}

/// Keeps each key's best `N` rows and sends the changes of their ranks.
pub struct TopNOperator {
    /// The key and the order it ranks by.
    ranking: Ranking,
    /// How many ranks a key keeps.
    limit: usize,
    /// The first ranks not shown (an OFFSET; only without a rank column):
    /// the rows shown are ranks `skip + 1` to `limit`.
    skip: usize,
    /// The input's columns, then the rank (if shown).
    schema: SchemaRef,
    /// The rows that come in (a checkpoint's rows are read back as them).
    input_schema: SchemaRef,
    keys: RowConverter,
    order: RowConverter,
    rows: RowConverter,
    /// Keys by their bytes (DataFusion's hash map: foldhash, not SipHash).
    state: HashMap<Vec<u8>, Key>,
    /// Input batches ranked so far (the one being ranked, while it is).
    batches: u64,
    /// The input updates: keep every row, not only the best `limit`.
    retracting: bool,
    metrics: Option<Arc<crate::stream::StreamMetrics>>,
    ttl: Option<Nanos>,
    watermark: Nanos,
    swept: Nanos,
    /// The ranked rows' share of the memory pool.
    memory: StateMemory,
}

impl TopNOperator {
    /// The best `limit` rows per key of `ranking`, over rows of
    /// `input_schema`; rows out are of `schema`.
    pub fn try_new(
        ranking: Ranking,
        limit: usize,
        input_schema: SchemaRef,
        schema: SchemaRef,
        ttl: Option<Nanos>,
    ) -> Result<Self> {
        if limit == 0 {
            return plan_err!("a Top-N keeps at least one row per key (ROW_NUMBER() ... <= N with N >= 1)");
        }
        let key_fields = ranking
            .keys
            .iter()
            .map(|e| Ok(SortField::new(e.data_type(&input_schema)?)))
            .collect::<Result<Vec<_>>>()?;
        let order_fields = ranking
            .order
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
            ranking,
            limit,
            skip: 0,
            schema,
            keys: RowConverter::new(key_fields)?,
            order: RowConverter::new(order_fields)?,
            rows: RowConverter::new(row_fields)?,
            input_schema,
            state: HashMap::default(),
            batches: 0,
            retracting: false,
            metrics: None,
            ttl,
            watermark: NO_WATERMARK,
            swept: NO_WATERMARK,
            memory: StateMemory::new("TopN", "top_rows")
                .with_fix("bound the keys with SET 'state.ttl', a smaller N, fewer keys"),
        })
    }

    /// Show ranks after the first `skip` only (`LIMIT ... OFFSET skip`, no
    /// rank column), as Flink's rank range does; `limit` counts them too.
    pub fn skipping(mut self, skip: usize) -> Self {
        self.skip = skip;
        self
    }

    /// Take an updating input (rows taken back); retractions of rows that
    /// are not there are counted into `metrics`.
    pub fn retracting(mut self, metrics: Arc<crate::stream::StreamMetrics>) -> Self {
        self.retracting = true;
        self.metrics = Some(metrics);
        self
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

    /// Rank `batch`'s rows into their keys; the ranks that changed, as rows
    /// with their changes, in the order their keys were first touched.
    fn rank(&mut self, batch: &RecordBatch, changes: Option<&Changes>) -> Result<Option<StreamBatch>> {
        let keys = self.evaluate(self.ranking.keys.iter().cloned(), batch)?;
        let order = self.evaluate(self.ranking.order.iter().map(|o| Arc::clone(&o.expr)), batch)?;
        let keys = RowBytes::new(&self.keys, &keys)?;
        let order = RowBytes::new(&self.order, &order)?;
        let rows = self.rows.convert_columns(batch.columns())?;
        self.batches += 1;
        // Each touched key's ranks before this batch, in first-touch order,
        // with the first row that touched it (whose key it is).
        let mut before: Vec<(usize, Vec<Ranked>)> = Vec::new();
        let mut unmatched = 0;
        for i in 0..batch.num_rows() {
            let key = keys.get(i);
            let entry = self.state.entry_ref(key).or_insert_with(|| Key {
                ranked: Vec::new(),
                touched: NO_WATERMARK,
                batch: 0,
            });
            entry.touched = self.watermark;
            if entry.batch != self.batches {
                entry.batch = self.batches;
                let shown = entry.ranked.len().min(self.limit);
                before.push((i, entry.ranked[..shown].to_vec()));
            }
            let order = order.get(i);
            if changes.is_some_and(|c| !c.get(i).is_addition()) {
                // Taken back: the row leaves its key, equal ORDER BY values first.
                let from = entry.ranked.partition_point(|r| r.order.as_ref() < order);
                let row = rows.row(i);
                let found = entry.ranked[from..]
                    .iter()
                    .take_while(|r| r.order.as_ref() == order)
                    .position(|r| r.row.row() == row);
                match found {
                    Some(at) => {
                        entry.ranked.remove(from + at);
                    }
                    None => unmatched += 1,
                }
                continue;
            }
            // Equal ORDER BY values: the earlier row first, so a newcomer
            // goes after its equals.
            let at = entry.ranked.partition_point(|r| r.order.as_ref() <= order);
            if at >= self.limit && !self.retracting {
                continue;
            }
            let candidate = Ranked {
                order: order.into(),
                row: rows.row(i).owned(),
            };
            entry.ranked.insert(at, candidate);
            if !self.retracting {
                entry.ranked.truncate(self.limit);
            }
        }
        if unmatched > 0
            && let Some(metrics) = &self.metrics
        {
            metrics.count_unmatched_retractions(unmatched);
        }
        // The changes, as rows of the state or of `before` (no copies).
        let mut changed: Vec<(Row<'_>, usize, Change)> = Vec::new();
        for (first, old) in &before {
            let Some(now) = self.state.get(keys.get(*first)) else {
                continue;
            };
            if !self.ranking.ranks {
                // No rank shown: only rows that left or joined the top count.
                let shown = now.ranked.len().min(self.limit);
                let now = &now.ranked[self.skip.min(shown)..shown];
                let old = &old[self.skip.min(old.len())..];
                let mut kept = vec![false; now.len()];
                for was in old {
                    match (0..now.len()).find(|&j| !kept[j] && now[j].row == was.row) {
                        Some(j) => kept[j] = true,
                        None => changed.push((was.row.row(), 0, Change::Delete)),
                    }
                }
                for (is, kept) in now.iter().zip(kept) {
                    if !kept {
                        changed.push((is.row.row(), 0, Change::Insert));
                    }
                }
                continue;
            }
            for rank in 0..self.limit {
                match (old.get(rank), now.ranked.get(rank)) {
                    // The same row (or an equal one) still holds the rank.
                    (Some(was), Some(is)) if was.row == is.row => {}
                    (Some(was), Some(is)) => {
                        changed.push((was.row.row(), rank + 1, Change::UpdateBefore));
                        changed.push((is.row.row(), rank + 1, Change::UpdateAfter));
                    }
                    (None, Some(is)) => changed.push((is.row.row(), rank + 1, Change::Insert)),
                    (Some(was), None) => changed.push((was.row.row(), rank + 1, Change::Delete)),
                    // No rank past this one is filled either.
                    (None, None) => break,
                }
            }
        }
        self.changed_rows(changed)
    }

    /// The changed ranks as rows with their changes.
    fn changed_rows(&self, changes: Vec<(Row<'_>, usize, Change)>) -> Result<Option<StreamBatch>> {
        if changes.is_empty() {
            return Ok(None);
        }
        let mut columns = self.rows.convert_rows(changes.iter().map(|(row, _, _)| *row))?;
        if self.ranking.ranks {
            let rank_type = self.schema.field(self.schema.fields().len() - 1).data_type();
            let ranks: UInt64Array = changes.iter().map(|(_, rank, _)| *rank as u64).collect();
            columns.push(arrow::compute::cast(&ranks, rank_type)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let mut rows = StreamBatch::new(batch, RowWatermarks::Constant(self.watermark));
        rows.changes = Some(Changes::from_changes(changes.iter().map(|(_, _, c)| *c)));
        Ok(Some(rows))
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
            self.limit, self.ranking.label
        )
    }

    fn state_rows(&self) -> usize {
        // Each key's ranked rows.
        self.state.values().map(|key| key.ranked.len()).sum()
    }

    fn state_bytes(&self) -> usize {
        // An estimate: the keys held times the mean size of a sample of
        // them (entry, key bytes, and their ranked rows' bytes), so a
        // million keys are not walked after every batch.
        const SAMPLE: usize = 64;
        let entry = std::mem::size_of::<(Vec<u8>, Key)>();
        let ranked = std::mem::size_of::<Ranked>();
        let sampled: Vec<usize> = self
            .state
            .iter()
            .take(SAMPLE)
            .map(|(k, key)| {
                entry
                    + k.len()
                    + key
                        .ranked
                        .iter()
                        .map(|r| ranked + r.order.len() + r.row.row().as_ref().len())
                        .sum::<usize>()
            })
            .collect();
        match sampled.len() {
            0 => 0,
            n => sampled.iter().sum::<usize>() / n * self.state.len(),
        }
    }

    fn open(&mut self, task: Arc<TaskContext>) -> futures::future::BoxFuture<'_, Result<()>> {
        let bytes = self.state_bytes();
        self.memory.opened(&task, bytes)
    }

    fn state(&self) -> Option<String> {
        let bound = match self.ttl {
            Some(ttl) => format!(
                "a key untouched while the watermark advances state.ttl ({} ms) is forgotten",
                ttl / MILLISECOND
            ),
            None => "keys are kept for ever (bound them with SET 'state.ttl')".to_string(),
        };
        let rows = if self.retracting {
            "every row of its updating input in force per key (a row taken back lets the next move up)"
                .to_string()
        } else {
            format!("at most {} rows per key", self.limit)
        };
        Some(format!("top_rows: {rows}; {bound}"))
    }

    fn snapshot(&mut self, into: &mut StateSnapshot) -> Result<()> {
        into.put_batch("top_rows", self.rows_batch()?);
        into.put_values("top_times", vec![self.watermark, self.swept]);
        Ok(())
    }

    fn restore(&mut self, from: &StateSnapshot) -> Result<()> {
        self.restore_rows(from.batch("top_rows")?)?;
        match from.values("top_times")? {
            [watermark, swept] => (self.watermark, self.swept) = (*watermark, *swept),
            other => return exec_err!("a Top-N's checkpoint has {} times, not 2", other.len()),
        }
        Ok(())
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let changes = input.changes.as_ref().filter(|c| !c.all_inserts());
        if changes.is_some() && !self.retracting {
            return datafusion::common::internal_err!(
                "a Top-N planned over appended rows was given rows taken back"
            );
        }
        if input.batch.num_rows() == 0 {
            return Ok(());
        }
        let changed = self.rank(&input.batch, changes)?;
        self.reserve()?;
        out.extend(changed.map(Event::Data));
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Nanos, out: &mut Vec<Event>) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.sweep();
        }
        out.push(Event::Watermark(watermark));
        self.reserve()
    }
}

impl TopNOperator {
    /// Resize the memory pool's share to the ranked rows.
    fn reserve(&self) -> Result<()> {
        self.memory.resize(self.state_bytes(), || {
            format!("{} rows of {} keys", self.state_rows(), self.state.len())
        })
    }

    /// Every ranked row, a key's rows together and best first: when its key
    /// was last touched, then the row's columns. A key with no row left
    /// (all taken back) is not kept: it ranks as a key never seen.
    fn rows_batch(&self) -> Result<RecordBatch> {
        let ranked = self
            .state
            .values()
            .flat_map(|key| key.ranked.iter().map(move |r| (key.touched, r.row.row())));
        let (touched, rows): (Vec<Nanos>, Vec<_>) = ranked.unzip();
        let columns = self.rows.convert_rows(rows)?;
        let touched = int_columns(&["touched"], touched.into_iter().map(|t| vec![t]))?;
        with_columns(touched, vec![columns])
    }

    /// Take back the rows [`TopNOperator::rows_batch`] wrote: their keys and
    /// ORDER BY values are evaluated again, and each key gets its rows in
    /// the order kept.
    fn restore_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        let touched = int_rows(batch, 1)?;
        let rows = RecordBatch::try_new(Arc::clone(&self.input_schema), batch.columns()[1..].to_vec())?;
        let keys = self.evaluate(self.ranking.keys.iter().cloned(), &rows)?;
        let order = self.evaluate(self.ranking.order.iter().map(|o| Arc::clone(&o.expr)), &rows)?;
        let keys = RowBytes::new(&self.keys, &keys)?;
        let order = RowBytes::new(&self.order, &order)?;
        let converted = self.rows.convert_columns(rows.columns())?;
        self.state.clear();
        for (i, touched) in touched.iter().enumerate() {
            let key = self.state.entry_ref(keys.get(i)).or_insert_with(|| Key {
                ranked: Vec::new(),
                touched: touched[0],
                batch: 0,
            });
            key.ranked.push(Ranked {
                order: order.get(i).into(),
                row: converted.row(i).owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operators::testing::{
        Harness, S, check, check_memory_limit, metrics, window_function_out,
    };
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::functions_window::expr_fn::row_number;
    use datafusion::logical_expr::{ExprFunctionExt, col};

    /// The best two rows `(k, v)` per `k` by `v` descending.
    fn top_two(ttl: Option<Nanos>) -> Harness {
        Harness::single(Box::new(top_two_operator(ttl)), pairs(), &metrics())
    }

    /// Rows `(k, v)`.
    fn pairs() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]))
    }

    fn top_two_operator(ttl: Option<Nanos>) -> TopNOperator {
        let input = pairs();
        let expr = row_number()
            .partition_by(vec![col("k")])
            .order_by(vec![col("v").sort(false, true)])
            .build()
            .expect("a window function");
        let (function, schema) = window_function_out(expr, &input, "rn");
        TopNOperator::try_new(Ranking::of(function.as_ref()), 2, input, schema, ttl).expect("a top-n")
    }

    #[test]
    fn a_restored_top_n_carries_on_where_it_stopped() {
        crate::stream::operators::testing::check_restores(
            || top_two(Some(10 * S)),
            "
            wm 0
            rows (1, 5) (1, 7) (2, 1)
            rows (1, 6) (1, 7)
            wm 5
            rows (1, 3) (2, 4)
            rows (1, 9)
            # 2 was touched at 5 s: the sweep at 16 s forgets it, not 1.
            wm 12
            rows (1, 8)
            wm 16
            rows (2, 0) (1, 10)
            state
            ",
        );
    }

    #[test]
    fn a_restored_top_n_over_an_updating_input_carries_on_where_it_stopped() {
        let steps: &[&[(&str, &str)]] = &[
            &[
                ("+I", "(1, 5)"),
                ("+I", "(1, 7)"),
                ("+I", "(1, 3)"),
                ("+I", "(2, 4)"),
            ],
            &[("-U", "(1, 7)"), ("+U", "(1, 2)")],
            &[("-D", "(2, 4)"), ("+I", "(1, 6)")],
            &[("-D", "(1, 5)"), ("-D", "(1, 6)")],
            &[("-D", "(1, 3)"), ("+I", "(2, 1)")],
            &[("-D", "(1, 2)")],
        ];
        let make = || top_two_operator(None).retracting(metrics());
        let mut straight = make();
        let expected: Vec<Vec<String>> = steps.iter().map(|s| feed(&mut straight, s)).collect();
        // A checkpoint after each step: a restored operator goes on alike.
        for at in 0..steps.len() {
            let mut operator = make();
            for (i, step) in steps.iter().enumerate() {
                assert_eq!(feed(&mut operator, step), expected[i], "restored after step {at}");
                if i == at {
                    let mut state = StateSnapshot::default();
                    operator.snapshot(&mut state).expect("a snapshot");
                    let state = StateSnapshot::decode(&state.encode().expect("bytes")).expect("decoded");
                    operator = make();
                    operator.restore(&state).expect("restored");
                }
            }
        }
    }

    #[test]
    fn state_bytes_follow_the_ranked_rows() {
        let mut h = top_two(None);
        assert_eq!(h.state_bytes(), 0);
        h.run("rows (1, 5) (2, 1)");
        let two_keys = h.state_bytes();
        assert!(two_keys > 0, "ranked rows have bytes");
        h.run("rows (1, 7) (3, 2)");
        assert!(h.state_bytes() > two_keys, "more rows and keys, more bytes");
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

    /// Feed rows `(k, v)` with their changes; what comes out, a line a row.
    fn feed(operator: &mut TopNOperator, rows: &[(&str, &str)]) -> Vec<String> {
        use crate::stream::operators::testing::batch;
        let input = pairs();
        let tuples: Vec<&str> = rows.iter().map(|(_, t)| *t).collect();
        let mut rows_in = StreamBatch::new(batch(&input, &tuples.join(" ")), RowWatermarks::Constant(0));
        rows_in.changes = Some(Changes::from_changes(
            rows.iter().map(|(op, _)| Change::parse(op).expect("a change")),
        ));
        let mut out = Vec::new();
        operator.process(rows_in, &mut out).expect("processes");
        crate::stream::operators::testing::changes_text(&out)
    }

    #[test]
    fn over_an_updating_input_a_row_taken_back_lets_the_next_move_up() {
        let metrics = metrics();
        let mut operator = top_two_operator(None).retracting(Arc::clone(&metrics));
        assert_eq!(
            feed(
                &mut operator,
                &[("+I", "(1, 5)"), ("+I", "(1, 7)"), ("+I", "(1, 3)")]
            ),
            ["+I (1, 7, 1)", "+I (1, 5, 2)"]
        );
        // 7 becomes 2 (an aggregate's update): 5 moves up, 3 comes in.
        assert_eq!(
            feed(&mut operator, &[("-U", "(1, 7)"), ("+U", "(1, 2)")]),
            ["-U (1, 7, 1)", "+U (1, 5, 1)", "-U (1, 5, 2)", "+U (1, 3, 2)"]
        );
        // Down to one row, then none: ranks left empty are deleted.
        assert_eq!(
            feed(&mut operator, &[("-D", "(1, 5)"), ("-D", "(1, 2)")]),
            ["-U (1, 5, 1)", "+U (1, 3, 1)", "-D (1, 3, 2)"]
        );
        assert_eq!(feed(&mut operator, &[("-D", "(1, 3)")]), ["-D (1, 3, 1)"]);
        // Taking back a row that is not there is counted, not applied.
        assert!(feed(&mut operator, &[("-D", "(1, 9)")]).is_empty());
        assert_eq!(
            metrics
                .unmatched_retractions
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }

    #[test]
    fn ranked_rows_beyond_the_memory_limit_are_an_error_naming_them() {
        let script = "rows (1, 5) (1, 7) (2, 1)";
        check_memory_limit(|| top_two(None), script, "TopN", "top_rows: 3 rows of 2 keys");
    }

    #[test]
    fn state_bytes_grow_with_the_keys() {
        let mut h = top_two(None);
        assert_eq!(h.state_bytes(), 0);
        h.run("rows (1, 5)");
        let one = h.state_bytes();
        assert!(one > 0, "a ranked row has bytes");
        h.run("rows (2, 5) (3, 5)");
        assert_eq!(h.state_bytes(), 3 * one, "three keys of one shape");
    }
}

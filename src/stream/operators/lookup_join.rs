//! A stream joined with a bounded table (enrichment, a lookup): the table
//! is read once when the query starts, by DataFusion, and indexed by its join
//! keys (arrow's row format); each stream batch then probes the index and
//! takes the matching rows of both sides. The stream's rows keep their
//! watermarks, so windows after the join work as before it.
//!
//! Inner, outer on the stream's side, semi and anti joins; equality keys
//! (NULL matches nothing) and any extra condition. A cross join (no keys)
//! pairs every row with every table row: HOP uses it to copy rows into their
//! windows when it cannot aggregate per pane.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::datatypes::SchemaRef;
use datafusion::common::{JoinType, not_impl_err};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;

use super::join::{JoinKeys, KeyIndex, Side, filter_pairs, hits, keep, left_then_right, take_columns};
use crate::stream::checkpoint::StateSnapshot;
use crate::stream::operator::{Event, Operator, StreamBatch};

/// Which rows a join keeps, seen from the stream's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Matching pairs.
    Pairs,
    /// Matching pairs, and stream rows without a match (table columns NULL).
    PairsAndUnmatched,
    /// Stream rows with a match (their columns only).
    Matched,
    /// Stream rows without a match (their columns only).
    Unmatched,
}

/// The operator.
pub struct LookupJoinOperator {
    /// The stream's keys, compared in the table's key types.
    stream_keys: JoinKeys,
    table: RecordBatch,
    /// Table rows by key (without keys, every row under the one empty key:
    /// every row matches).
    index: KeyIndex<u32>,
    /// The stream's side of the join.
    side: Side,
    keep: Keep,
    /// The extra condition, over the left columns then the right ones.
    filter: Option<Arc<dyn PhysicalExpr>>,
    /// Left then right columns (what the filter sees).
    pairs_schema: SchemaRef,
    schema: SchemaRef,
}

impl LookupJoinOperator {
    /// Join the stream (left or right) with `table` on `stream_keys = table_keys`.
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        join_type: JoinType,
        stream_is_left: bool,
        stream_keys: Vec<Arc<dyn PhysicalExpr>>,
        table: RecordBatch,
        table_keys: Vec<Arc<dyn PhysicalExpr>>,
        filter: Option<Arc<dyn PhysicalExpr>>,
        pairs_schema: SchemaRef,
        schema: SchemaRef,
    ) -> Result<Self> {
        let keep = match (join_type, stream_is_left) {
            (JoinType::Inner, _) => Keep::Pairs,
            (JoinType::Left, true) | (JoinType::Right, false) => Keep::PairsAndUnmatched,
            (JoinType::LeftSemi, true) | (JoinType::RightSemi, false) => Keep::Matched,
            (JoinType::LeftAnti, true) | (JoinType::RightAnti, false) => Keep::Unmatched,
            (other, _) => {
                return not_impl_err!(
                    "a {other} join keeps rows of the bounded table that no stream row matched, which needs the end of the stream; joins of a stream and a table keep the stream's side"
                );
            }
        };
        // Stream keys are cast to the table's key types.
        let key_types = table_keys
            .iter()
            .map(|k| k.data_type(&table.schema()))
            .collect::<Result<Vec<_>>>()?;
        let table_keys = JoinKeys::try_new(table_keys, key_types.clone())?;
        let index = KeyIndex::build(&table_keys.of(&table)?);
        Ok(Self {
            stream_keys: JoinKeys::try_new(stream_keys, key_types)?,
            table,
            index,
            side: if stream_is_left { Side::Left } else { Side::Right },
            keep,
            filter,
            pairs_schema,
            schema,
        })
    }

    /// Left-then-right columns of the given pairs.
    fn pair_columns(
        &self,
        batch: &RecordBatch,
        stream: &UInt32Array,
        table: &UInt32Array,
    ) -> Result<Vec<ArrayRef>> {
        Ok(left_then_right(
            self.side,
            take_columns(batch, stream)?,
            take_columns(&self.table, table)?,
        ))
    }
}

impl Operator for LookupJoinOperator {
    fn name(&self) -> String {
        format!(
            "LookupJoin: stream {} a bounded table of {} rows, {:?}",
            match self.side {
                Side::Left => "left of",
                Side::Right => "right of",
            },
            self.table.num_rows(),
            self.keep
        )
    }

    fn state(&self) -> Option<String> {
        Some(format!(
            "the table's {} rows, indexed by key (bounded)",
            self.table.num_rows()
        ))
    }

    // Its state is the table, read again when a restarted query opens it
    // (so a resumed query sees the table as it is then, as a fresh one
    // would); nothing is kept from one stream batch to the next, so a
    // checkpoint holds nothing of it.
    fn snapshot(&mut self, _into: &mut StateSnapshot) -> Result<()> {
        Ok(())
    }

    fn restore(&mut self, _from: &StateSnapshot) -> Result<()> {
        Ok(())
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let batch = &input.batch;
        let (mut stream_rows, mut table_rows) = self.index.probe(&self.stream_keys.of(batch)?);
        if self.filter.is_some() {
            let (s, t) = (
                UInt32Array::from(stream_rows.clone()),
                UInt32Array::from(table_rows.clone()),
            );
            let columns = self.pair_columns(batch, &s, &t)?;
            let (mask, _) = filter_pairs(self.filter.as_ref(), &self.pairs_schema, columns, s.len())?;
            stream_rows = keep(&stream_rows, mask.as_ref());
            table_rows = keep(&table_rows, mask.as_ref());
        }
        let matched = hits(batch.num_rows(), &stream_rows);
        let output = match self.keep {
            Keep::Matched | Keep::Unmatched => {
                let wanted = self.keep == Keep::Matched;
                let mask = BooleanArray::from(matched.iter().map(|&m| m == wanted).collect::<Vec<_>>());
                input.filter(&mask)?
            }
            Keep::Pairs | Keep::PairsAndUnmatched => {
                if self.keep == Keep::PairsAndUnmatched {
                    for (row, _) in matched.iter().enumerate().filter(|(_, m)| !**m) {
                        stream_rows.push(row as u32);
                        table_rows.push(u32::MAX);
                    }
                }
                let stream_idx = UInt32Array::from(stream_rows);
                // Unmatched rows take NULL table columns: a null index takes NULL.
                let table_idx: UInt32Array =
                    table_rows.iter().map(|&t| (t != u32::MAX).then_some(t)).collect();
                let columns = self.pair_columns(batch, &stream_idx, &table_idx)?;
                let options = RecordBatchOptions::new().with_row_count(Some(stream_idx.len()));
                let joined = RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?;
                let watermarks = input.watermarks.take(&stream_idx)?;
                let changes = input.changes.as_ref().map(|c| c.take(&stream_idx)).transpose()?;
                StreamBatch {
                    batch: joined,
                    watermarks,
                    changes,
                }
            }
        };
        if output.batch.num_rows() > 0 {
            out.push(Event::Data(output));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operator::RowWatermarks;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::col;

    fn stream() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "k",
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(1)])) as ArrayRef,
            ),
            (
                "v",
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])) as ArrayRef,
            ),
        ])
        .expect("a batch")
    }

    fn table() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 3])) as ArrayRef),
            (
                "name",
                Arc::new(StringArray::from(vec!["one", "three"])) as ArrayRef,
            ),
        ])
        .expect("a batch")
    }

    /// The stream joined with [`table`] on `k = id`.
    fn operator(join_type: JoinType) -> LookupJoinOperator {
        let (stream, table) = (stream(), table());
        let pairs = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, true),
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let schema = match join_type {
            JoinType::LeftSemi | JoinType::LeftAnti => stream.schema(),
            _ => Arc::clone(&pairs),
        };
        LookupJoinOperator::try_new(
            join_type,
            true,
            vec![col("k", &stream.schema()).expect("k")],
            table.clone(),
            vec![col("id", &table.schema()).expect("id")],
            None,
            pairs,
            schema,
        )
        .expect("plans")
    }

    fn join(join_type: JoinType) -> Vec<String> {
        let (stream, mut operator) = (stream(), operator(join_type));
        let mut out = Vec::new();
        operator
            .process(StreamBatch::new(stream, RowWatermarks::Constant(0)), &mut out)
            .expect("joins");
        let mut rows = Vec::new();
        for event in out {
            if let Event::Data(b) = event {
                let text = arrow::util::pretty::pretty_format_batches(&[b.batch])
                    .expect("prints")
                    .to_string();
                rows.extend(
                    text.lines()
                        .filter(|l| l.starts_with("| "))
                        .skip(1)
                        .map(|l| l.to_string()),
                );
            }
        }
        rows.sort();
        rows
    }

    #[test]
    fn a_lookup_join_keeps_nothing_in_a_checkpoint_and_joins_the_same_after_one() {
        let mut snapshot = crate::stream::checkpoint::StateSnapshot::default();
        operator(JoinType::Left)
            .snapshot(&mut snapshot)
            .expect("not refused");
        assert!(snapshot.is_empty());
        let harness = || {
            let metrics = crate::stream::operators::testing::metrics();
            crate::stream::operators::testing::Harness::single(
                Box::new(operator(JoinType::Left)),
                stream().schema(),
                &metrics,
            )
        };
        crate::stream::operators::testing::check_restores(
            harness,
            "
            rows (1, 'a') (2, 'b')
            wm 5
            rows (3, 'x') (null, 'y') (1, 'z')
            end
            ",
        );
    }

    #[test]
    fn inner_join_pairs_matches_and_null_keys_match_nothing() {
        assert_eq!(
            join(JoinType::Inner),
            ["| 1 | a | 1  | one  |", "| 1 | d | 1  | one  |"]
        );
    }

    #[test]
    fn left_join_keeps_unmatched_stream_rows_with_nulls() {
        let rows = join(JoinType::Left);
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert!(rows.contains(&"| 2 | b |    |      |".to_string()), "{rows:?}");
        assert!(rows.contains(&"|   | c |    |      |".to_string()), "{rows:?}");
    }

    #[test]
    fn semi_and_anti_joins_keep_stream_columns() {
        assert_eq!(join(JoinType::LeftSemi), ["| 1 | a |", "| 1 | d |"]);
        assert_eq!(join(JoinType::LeftAnti), ["|   | c |", "| 2 | b |"]);
    }

    #[test]
    fn a_full_join_is_refused() {
        let table = table();
        let refused = LookupJoinOperator::try_new(
            JoinType::Full,
            true,
            vec![],
            table.clone(),
            vec![],
            None,
            table.schema(),
            table.schema(),
        );
        assert!(refused.is_err());
    }
}

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

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::{JoinType, not_impl_err};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;

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
    stream_keys: Vec<Arc<dyn PhysicalExpr>>,
    table: RecordBatch,
    /// Table rows by key; `None` without keys (every row matches).
    index: Option<HashMap<OwnedRow, Vec<u32>>>,
    converter: Option<RowConverter>,
    /// The table's key types: stream keys are cast to them.
    key_types: Vec<arrow::datatypes::DataType>,
    stream_is_left: bool,
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
        let mut key_types = Vec::new();
        let (index, converter) = if table_keys.is_empty() {
            (None, None)
        } else {
            let keys = table_keys
                .iter()
                .map(|k| k.evaluate(&table)?.into_array(table.num_rows()))
                .collect::<Result<Vec<ArrayRef>>>()?;
            key_types = keys.iter().map(|k| k.data_type().clone()).collect();
            let converter = RowConverter::new(key_types.iter().map(|t| SortField::new(t.clone())).collect())?;
            let rows = converter.convert_columns(&keys)?;
            let mut index: HashMap<OwnedRow, Vec<u32>> = HashMap::new();
            for row in 0..table.num_rows() {
                if keys.iter().all(|k| k.is_valid(row)) {
                    index.entry(rows.row(row).owned()).or_default().push(row as u32);
                }
            }
            (Some(index), Some(converter))
        };
        Ok(Self {
            stream_keys,
            table,
            index,
            converter,
            key_types,
            stream_is_left,
            keep,
            filter,
            pairs_schema,
            schema,
        })
    }

    /// Matching (stream row, table row) pairs.
    fn pairs(&self, batch: &RecordBatch) -> Result<(Vec<u32>, Vec<u32>)> {
        let rows = batch.num_rows();
        let (mut stream, mut table) = (Vec::new(), Vec::new());
        match (&self.index, &self.converter) {
            (Some(index), Some(converter)) => {
                let keys = self
                    .stream_keys
                    .iter()
                    .map(|k| k.evaluate(batch)?.into_array(rows))
                    .collect::<Result<Vec<ArrayRef>>>()?;
                // Keys of the stream's type, compared in the table's.
                let keys = keys
                    .iter()
                    .zip(&self.key_types)
                    .map(|(k, t)| {
                        if k.data_type() == t {
                            Ok(Arc::clone(k))
                        } else {
                            Ok(arrow::compute::cast(k, t)?)
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                let converted = converter.convert_columns(&keys)?;
                for row in 0..rows {
                    if !keys.iter().all(|k| k.is_valid(row)) {
                        continue;
                    }
                    if let Some(matches) = index.get(&converted.row(row).owned()) {
                        stream.extend(std::iter::repeat_n(row as u32, matches.len()));
                        table.extend_from_slice(matches);
                    }
                }
            }
            _ => {
                for row in 0..rows as u32 {
                    for t in 0..self.table.num_rows() as u32 {
                        stream.push(row);
                        table.push(t);
                    }
                }
            }
        }
        Ok((stream, table))
    }

    /// Left-then-right columns of the given pairs.
    fn pair_columns(
        &self,
        batch: &RecordBatch,
        stream: &UInt32Array,
        table: &UInt32Array,
    ) -> Result<Vec<ArrayRef>> {
        let side = |b: &RecordBatch, idx: &UInt32Array| -> Result<Vec<ArrayRef>> {
            b.columns().iter().map(|c| Ok(take(c, idx, None)?)).collect()
        };
        let (stream_columns, table_columns) = (side(batch, stream)?, side(&self.table, table)?);
        Ok(if self.stream_is_left {
            stream_columns.into_iter().chain(table_columns).collect()
        } else {
            table_columns.into_iter().chain(stream_columns).collect()
        })
    }
}

impl Operator for LookupJoinOperator {
    fn name(&self) -> String {
        format!(
            "LookupJoin: stream {} a bounded table of {} rows, {:?}",
            if self.stream_is_left {
                "left of"
            } else {
                "right of"
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

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let batch = &input.batch;
        let (mut stream_rows, mut table_rows) = self.pairs(batch)?;
        if let Some(filter) = &self.filter {
            let (s, t) = (
                UInt32Array::from(stream_rows.clone()),
                UInt32Array::from(table_rows.clone()),
            );
            let options = RecordBatchOptions::new().with_row_count(Some(s.len()));
            let pairs = RecordBatch::try_new_with_options(
                Arc::clone(&self.pairs_schema),
                self.pair_columns(batch, &s, &t)?,
                &options,
            )?;
            let mask = filter.evaluate(&pairs)?.into_array(pairs.num_rows())?;
            let mask = mask.as_boolean();
            let keep = |v: Vec<u32>| -> Vec<u32> {
                v.into_iter()
                    .enumerate()
                    .filter(|(i, _)| mask.is_valid(*i) && mask.value(*i))
                    .map(|(_, x)| x)
                    .collect()
            };
            stream_rows = keep(stream_rows);
            table_rows = keep(table_rows);
        }
        let mut matched = vec![false; batch.num_rows()];
        for &row in &stream_rows {
            matched[row as usize] = true;
        }
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
                let changes = input
                    .changes
                    .as_ref()
                    .map(|c| take(c.as_ref(), &stream_idx, None))
                    .transpose()?;
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

    fn join(join_type: JoinType) -> Vec<String> {
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
        let mut operator = LookupJoinOperator::try_new(
            join_type,
            true,
            vec![col("k", &stream.schema()).expect("k")],
            table.clone(),
            vec![col("id", &table.schema()).expect("id")],
            None,
            pairs,
            schema,
        )
        .expect("plans");
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

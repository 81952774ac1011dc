//! `unnest(...)` over a stream: each row becomes one row per element of its
//! lists (and a struct's fields become columns). It keeps no state: each
//! batch goes through DataFusion's own `UnnestExec`, planned over that batch
//! alone, so the expansion (its NULL and empty-list rules, recursive depths,
//! several lists of unequal lengths) is DataFusion's, as batch runs it.
//!
//! A column of row numbers rides along through the expansion (an unnested
//! plan repeats every column it does not unnest), so each output row keeps
//! the watermark its input row arrived under, and its change. A changed row
//! of an updating input may expand into any number of rows, so `-U`/`+U`
//! pairs cannot stay pairs: an old row's expansion goes out as `-D` rows, a
//! new one's as `+I`, which fold to the same result.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use datafusion::common::{UnnestOptions, internal_err, plan_err};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::unnest::{ListUnnest, UnnestExec};
use futures::TryStreamExt;

use crate::stream::changelog::{Change, Changes};
use crate::stream::operator::{Event, Operator, StreamBatch};

/// The column of input row numbers carried through the expansion.
const ROW: &str = "__sluice_unnest_row";

/// What an unnest does, as DataFusion's logical `Unnest` node says it.
#[derive(Debug, Clone)]
pub struct UnnestSpec {
    /// The list columns unnested (input index and depth).
    pub lists: Vec<ListUnnest>,
    /// The struct columns flattened (input indices).
    pub structs: Vec<usize>,
    /// NULL and empty-list handling.
    pub options: UnnestOptions,
    /// The input's columns.
    pub input_schema: SchemaRef,
    /// The output's columns.
    pub schema: SchemaRef,
}

/// `unnest(...)`: DataFusion's `UnnestExec` over each batch.
pub struct UnnestOperator {
    /// What it unnests.
    spec: UnnestSpec,
    /// The input's columns, then [`ROW`].
    numbered_input: SchemaRef,
    /// The output's columns, then [`ROW`].
    numbered_output: SchemaRef,
    /// What `UnnestExec` runs in (it reads nothing from it but its batch size).
    task: Arc<TaskContext>,
}

impl UnnestOperator {
    /// Unnest as `spec` says; its schemas must be the logical node's.
    pub fn try_new(spec: UnnestSpec) -> Result<Self> {
        let numbered = |schema: &Schema| -> Result<SchemaRef> {
            if schema.column_with_name(ROW).is_some() {
                return plan_err!("a column may not be named {ROW} under an unnest in a continuous query");
            }
            let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
            fields.push(Arc::new(Field::new(ROW, DataType::UInt32, false)));
            Ok(Arc::new(Schema::new_with_metadata(
                fields,
                schema.metadata().clone(),
            )))
        };
        Ok(Self {
            numbered_input: numbered(&spec.input_schema)?,
            numbered_output: numbered(&spec.schema)?,
            spec,
            task: Arc::new(TaskContext::default()),
        })
    }

    /// `batch` unnested, with the input row number of each output row.
    fn unnest(&self, batch: &RecordBatch) -> Result<(RecordBatch, UInt32Array)> {
        let rows = batch.num_rows();
        let Ok(count) = u32::try_from(rows) else {
            return plan_err!("a batch of {rows} rows is too large to unnest");
        };
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(UInt32Array::from_iter_values(0..count)));
        let numbered = RecordBatch::try_new(Arc::clone(&self.numbered_input), columns)?;
        let input =
            MemorySourceConfig::try_new_exec(&[vec![numbered]], Arc::clone(&self.numbered_input), None)?;
        let exec = UnnestExec::new(
            input,
            self.spec.lists.clone(),
            self.spec.structs.clone(),
            Arc::clone(&self.numbered_output),
            self.spec.options.clone(),
        )?;
        // Over batches in memory the stream never waits: it runs to its end
        // on this thread.
        let stream = exec.execute(0, Arc::clone(&self.task))?;
        let parts: Vec<RecordBatch> = futures::executor::block_on(stream.try_collect())?;
        let out = concat_batches(&self.numbered_output, &parts)?;
        let Some(row) = out.column(out.num_columns() - 1).as_primitive_opt::<UInt32Type>() else {
            return internal_err!("unnest lost its row numbers");
        };
        let row = row.clone();
        let options = RecordBatchOptions::new().with_row_count(Some(out.num_rows()));
        let columns = out.columns()[..out.num_columns() - 1].to_vec();
        let batch = RecordBatch::try_new_with_options(Arc::clone(&self.spec.schema), columns, &options)?;
        Ok((batch, row))
    }
}

impl Operator for UnnestOperator {
    fn name(&self) -> String {
        let lists: Vec<String> = self
            .spec
            .lists
            .iter()
            .map(|l| {
                self.spec
                    .input_schema
                    .field(l.index_in_input_schema)
                    .name()
                    .clone()
            })
            .chain(
                self.spec
                    .structs
                    .iter()
                    .map(|&s| self.spec.input_schema.field(s).name().clone()),
            )
            .collect();
        format!("Unnest: {}", lists.join(", "))
    }

    fn process(&mut self, input: StreamBatch, out: &mut Vec<Event>) -> Result<()> {
        let (batch, row) = self.unnest(&input.batch)?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let changes = match &input.changes {
            None => None,
            Some(changes) => Some(Changes::from_changes(changes.take(&row)?.iter().map(
                |change| match change {
                    Change::UpdateBefore => Change::Delete,
                    Change::UpdateAfter => Change::Insert,
                    other => other,
                },
            ))),
        };
        out.push(Event::Data(StreamBatch {
            batch,
            watermarks: input.watermarks.take(&row)?,
            changes,
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::operator::RowWatermarks;
    use arrow::array::{ArrayRef, Int64Array, ListArray};
    use arrow::datatypes::Int64Type;

    /// `(k, list)` rows unnested on `list`.
    fn operator() -> UnnestOperator {
        let item = Arc::new(Field::new_list_field(DataType::Int64, true));
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("l", DataType::List(item), true),
        ]));
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("l", DataType::Int64, true),
        ]));
        UnnestOperator::try_new(UnnestSpec {
            lists: vec![ListUnnest {
                index_in_input_schema: 1,
                depth: 1,
            }],
            structs: vec![],
            options: UnnestOptions::default(),
            input_schema: input,
            schema,
        })
        .expect("an operator")
    }

    fn rows(lists: Vec<Option<Vec<Option<i64>>>>) -> RecordBatch {
        let keys = Int64Array::from_iter_values(1..=lists.len() as i64);
        let lists = ListArray::from_iter_primitive::<Int64Type, _, _>(lists);
        RecordBatch::try_from_iter([
            ("k", Arc::new(keys) as ArrayRef),
            ("l", Arc::new(lists) as ArrayRef),
        ])
        .expect("a batch")
    }

    fn column(batch: &RecordBatch, i: usize) -> Vec<Option<i64>> {
        batch.column(i).as_primitive::<Int64Type>().iter().collect()
    }

    #[test]
    fn each_row_expands_with_its_watermark() {
        let mut unnest = operator();
        let input = rows(vec![
            Some(vec![Some(1), Some(2)]),
            None,
            Some(vec![]),
            Some(vec![Some(3)]),
        ]);
        let watermarks = RowWatermarks::PerRow(Arc::new(Int64Array::from(vec![10, 20, 30, 40])));
        let mut out = Vec::new();
        unnest
            .process(StreamBatch::new(input, watermarks), &mut out)
            .expect("runs");
        let [Event::Data(batch)] = out.as_slice() else {
            panic!("one batch out");
        };
        // Under DataFusion's default options a NULL list gives a NULL row
        // and an empty list none.
        assert_eq!(column(&batch.batch, 0), vec![Some(1), Some(1), Some(2), Some(4)]);
        assert_eq!(column(&batch.batch, 1), vec![Some(1), Some(2), None, Some(3)]);
        let times: Vec<i64> = (0..4).map(|i| batch.watermarks.get(i)).collect();
        assert_eq!(times, vec![10, 10, 20, 40]);
    }

    #[test]
    fn an_updated_row_expands_into_deletes_and_inserts() {
        let mut unnest = operator();
        let mut input = StreamBatch::new(
            rows(vec![Some(vec![Some(1), Some(2)]), Some(vec![Some(5)])]),
            RowWatermarks::Constant(0),
        );
        input.changes = Some(Changes::from_changes([Change::UpdateBefore, Change::UpdateAfter]));
        let mut out = Vec::new();
        unnest.process(input, &mut out).expect("runs");
        let [Event::Data(batch)] = out.as_slice() else {
            panic!("one batch out");
        };
        let changes: Vec<Change> = batch.changes.as_ref().expect("changes").iter().collect();
        assert_eq!(changes, vec![Change::Delete, Change::Delete, Change::Insert]);
    }
}

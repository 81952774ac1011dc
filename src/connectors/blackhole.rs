//! The `blackhole` connector, after Flink's: a sink that takes every row and
//! keeps none. `INSERT INTO` a blackhole table runs the query to the end and
//! returns the number of rows written, as any DataFusion INSERT does; reading
//! the table gives no rows. Benchmarks (Nexmark) write to it to measure a
//! query without the cost of an output.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{SchemaExt, plan_err, project_schema};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::StreamExt;

use super::Options;

/// The options a blackhole table accepts (none of its own).
const ACCEPTED: &[&str] = &["connector"];

/// A table whose inserts are consumed and counted, and which reads as empty.
#[derive(Debug)]
pub struct BlackholeTable {
    /// The declared columns: what an INSERT must produce.
    schema: SchemaRef,
}

impl BlackholeTable {
    /// A blackhole table with the columns written in `CREATE TABLE`, which it
    /// needs: with no files or generator behind it, nothing else says them.
    pub fn try_new(declared: Option<SchemaRef>, mut options: Options) -> Result<Self> {
        options.take("connector");
        options.finish("blackhole", ACCEPTED)?;
        match declared {
            Some(schema) => Ok(Self { schema }),
            None => plan_err!(
                "a 'blackhole' table needs its columns: CREATE TABLE name (col TYPE, ...) WITH ('connector' = 'blackhole')"
            ),
        }
    }
}

#[async_trait]
impl TableProvider for BlackholeTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = project_schema(&self.schema, projection)?;
        Ok(Arc::new(EmptyExec::new(schema)))
    }

    /// Every insert mode discards alike: `INSERT OVERWRITE` into a blackhole
    /// is as good as `INSERT INTO`.
    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        _insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.schema
            .logically_equivalent_names_and_types(&input.schema())?;
        let sink = BlackholeSink {
            schema: Arc::clone(&self.schema),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// The sink under a blackhole table's INSERT: drains its input, counting rows.
#[derive(Debug)]
struct BlackholeSink {
    /// The table's columns.
    schema: SchemaRef,
}

impl DisplayAs for BlackholeSink {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => f.write_str("BlackholeSink"),
            DisplayFormatType::TreeRender => Ok(()),
        }
    }
}

#[async_trait]
impl DataSink for BlackholeSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let mut rows = 0u64;
        while let Some(batch) = data.next().await {
            rows += batch?.num_rows() as u64;
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::prelude::SessionContext;

    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Options {
        Options::try_new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid")
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]))
    }

    #[tokio::test]
    async fn inserts_are_counted_and_reads_are_empty() {
        let ctx = SessionContext::new();
        let table =
            BlackholeTable::try_new(Some(schema()), options(&[("connector", "blackhole")])).expect("table");
        ctx.register_table("sink", Arc::new(table)).expect("register");
        let source = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from_iter_values(0..1000))])
            .expect("batch");
        ctx.register_batch("source", source).expect("register");

        let inserted = ctx
            .sql("INSERT INTO sink SELECT n FROM source UNION ALL SELECT n FROM source")
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        assert_eq!(
            inserted[0]
                .column(0)
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .value(0),
            2000
        );

        let read = ctx
            .sql("SELECT count(*) FROM sink")
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        assert_eq!(read[0].column(0).as_primitive::<Int64Type>().value(0), 0);
    }

    #[test]
    fn needs_columns_and_takes_no_options() {
        let err =
            BlackholeTable::try_new(None, options(&[("connector", "blackhole")])).expect_err("no columns");
        assert!(err.to_string().contains("needs its columns"), "{err}");
        let err = BlackholeTable::try_new(
            Some(schema()),
            options(&[("connector", "blackhole"), ("path", "x")]),
        )
        .expect_err("unknown option");
        assert!(
            err.to_string()
                .contains("unknown option 'path' for connector 'blackhole'"),
            "{err}"
        );
    }
}

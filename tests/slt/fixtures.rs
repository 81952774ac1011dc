//! Tables and functions that DataFusion's sqllogictest runner registers in
//! Rust for a few of its files (`datafusion-sqllogictest` 55.2.0,
//! `src/test_context.rs`), rebuilt here through `Engine::context()`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, Float64Array, Int32Array, LargeBinaryArray, LargeStringArray, RecordBatch,
    StringArray, TimestampNanosecondArray, UnionArray,
};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, UnionFields};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::common::cast::as_float64_array;
use datafusion::common::{exec_err, internal_err};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::{CsvReadOptions, SessionContext};

/// Register what the upstream runner registers for `file_name`. `scratch` is
/// a directory that lives as long as the file runs.
pub async fn register_for(ctx: &SessionContext, file_name: &str, scratch: &Path) -> Result<()> {
    match file_name {
        "joins.slt" => {
            ctx.register_udf(create_udf(
                "example",
                vec![DataType::Float64, DataType::Float64],
                DataType::Float64,
                Volatility::Immutable,
                Arc::new(add_columns),
            ));
            register_partition_table(ctx, scratch).await?;
            register_table_with_many_types(ctx)
        }
        "aggregate.slt" => register_approx_distinct_union_table(ctx),
        "cte.slt" => register_strict_schema(ctx),
        _ => Ok(()),
    }
}

/// `example(a, b) = a + b` over two Float64 arrays.
fn add_columns(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let [ColumnarValue::Array(lhs), ColumnarValue::Array(rhs)] = args else {
        return exec_err!("example() takes two Float64 columns");
    };
    let sum: Float64Array = as_float64_array(lhs)?
        .iter()
        .zip(as_float64_array(rhs)?.iter())
        .map(|(l, r)| Some(l? + r?))
        .collect();
    Ok(ColumnarValue::Array(Arc::new(sum)))
}

/// `test_partition_table`: one CSV file of lines `0,i,i%2==0` for i in 0..=10,
/// read with the default options, so (as upstream) its first line is a header.
async fn register_partition_table(ctx: &SessionContext, dir: &Path) -> Result<()> {
    let schema = Schema::new(vec![
        Field::new("c1", DataType::UInt32, false),
        Field::new("c2", DataType::UInt64, false),
        Field::new("c3", DataType::Boolean, false),
    ]);
    let mut file = std::fs::File::create(dir.join("partition-0.csv"))?;
    for i in 0..=10 {
        writeln!(file, "0,{i},{}", i % 2 == 0)?;
    }
    let location = dir.to_string_lossy();
    ctx.register_csv(
        "test_partition_table",
        location.as_ref(),
        CsvReadOptions::new().schema(&schema),
    )
    .await
}

/// `my_catalog.my_schema.table_with_many_types`: one row of assorted types.
fn register_table_with_many_types(ctx: &SessionContext) -> Result<()> {
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema("my_schema", Arc::new(MemorySchemaProvider::new()))?;
    ctx.register_catalog("my_catalog", Arc::new(catalog));
    let schema = Arc::new(Schema::new(vec![
        Field::new("int32_col", DataType::Int32, false),
        Field::new("float64_col", DataType::Float64, true),
        Field::new("utf8_col", DataType::Utf8, true),
        Field::new("large_utf8_col", DataType::LargeUtf8, false),
        Field::new("binary_col", DataType::Binary, false),
        Field::new("large_binary_col", DataType::LargeBinary, false),
        Field::new(
            "timestamp_nanos",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vec![1])),
        Arc::new(Float64Array::from(vec![1.0])),
        Arc::new(StringArray::from(vec![Some("foo")])),
        Arc::new(LargeStringArray::from(vec![Some("bar")])),
        Arc::new(BinaryArray::from(vec![b"foo" as &[u8]])),
        Arc::new(LargeBinaryArray::from(vec![b"foo" as &[u8]])),
        Arc::new(TimestampNanosecondArray::from(vec![Some(123)])),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    let table = MemTable::try_new(schema, vec![vec![batch]])?;
    ctx.register_table("my_catalog.my_schema.table_with_many_types", Arc::new(table))?;
    Ok(())
}

/// `approx_distinct_union_test (g Int32, u Union(i Int32, s Utf8))`, 8 rows.
fn register_approx_distinct_union_table(ctx: &SessionContext) -> Result<()> {
    let fields = UnionFields::try_new(
        vec![0, 1],
        vec![
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ],
    )?;
    let children: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vec![Some(1), Some(1), None, None, Some(5)])),
        Arc::new(StringArray::from(vec![Some("x"), Some("y"), None])),
    ];
    let union = UnionArray::try_new(
        fields,
        ScalarBuffer::from(vec![0_i8, 0, 1, 1, 0, 0, 1, 0]),
        Some(ScalarBuffer::from(vec![0, 1, 0, 1, 2, 3, 2, 4])),
        children,
    )?;
    let schema = Schema::new(vec![
        Field::new("g", DataType::Int32, false),
        Field::new("u", union.data_type().clone(), false),
    ]);
    let g = Arc::new(Int32Array::from(vec![1, 1, 1, 2, 2, 3, 3, 4]));
    let batch = RecordBatch::try_new(Arc::new(schema), vec![g, Arc::new(union)])?;
    ctx.register_batch("approx_distinct_union_test", batch)?;
    Ok(())
}

/// `datafusion.strict_schema`, holding only `orders(order_id Int32 NOT NULL)`
/// with rows 1 and 2. Looking up any other name in it is an error: it shows
/// a CTE name wrongly resolved as a catalog table (upstream panics instead).
fn register_strict_schema(ctx: &SessionContext) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![Field::new("order_id", DataType::Int32, false)]));
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int32Array::from(vec![1, 2]))])?;
    let orders = Arc::new(MemTable::try_new(schema, vec![vec![batch]])?);
    let Some(catalog) = ctx.catalog("datafusion") else {
        return internal_err!("the default catalog 'datafusion' is missing");
    };
    catalog.register_schema("strict_schema", Arc::new(StrictOrdersSchema { orders }))?;
    Ok(())
}

#[derive(Debug)]
struct StrictOrdersSchema {
    orders: Arc<dyn TableProvider>,
}

#[async_trait::async_trait]
impl SchemaProvider for StrictOrdersSchema {
    fn table_names(&self) -> Vec<String> {
        vec!["orders".to_string()]
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match name {
            "orders" => Ok(Some(Arc::clone(&self.orders))),
            other => internal_err!(
                "unexpected table lookup: {other}; a CTE reference was probably treated as a catalog table"
            ),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        name == "orders"
    }
}

//! A JSON file table read once whose integer columns are read exactly.
//!
//! DataFusion's JSON reader is arrow-json's, which truncates a number with a
//! fraction read into an integer column (`5.7` becomes `5`). [`ExactJsonTable`]
//! wraps the table's listing table: scans read the files through a second
//! listing table that declares the integer columns `DECIMAL(38, 18)` (in
//! struct columns too), and a
//! projection checks and casts them back ([`restore_column`]), so a fraction
//! is an error naming the column (the batch executor then names its file and
//! line, see [`super::locate`]). Everything else (the schema, `INSERT`) is the
//! listing table's own.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Column, exec_err};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TableType, Volatility,
};
use datafusion::physical_plan::ExecutionPlan;

use super::json_integers::{holds_integers, restore_column};

/// A JSON listing table whose scans read integer columns exactly.
#[derive(Debug)]
pub struct ExactJsonTable {
    /// The table as declared: its schema, and what `INSERT` writes through.
    table: Arc<ListingTable>,
    /// The same files with the integer columns as decimals, for scans.
    decoded: Arc<dyn TableProvider>,
}

impl ExactJsonTable {
    /// Scans of `table` read through `decoded`, the same files with the
    /// integer columns declared as decimals.
    pub fn new(table: Arc<ListingTable>, decoded: Arc<dyn TableProvider>) -> Self {
        Self { table, decoded }
    }

    /// The listing table as declared (what `INSERT` writes to).
    pub fn listing_table(&self) -> &Arc<ListingTable> {
        &self.table
    }
}

#[async_trait]
impl TableProvider for ExactJsonTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
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
        // Filters are not pushed down (the default): they see the checked
        // columns, above this scan.
        const NAME: &str = "exact_json";
        let schema = self.table.schema();
        let fields: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..schema.fields().len()).collect(),
        };
        let columns = fields.iter().map(|&i| {
            let field = schema.field(i);
            let column = Expr::Column(Column::new(Some(NAME), field.name()));
            match holds_integers(field.data_type()) {
                true => ScalarUDF::from(ExactInteger::new(field.clone()))
                    .call(vec![column])
                    .alias(field.name()),
                false => column,
            }
        });
        let mut plan = LogicalPlanBuilder::scan(
            NAME,
            provider_as_source(Arc::clone(&self.decoded)),
            Some(fields.clone()),
        )?
        .project(columns)?;
        if let Some(limit) = limit {
            plan = plan.limit(0, Some(limit))?;
        }
        state.create_physical_plan(&plan.build()?).await
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.table.insert_into(state, input, insert_op).await
    }
}

/// `exact_integer(decoded)`: a column decoded as a decimal, checked and cast
/// to its declared integer type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExactInteger {
    signature: Signature,
    /// The declared column.
    field: Field,
}

impl ExactInteger {
    fn new(field: Field) -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
            field,
        }
    }
}

impl ScalarUDFImpl for ExactInteger {
    fn name(&self) -> &str {
        "sluice_exact_integer"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.field.data_type().clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [decoded] = args.args.as_slice() else {
            return exec_err!("sluice_exact_integer takes 1 argument, not {}", args.args.len());
        };
        let array = decoded.to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(restore_column(&array, &self.field)?))
    }
}

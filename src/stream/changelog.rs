//! The changelog form of an updating result: a change column (`+I`, `-U`,
//! `+U`, `-D`) before the rows' own columns.

use std::sync::Arc;

use arrow::array::RecordBatch;

/// The column a changelog's rows carry their change in (`+I`, `-U`, `+U`,
/// `-D`), first in `EMIT CHANGES` results.
pub const CHANGE_COLUMN: &str = "op";

/// `schema` with the change column first.
pub fn changelog_schema(schema: &arrow::datatypes::Schema) -> arrow::datatypes::Schema {
    let change = Arc::new(arrow::datatypes::Field::new(
        CHANGE_COLUMN,
        arrow::datatypes::DataType::Utf8,
        false,
    ));
    arrow::datatypes::Schema::new(
        std::iter::once(change)
            .chain(schema.fields().iter().cloned())
            .collect::<Vec<_>>(),
    )
}

/// `batch` with its rows' changes first; `None` marks every row an insert
/// (`+I`), as appended rows are.
pub fn with_changes(
    batch: &RecordBatch,
    changes: Option<arrow::array::ArrayRef>,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let change =
        changes.unwrap_or_else(|| Arc::new(arrow::array::StringArray::from(vec!["+I"; batch.num_rows()])));
    let columns = std::iter::once(change)
        .chain(batch.columns().iter().cloned())
        .collect();
    RecordBatch::try_new(Arc::new(changelog_schema(&batch.schema())), columns)
}

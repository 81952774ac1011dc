//! Query results rendered for comparison (batch against continuous): the
//! columns (name and type) and each row as text, cells joined by ` | `.

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// A rendered result.
#[derive(Debug, PartialEq)]
pub struct Rows {
    /// `name type` of each column.
    pub columns: Vec<String>,
    /// The rows, in the order given until [`Rows::sorted`].
    pub rows: Vec<String>,
}

impl Rows {
    /// The rows as a multiset (sorted), for results whose order is open.
    pub fn sorted(mut self) -> Self {
        self.rows.sort();
        self
    }
}

/// `batches` of `schema` as text, the `masked` columns' values replaced by a
/// placeholder (values a query leaves open).
pub fn render(schema: &Schema, batches: &[RecordBatch], masked: &[&str]) -> Rows {
    let options = FormatOptions::default().with_null("NULL");
    let columns = schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect();
    let masked: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| masked.contains(&f.name().as_str()))
        .collect();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formattable"))
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .zip(&masked)
                .map(|(f, &masked)| match masked {
                    true => "(masked)".to_string(),
                    false => f.value(row).to_string(),
                })
                .collect();
            rows.push(cells.join(" | "));
        }
    }
    Rows { columns, rows }
}

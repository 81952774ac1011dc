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

/// Whether `schema` is a changelog's (its first column is the change column the planner marked).
#[allow(dead_code)]
pub fn is_changelog(schema: &Schema) -> bool {
    sluice::stream::is_changelog(schema)
}

/// Apply a changelog (first column `op`), in the order it came, to a
/// multiset of rows: `+I`/`+U` add a row, `-U`/`-D` take back one equal to
/// it (`masked` columns compare as equal), and taking back a row that is not there is an error. The rows sorted.
#[allow(dead_code)]
pub fn apply_changelog(schema: &Schema, batches: &[RecordBatch], masked: &[&str]) -> Result<Rows, String> {
    let rendered = render(schema, batches, masked);
    let mut rows: Vec<String> = Vec::new();
    for line in &rendered.rows {
        let (op, row) = line.split_once(" | ").unwrap_or((line.as_str(), ""));
        match op {
            "+I" | "+U" => rows.push(row.to_string()),
            "-U" | "-D" => {
                let at = rows
                    .iter()
                    .position(|r| r == row)
                    .ok_or_else(|| format!("{op} of a row never inserted: {row}"))?;
                rows.swap_remove(at);
            }
            other => return Err(format!("unknown change '{other}'")),
        }
    }
    rows.sort();
    Ok(Rows {
        columns: rendered.columns.get(1..).unwrap_or_default().to_vec(),
        rows,
    })
}

//! Typed changes of an updating stream, and the changelog form its result
//! takes at the sink: a text change column (`+I`, `-U`, `+U`, `-D`) before the
//! rows' own columns.
//!
//! Between operators a change is a small integer per row ([`Changes`], an
//! Int8 column), never text: operators match on [`Change`], and only the sink
//! spells it out.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, Int8Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::Int8Type;
use datafusion::error::Result;

/// The column a changelog's rows carry their change in (`+I`, `-U`, `+U`,
/// `-D`), first in the results of an updating query.
pub const CHANGE_COLUMN: &str = "op";

/// What a row of an updating stream does to the result, as Flink names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum Change {
    /// `+I`: a new row.
    Insert = 0,
    /// `-U`: the old version of an updated row, taken back; the next row is
    /// its new version (`+U`).
    UpdateBefore = 1,
    /// `+U`: the new version of an updated row.
    UpdateAfter = 2,
    /// `-D`: a row taken back.
    Delete = 3,
}

impl Change {
    /// How the changelog spells it.
    pub fn text(self) -> &'static str {
        match self {
            Change::Insert => "+I",
            Change::UpdateBefore => "-U",
            Change::UpdateAfter => "+U",
            Change::Delete => "-D",
        }
    }

    /// The change spelled `text` (`+I`, `-U`, `+U`, `-D`).
    pub fn parse(text: &str) -> Option<Change> {
        match text {
            "+I" => Some(Change::Insert),
            "-U" => Some(Change::UpdateBefore),
            "+U" => Some(Change::UpdateAfter),
            "-D" => Some(Change::Delete),
            _ => None,
        }
    }

    /// Whether the row is added to the result (`+I`, `+U`), not taken back.
    pub fn is_addition(self) -> bool {
        matches!(self, Change::Insert | Change::UpdateAfter)
    }

    fn from_code(code: i8) -> Change {
        // Only `Changes` builds the column, from `Change` values.
        match code {
            0 => Change::Insert,
            1 => Change::UpdateBefore,
            2 => Change::UpdateAfter,
            _ => Change::Delete,
        }
    }
}

/// Each row's change, as a column of [`Change`] codes.
#[derive(Debug, Clone)]
pub struct Changes(Arc<Int8Array>);

impl Changes {
    /// A column of `changes`.
    pub fn from_changes(changes: impl IntoIterator<Item = Change>) -> Self {
        Changes(Arc::new(changes.into_iter().map(|c| c as i8).collect()))
    }

    /// A column of change codes from a source (see
    /// [`crate::connectors::debezium`]: the codes are [`Change`]'s numbers);
    /// any other code is an internal error.
    pub fn from_codes(codes: &arrow::array::ArrayRef) -> Result<Self> {
        let Some(codes) = codes.as_primitive_opt::<Int8Type>() else {
            return datafusion::common::internal_err!(
                "a source's changes are {}, not Int8",
                codes.data_type()
            );
        };
        if codes.null_count() > 0 || codes.values().iter().any(|&c| !(0..=3).contains(&c)) {
            return datafusion::common::internal_err!("a source sent a change code other than 0 to 3");
        }
        Ok(Changes(Arc::new(codes.clone())))
    }

    /// `rows` rows, each `change`.
    pub fn repeat(change: Change, rows: usize) -> Self {
        Changes(Arc::new(Int8Array::from_value(change as i8, rows)))
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Row `i`'s change.
    pub fn get(&self, i: usize) -> Change {
        Change::from_code(self.0.value(i))
    }

    /// Every row's change, in order.
    pub fn iter(&self) -> impl Iterator<Item = Change> + '_ {
        self.0.values().iter().map(|&c| Change::from_code(c))
    }

    /// Whether every row is an insert (an append-only stretch).
    pub fn all_inserts(&self) -> bool {
        self.0.values().iter().all(|&c| c == Change::Insert as i8)
    }

    /// The rows `mask` keeps.
    pub fn filter(&self, mask: &BooleanArray) -> Result<Self> {
        let kept = arrow::compute::filter(self.0.as_ref(), mask)?;
        Ok(Changes(Arc::new(kept.as_primitive::<Int8Type>().clone())))
    }

    /// Rows `indices`, in that order.
    pub fn take(&self, indices: &UInt32Array) -> Result<Self> {
        let taken = arrow::compute::take(self.0.as_ref(), indices, None)?;
        Ok(Changes(Arc::new(taken.as_primitive::<Int8Type>().clone())))
    }

    /// Rows `offset..offset + len`.
    pub fn slice(&self, offset: usize, len: usize) -> Self {
        Changes(Arc::new(self.0.slice(offset, len)))
    }

    /// Consecutive parts as one column.
    pub fn concat(parts: &[&Changes]) -> Result<Self> {
        let arrays: Vec<&dyn Array> = parts.iter().map(|c| c.0.as_ref() as &dyn Array).collect();
        let joined = arrow::compute::concat(&arrays)?;
        Ok(Changes(Arc::new(joined.as_primitive::<Int8Type>().clone())))
    }

    /// The changes as the changelog spells them.
    fn text(&self) -> StringArray {
        self.iter().map(|c| Some(c.text())).collect()
    }
}

/// The field metadata key that marks a result's change column, so that
/// consumers (the CLI's output, the sinks) know a changelog by what the
/// planner decided, not by a column's name: a query may have its own `op`.
const CHANGE_MARK: &str = "sluice.change";

/// `schema` with the change column first, marked as the change column (see
/// [`is_changelog`]).
pub fn changelog_schema(schema: &arrow::datatypes::Schema) -> arrow::datatypes::Schema {
    let change = Arc::new(
        arrow::datatypes::Field::new(CHANGE_COLUMN, arrow::datatypes::DataType::Utf8, false)
            .with_metadata([(CHANGE_MARK.to_string(), "true".to_string())].into()),
    );
    arrow::datatypes::Schema::new(
        std::iter::once(change)
            .chain(schema.fields().iter().cloned())
            .collect::<Vec<_>>(),
    )
}

/// Whether rows of `schema` are a changelog: their first column is the
/// change column that [`changelog_schema`] put there (a column of the query's
/// own named `op` is not).
pub fn is_changelog(schema: &arrow::datatypes::Schema) -> bool {
    schema
        .fields()
        .first()
        .is_some_and(|f| f.metadata().get(CHANGE_MARK).is_some_and(|v| v == "true"))
}

/// `schema` without the change column's mark: what a file sink writes (a
/// Parquet or Arrow file keeps field metadata, and a query reading it back
/// is not a changelog of its own).
pub fn unmarked_schema(schema: &arrow::datatypes::Schema) -> arrow::datatypes::Schema {
    let fields: Vec<arrow::datatypes::FieldRef> = schema
        .fields()
        .iter()
        .map(|f| match f.metadata().contains_key(CHANGE_MARK) {
            true => {
                let mut metadata = f.metadata().clone();
                metadata.remove(CHANGE_MARK);
                Arc::new(f.as_ref().clone().with_metadata(metadata))
            }
            false => Arc::clone(f),
        })
        .collect();
    arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// `batch` with its rows' changes first, spelled out; `None` marks every row
/// an insert (`+I`), as appended rows are.
pub fn with_changes(
    batch: &RecordBatch,
    changes: Option<&Changes>,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let change: arrow::array::ArrayRef = match changes {
        Some(c) => Arc::new(c.text()),
        None => Arc::new(StringArray::from(vec![Change::Insert.text(); batch.num_rows()])),
    };
    let columns = std::iter::once(change)
        .chain(batch.columns().iter().cloned())
        .collect();
    RecordBatch::try_new(Arc::new(changelog_schema(&batch.schema())), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_keep_their_kind_through_filter_take_and_text() {
        let changes = Changes::from_changes([
            Change::Insert,
            Change::UpdateBefore,
            Change::UpdateAfter,
            Change::Delete,
        ]);
        let kept = changes
            .filter(&BooleanArray::from(vec![false, true, true, false]))
            .expect("filters");
        assert_eq!(
            kept.iter().collect::<Vec<_>>(),
            [Change::UpdateBefore, Change::UpdateAfter]
        );
        let taken = changes.take(&UInt32Array::from(vec![3, 0])).expect("takes");
        assert_eq!(taken.iter().collect::<Vec<_>>(), [Change::Delete, Change::Insert]);
        let texts: Vec<_> = changes
            .text()
            .iter()
            .map(|t| t.unwrap_or_default().to_string())
            .collect();
        assert_eq!(texts, ["+I", "-U", "+U", "-D"]);
        assert!(
            texts
                .iter()
                .all(|t| Change::parse(t).is_some_and(|c| c.text() == t))
        );
        assert!(!changes.all_inserts());
        assert!(Changes::repeat(Change::Insert, 3).all_inserts());
    }

    #[test]
    fn a_changelog_is_known_by_its_marked_column_not_by_a_column_named_op() {
        use arrow::datatypes::{DataType, Field, Schema};
        let own_op = Schema::new(vec![
            Field::new(CHANGE_COLUMN, DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]);
        assert!(!is_changelog(&own_op));
        let changelog = changelog_schema(&own_op);
        assert!(is_changelog(&changelog));
        assert_eq!(changelog.fields().len(), 3);
        assert!(!is_changelog(&unmarked_schema(&changelog)));
        assert_eq!(unmarked_schema(&changelog).fields().len(), 3);
    }
}

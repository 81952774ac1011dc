//! Sources and sinks. Connectors know Arrow and DataFusion, nothing of SQL
//! text or of the CLI: the planner hands them a schema and the `WITH` options.

pub mod blackhole;
pub mod changelog;
pub mod exact_json;
pub mod file;
pub mod file_sink;
pub mod follow;
pub mod generator;
pub mod json_integers;
pub mod line_decoder;
pub mod locate;
pub mod object_stores;
pub mod options;
pub mod stdin;
pub mod write_errors;

pub use options::Options;

/// Whether a source ends. Decides the executor: a query whose sources are all
/// bounded runs in batch on DataFusion; any unbounded source makes it continuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundedness {
    /// The source has an end (a file, a generator with an event count).
    Bounded,
    /// The source may go on forever (stdin, a followed file, Kafka).
    Unbounded,
}

impl std::fmt::Display for Boundedness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Boundedness::Bounded => "bounded",
            Boundedness::Unbounded => "unbounded",
        })
    }
}

/// The bad lines the latest scan of `provider` skipped, if it is a table that
/// skips them (stdin or a followed file with `'*.ignore-parse-errors'`).
pub fn bad_rows_of(
    provider: &dyn datafusion::catalog::TableProvider,
) -> Option<std::sync::Arc<line_decoder::BadRowStats>> {
    if let Some(table) = provider.downcast_ref::<stdin::StdinTable>() {
        return table.bad_rows();
    }
    provider.downcast_ref::<follow::FollowTable>()?.bad_rows()
}

/// The bytes the latest scan of `provider` has not read yet, if it is a
/// followed file (see [`follow::FollowTable::unread_bytes`]).
pub fn unread_bytes_of(
    provider: &dyn datafusion::catalog::TableProvider,
) -> Option<std::sync::Arc<std::sync::atomic::AtomicU64>> {
    Some(provider.downcast_ref::<follow::FollowTable>()?.unread_bytes())
}

/// A schema's column names, comma-separated, for errors that list them.
pub fn column_names(schema: &arrow::datatypes::Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

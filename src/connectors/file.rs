//! The `file` connector: CSV, NDJSON, Parquet and Arrow files, directories and
//! globs, local or remote through object_store.
//!
//! The reading itself is DataFusion's `ListingTable`, built by DataFusion's own
//! `ListingTableFactory` from a `CreateExternalTable` command, so a connector
//! table reads exactly as `CREATE EXTERNAL TABLE` would. What this module adds
//! is Flink's option names, clear errors for missing files and bad options, and
//! a check of the declared columns against the file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::{Column, DFSchema, TableReference, not_impl_err, plan_err};
use datafusion::datasource::listing::{ListingTable, ListingTableUrl};
use datafusion::datasource::listing_table_factory::ListingTableFactory;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::{CreateExternalTable, LogicalPlanBuilder, cast, col, lit};

use object_store::ObjectStoreExt;

use super::exact_json::ExactJsonTable;
use super::json_integers::IntegerColumns;
use super::locate::BadRowLocator;
use super::{Options, column_names, object_stores};
use crate::stream::changelog::CHANGE_COLUMN;

/// The file formats the connector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma (or other) separated values, with a header line by default.
    Csv,
    /// Newline-delimited JSON, one object per line.
    Json,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC files.
    Arrow,
}

impl FileFormat {
    /// The format called `name` (`'format'` = ...).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "json" | "ndjson" => Ok(Self::Json),
            "parquet" => Ok(Self::Parquet),
            "arrow" | "ipc" => Ok(Self::Arrow),
            changelog @ ("debezium-json" | "debezium_json" | "changelog-json" | "changelog_json"
            | "changelog-csv" | "changelog_csv") => {
                plan_err!(
                    "'{changelog}' (a changelog) is read from stdin ('connector' = 'stdin') or a followed file ('follow' = 'true'); a file read once takes 'csv', 'json', 'parquet' or 'arrow'"
                )
            }
            other => plan_err!("unknown format '{other}'; use 'csv', 'json', 'parquet' or 'arrow'"),
        }
    }

    /// The format a path's extension suggests (`x.csv.gz` is not guessed).
    pub(super) fn from_extension(path: &str) -> Option<Self> {
        let ext = Path::new(path).extension()?.to_str()?;
        Self::parse(ext).ok()
    }

    /// The format named by option `'format'`, or else the one `path`'s
    /// extension suggests.
    pub fn take(options: &mut Options, path: &str) -> Result<Self> {
        match options.take("format") {
            Some(f) => Self::parse(&f),
            None => match Self::from_extension(path) {
                Some(f) => Ok(f),
                None => plan_err!(
                    "cannot tell the format of '{path}' from its name: add 'format' = 'csv', 'json', 'parquet' or 'arrow'"
                ),
            },
        }
    }

    /// DataFusion's name for the format (`STORED AS ...`).
    fn datafusion_name(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Json => "JSON",
            Self::Parquet => "PARQUET",
            Self::Arrow => "ARROW",
        }
    }

    /// Whether values are text that the reader parses into the declared types
    /// (so a declared type is a parsing instruction, not a claim about the file).
    pub fn is_text(self) -> bool {
        matches!(self, Self::Csv | Self::Json)
    }
}

impl std::fmt::Display for FileFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.datafusion_name().to_lowercase())
    }
}

/// The options the file connector accepts, for error messages.
pub const ACCEPTED_OPTIONS: &[&str] = &[
    "connector",
    "path",
    "format",
    "csv.header",
    "csv.field-delimiter",
    "csv.quote-character",
    "csv.null-literal",
    "s3.<key> (region, endpoint, access_key_id, secret_access_key, session_token, allow_http, ...)",
    "follow ('true' for json and csv: read to the end, then follow appended lines and new files)",
    "csv.ignore-parse-errors / json.ignore-parse-errors (with 'follow': skip and count bad rows)",
    "format.bad-rows.path (with 'follow': a file skipped rows are appended to)",
    "line.max-bytes (with 'follow': the longest line; 8 MiB)",
    "sink.rolling-policy.rollover-interval (how often a continuous INSERT commits a part file; '10 s')",
];

/// How often a continuous `INSERT` into a file table commits a part file
/// when the table does not say (`'sink.rolling-policy.rollover-interval'`).
pub const DEFAULT_ROLLOVER: std::time::Duration = std::time::Duration::from_secs(10);

/// Flink's `csv.*` options, as the file and stdin connectors take them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// `'csv.header'`: whether the first line names the columns (by default it does).
    pub header: Option<bool>,
    /// `'csv.field-delimiter'` (`,` by default).
    pub delimiter: Option<char>,
    /// `'csv.quote-character'` (`"` by default).
    pub quote: Option<char>,
    /// `'csv.null-literal'`: the text that reads as NULL.
    pub null_literal: Option<String>,
}

impl CsvOptions {
    /// Take the `csv.*` options, which only a `csv` format accepts.
    pub fn take(options: &mut Options, format: FileFormat) -> Result<Self> {
        let csv = Self {
            header: options.take_bool("csv.header")?,
            delimiter: options.take_char("csv.field-delimiter")?,
            quote: options.take_char("csv.quote-character")?,
            null_literal: options.take("csv.null-literal"),
        };
        if csv != Self::default() && format != FileFormat::Csv {
            return plan_err!("'csv.*' options apply to 'format' = 'csv', not '{format}'");
        }
        Ok(csv)
    }

    /// Whether the first line of a file is a header (`'csv.header'`, true by default).
    pub fn has_header(&self) -> bool {
        self.header.unwrap_or(true)
    }
}

/// A file table ready to register.
#[derive(Debug)]
pub struct FileTable {
    /// What to register: DataFusion's listing table over the files, or a
    /// view over it that turns the null literal into NULL.
    pub provider: Arc<dyn TableProvider>,
    /// The listing table that plans scan (the provider itself, or the one
    /// under the view).
    pub scanned: Arc<dyn TableProvider>,
    /// Where the data is.
    pub path: String,
    /// How it is encoded.
    pub format: FileFormat,
    /// How often a continuous `INSERT` into it commits a part file.
    pub rollover: std::time::Duration,
    /// How to name the bad row when a scan fails on one (local CSV and JSON).
    pub locator: Option<Arc<BadRowLocator>>,
}

/// Build a file table from its options. `declared` is the schema written in
/// `CREATE TABLE`, or `None` to take it from the files.
pub async fn create_table(
    state: &dyn Session,
    name: &TableReference,
    declared: Option<SchemaRef>,
    mut options: Options,
) -> Result<FileTable> {
    let path = options.take_required("path", "the file, directory or glob to read")?;
    let format = FileFormat::take(&mut options, &path)?;
    let csv = CsvOptions::take(&mut options, format)?;
    let mut format_options = HashMap::new();
    if format == FileFormat::Csv {
        format_options.insert("format.has_header".into(), csv.has_header().to_string());
        if let Some(d) = csv.delimiter {
            format_options.insert("format.delimiter".into(), d.to_string());
        }
        if let Some(q) = csv.quote {
            format_options.insert("format.quote".into(), q.to_string());
        }
        if let Some(null) = &csv.null_literal {
            format_options.insert("format.null_regex".into(), format!("^{}$", escape_regex(null)));
        }
    }
    let null_literal = csv.null_literal.clone();
    let rollover = match options.take("sink.rolling-policy.rollover-interval") {
        None => DEFAULT_ROLLOVER,
        Some(text) => match super::options::parse_duration_ms(&text) {
            Some(ms) if ms > 0 => std::time::Duration::from_millis(ms),
            _ => {
                return plan_err!(
                    "option 'sink.rolling-policy.rollover-interval' is a duration such as '10 s' or '500 ms', not '{text}'"
                );
            }
        },
    };
    let skips = [
        "csv.ignore-parse-errors",
        "json.ignore-parse-errors",
        "format.bad-rows.path",
    ];
    if let Some(key) = skips.into_iter().find(|k| options.take(k).is_some()) {
        return not_impl_err!(
            "option '{key}' works on stdin and followed files ('follow' = 'true') so far; a file read once stops at its first bad row, naming it"
        );
    }
    let s3_options = options.take_prefixed("s3.");
    options.take("connector");
    options.finish("file", ACCEPTED_OPTIONS)?;

    object_stores::register_for_location(state.runtime_env(), &path, &s3_options)?;
    // A table of declared columns may be created where nothing is yet: it is
    // written to before it is read (INSERT INTO makes its files).
    let empty = declared.is_some() && is_new_or_empty_local(&path);
    let path = if empty && !path.ends_with('/') && FileFormat::from_extension(&path).is_none() {
        // A new path with no extension is a directory of files to come.
        format!("{path}/")
    } else {
        path
    };
    if !empty {
        check_local_path_exists(&path)?;
        check_http_file_exists(state, &path).await?;
    }

    let command = |schema: Arc<DFSchema>| {
        CreateExternalTable::builder(name.clone(), path.clone(), format.datafusion_name(), schema)
            .with_options(format_options.clone())
            .build()
    };
    let factory = ListingTableFactory::new();
    let provider = match declared {
        None => factory
            .create(state, &command(Arc::new(DFSchema::empty())))
            .await
            .map_err(|e| object_stores::explain_error(&path, e))?,
        Some(declared) => {
            if !empty {
                let from_files = match factory.create(state, &command(Arc::new(DFSchema::empty()))).await {
                    Ok(from_files) => from_files,
                    Err(e) => {
                        // Reading the files for their columns met a bad row: name its file and line.
                        let e = object_stores::explain_error(&path, e);
                        let locator = BadRowLocator::new(
                            &path,
                            format,
                            csv.clone(),
                            Arc::clone(&declared),
                            state.runtime_env(),
                        );
                        return match locator {
                            Some(locator) => match locator.locate().await {
                                Some(place) => plan_err!("reading the files of table '{name}': {place}"),
                                None => Err(e),
                            },
                            None => Err(e),
                        };
                    }
                };
                check_declared_schema(&declared, &from_files.schema(), &path, format)?;
            }
            let schema = DFSchema::try_from(declared.as_ref().clone())?;
            factory.create(state, &command(Arc::new(schema))).await?
        }
    };
    let locator =
        BadRowLocator::new(&path, format, csv, provider.schema(), state.runtime_env()).map(Arc::new);
    if format == FileFormat::Json
        && let Some(integers) = IntegerColumns::new(&provider.schema())
        && let Some(table) = provider.downcast_ref::<ListingTable>()
    {
        // arrow-json would truncate a fraction read into an integer column.
        let decoded = factory
            .create(
                state,
                &command(Arc::new(DFSchema::try_from(
                    integers.decode_schema().as_ref().clone(),
                )?)),
            )
            .await?;
        let exact: Arc<dyn TableProvider> = Arc::new(ExactJsonTable::new(Arc::new(table.clone()), decoded));
        return Ok(FileTable {
            scanned: Arc::clone(&exact),
            provider: exact,
            path,
            format,
            rollover,
            locator,
        });
    }
    let Some(null) = null_literal else {
        return Ok(FileTable {
            scanned: Arc::clone(&provider),
            provider,
            path,
            format,
            rollover,
            locator,
        });
    };
    // DataFusion's CSV reader uses the null pattern only to infer types, not
    // when reading: read every column as text and turn the literal into NULL
    // before casting to the table's types.
    let schema = provider.schema();
    let text_schema = Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    let text = factory
        .create(state, &command(Arc::new(DFSchema::try_from(text_schema)?)))
        .await?;
    let columns = schema.fields().iter().map(|f| {
        let field = col(Column::new(Some(name.clone()), f.name()));
        let value = datafusion::functions::core::nullif().call(vec![field, lit(null.clone())]);
        cast(value, f.data_type().clone()).alias(f.name())
    });
    let plan = LogicalPlanBuilder::scan(name.clone(), provider_as_source(Arc::clone(&text)), None)?
        .project(columns)?
        .build()?;
    Ok(FileTable {
        provider: Arc::new(ViewTable::new(plan, None)),
        scanned: text,
        path,
        format,
        rollover,
        locator,
    })
}

/// A missing local file is the most common mistake: say so plainly, with the
/// directory the path is relative to.
pub(super) fn check_local_path_exists(path: &str) -> Result<()> {
    let is_url = url::Url::parse(path).is_ok_and(|u| u.scheme().len() > 1);
    let is_glob = path.contains(['*', '?', '[']);
    if is_url || is_glob || Path::new(path).exists() {
        return Ok(());
    }
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    plan_err!("file not found: '{path}' (relative paths start at {cwd})")
}

/// Whether `path` is local and either an empty directory or new: it does not
/// exist but its parent directory does (a missing parent is more likely a
/// mistyped path, which stays an error).
fn is_new_or_empty_local(path: &str) -> bool {
    let is_url = url::Url::parse(path).is_ok_and(|u| u.scheme().len() > 1);
    if is_url || path.contains(['*', '?', '[']) {
        return false;
    }
    let local = Path::new(path);
    match std::fs::read_dir(local) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => {
            let trimmed = Path::new(path.trim_end_matches('/'));
            let parent = match trimmed.parent() {
                Some(p) if p.as_os_str().is_empty() => Path::new("."),
                Some(p) => p,
                None => return false,
            };
            !local.exists() && parent.is_dir()
        }
    }
}

/// Over HTTP a missing file would otherwise be retried as a WebDAV directory
/// listing, which plain web servers refuse after many retries: ask first.
async fn check_http_file_exists(state: &dyn Session, path: &str) -> Result<()> {
    let is_http = path.starts_with("http://") || path.starts_with("https://");
    if !is_http || path.ends_with('/') || path.contains(['*', '?', '[']) {
        return Ok(());
    }
    let url = ListingTableUrl::parse(path)?;
    let store = state.runtime_env().object_store(url.object_store())?;
    match store.head(url.prefix()).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::NotFound { .. }) => {
            plan_err!("file not found: '{path}' (the server answered 404)")
        }
        Err(e) => Err(object_stores::explain_error(path, e.into())),
    }
}

/// Compare the declared columns with what the files hold.
///
/// CSV columns are matched by position (the reader ignores header names), so
/// a header naming other columns, or another column count, means the
/// declaration does not describe the file. JSON is matched by name. Parquet
/// and Arrow carry types, which must agree with the declaration up to width
/// (Int32 read as Int64 is fine, Utf8 as Int64 is not).
fn check_declared_schema(declared: &Schema, file: &Schema, path: &str, format: FileFormat) -> Result<()> {
    if format == FileFormat::Csv {
        // Files an updating `INSERT INTO` the table wrote hold its changelog:
        // `op` first, then the declared columns. The query's restart (after a
        // crash, from its checkpoint) creates the table again over them.
        let changelog = file.fields().len() == declared.fields().len() + 1
            && file.fields().first().is_some_and(|f| f.name() == CHANGE_COLUMN)
            && declared
                .fields()
                .first()
                .is_none_or(|d| !d.name().eq_ignore_ascii_case(CHANGE_COLUMN));
        let columns = &file.fields()[usize::from(changelog)..];
        if declared.fields().len() != columns.len() {
            return plan_err!(
                "file '{path}' has {} columns ({}) but the table declares {}: declare every column, in file order",
                file.fields().len(),
                column_names(file),
                declared.fields().len()
            );
        }
        for (i, (d, f)) in declared.fields().iter().zip(columns).enumerate() {
            let number = i + 1 + usize::from(changelog);
            // Without a header DataFusion names columns column_1, column_2, ...
            let generated = f.name() == &format!("column_{number}");
            if !generated && !d.name().eq_ignore_ascii_case(f.name()) {
                return plan_err!(
                    "column {number} of file '{path}' is '{}' in its header but the table declares '{}' there: declare columns in file order, or set 'csv.header' = 'false'",
                    f.name(),
                    d.name()
                );
            }
        }
        return Ok(());
    }
    for d in declared.fields() {
        let Some(f) = file
            .fields()
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(d.name()))
        else {
            return plan_err!(
                "column '{}' is declared but file '{path}' has no such column; it has: {}",
                d.name(),
                column_names(file)
            );
        };
        if !format.is_text() && !same_family(d.data_type(), f.data_type()) {
            return plan_err!(
                "column '{}' is declared {} but file '{path}' stores {}: declare it as the file stores it, or CAST in the query",
                d.name(),
                d.data_type(),
                f.data_type()
            );
        }
    }
    Ok(())
}

/// Types that DataFusion's schema adapter converts between without loss of
/// meaning: integers of any width, floats, strings, timestamps of any unit.
fn same_family(a: &DataType, b: &DataType) -> bool {
    use DataType::*;
    let family = |t: &DataType| match t {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => 1,
        Float16 | Float32 | Float64 => 2,
        Utf8 | LargeUtf8 | Utf8View => 3,
        Timestamp(_, _) => 4,
        Binary | LargeBinary | BinaryView => 5,
        Dictionary(_, v) => match v.as_ref() {
            Utf8 | LargeUtf8 | Utf8View => 3,
            _ => 0,
        },
        _ => 0,
    };
    a == b || (family(a) != 0 && family(a) == family(b))
}

fn escape_regex(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, TimeUnit};

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn a_csv_changelog_an_updating_insert_wrote_matches_its_columns_after_op() {
        // The files of `INSERT INTO t SELECT k, count(*) AS n ... GROUP BY k`.
        let file = schema(&[
            ("op", DataType::Utf8),
            ("k", DataType::Int64),
            ("n", DataType::Int64),
        ]);
        let declared = schema(&[("k", DataType::Int64), ("n", DataType::Int64)]);
        check_declared_schema(&declared, &file, "t/", FileFormat::Csv).expect("the restarted query's table");
        let other = schema(&[("k", DataType::Int64), ("total", DataType::Int64)]);
        let err = check_declared_schema(&other, &file, "t/", FileFormat::Csv).expect_err("another column");
        assert!(err.to_string().contains("column 3 of file 't/' is 'n'"), "{err}");
        let short = schema(&[("k", DataType::Int64)]);
        let err = check_declared_schema(&short, &file, "t/", FileFormat::Csv).expect_err("count");
        assert!(
            err.to_string()
                .contains("has 3 columns (op, k, n) but the table declares 1"),
            "{err}"
        );
    }

    #[test]
    fn csv_columns_match_by_position() {
        let file = schema(&[("id", DataType::Int64), ("name", DataType::Utf8)]);
        let ok = schema(&[("ID", DataType::Int32), ("name", DataType::Utf8)]);
        check_declared_schema(&ok, &file, "a.csv", FileFormat::Csv).expect("same names");
        let swapped = schema(&[("name", DataType::Utf8), ("id", DataType::Int64)]);
        let err = check_declared_schema(&swapped, &file, "a.csv", FileFormat::Csv).expect_err("order");
        assert!(
            err.to_string().contains("column 1 of file 'a.csv' is 'id'"),
            "{err}"
        );
        let short = schema(&[("id", DataType::Int64)]);
        let err = check_declared_schema(&short, &file, "a.csv", FileFormat::Csv).expect_err("count");
        assert!(
            err.to_string()
                .contains("has 2 columns (id, name) but the table declares 1"),
            "{err}"
        );
    }

    #[test]
    fn parquet_types_must_agree_up_to_width() {
        let file = schema(&[
            ("n", DataType::Int32),
            ("ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
            ("s", DataType::Utf8View),
        ]);
        let ok = schema(&[
            ("n", DataType::Int64),
            ("ts", DataType::Timestamp(TimeUnit::Millisecond, None)),
        ]);
        check_declared_schema(&ok, &file, "a.parquet", FileFormat::Parquet).expect("compatible");
        let bad = schema(&[("s", DataType::Int64)]);
        let err = check_declared_schema(&bad, &file, "a.parquet", FileFormat::Parquet).expect_err("type");
        assert!(
            err.to_string()
                .contains("column 's' is declared Int64 but file 'a.parquet' stores Utf8View"),
            "{err}"
        );
        let missing = schema(&[("x", DataType::Int64)]);
        let err =
            check_declared_schema(&missing, &file, "a.parquet", FileFormat::Parquet).expect_err("missing");
        assert!(
            err.to_string().contains("has no such column; it has: n, ts, s"),
            "{err}"
        );
    }

    #[test]
    fn formats_from_names_and_extensions() {
        assert_eq!(FileFormat::from_extension("x/y.ndjson"), Some(FileFormat::Json));
        assert_eq!(FileFormat::from_extension("x/y.txt"), None);
        assert!(FileFormat::parse("xml").is_err());
        assert_eq!(escape_regex("N/A."), "N/A\\.");
    }
}

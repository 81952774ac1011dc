//! The place of a bad row in a CSV or JSON file table read in batch.
//!
//! DataFusion's readers name no file, and arrow's line numbers count from 0
//! and from where its decoder started (a byte range, when a large file is
//! split across cores), or are missing (JSON). So when a batch scan of a
//! local text table fails on its data, [`BadRowLocator::locate`] reads the
//! table's files again, in order, with a [`LineDecoder`] (arrow's decoders
//! too, but counting lines from 1, the header being line 1), and its message
//! names the file, the line and the column. Only on that error path: a scan
//! that succeeds never pays for it.

use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;

use super::file::{CsvOptions, FileFormat};
use super::line_decoder::{DecoderConfig, LineDecoder, TextFormat};

/// Rows decoded per batch while searching.
const BATCH_ROWS: usize = 8192;

/// How to find the bad row of a local CSV or JSON table.
#[derive(Debug)]
pub struct BadRowLocator {
    /// The table's path as given: a file or a directory.
    path: PathBuf,
    /// The files' format.
    format: FileFormat,
    /// How to decode them: the table's format and columns.
    config: DecoderConfig,
}

impl BadRowLocator {
    /// A locator for the table at `path` with columns `schema`, or `None`
    /// when its files cannot be read again here (a remote store, a glob, a
    /// binary format).
    pub fn new(path: &str, format: FileFormat, csv: CsvOptions, schema: SchemaRef) -> Option<Self> {
        let text = TextFormat::new(format, csv)?;
        let local = path.strip_prefix("file://").unwrap_or(path);
        if local.contains("://") || local.contains(['*', '?', '[']) {
            return None;
        }
        let config = DecoderConfig::try_new(text, schema, None).ok()?;
        Some(Self {
            path: PathBuf::from(local),
            format,
            config,
        })
    }

    /// The first bad row of the table's files, as `file PATH line N: what`,
    /// or `None` if every row decodes (the error was not about one).
    pub fn locate(&self) -> Option<String> {
        self.files().iter().find_map(|file| self.locate_in(file))
    }

    /// The table's files in the order DataFusion lists them (by path).
    fn files(&self) -> Vec<PathBuf> {
        if self.path.is_file() {
            return vec![self.path.clone()];
        }
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return vec![];
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && !is_hidden(p))
            .collect();
        // The files of the table's format, if its extension says so.
        let of_format = |p: &PathBuf| {
            p.to_str()
                .and_then(FileFormat::from_extension)
                .is_some_and(|f| f == self.format)
        };
        if files.iter().any(of_format) {
            files.retain(of_format);
        }
        files.sort();
        files
    }

    /// The first bad row of `file`, if it has one.
    fn locate_in(&self, file: &Path) -> Option<String> {
        let mut reader = std::fs::File::open(file).ok()?;
        let source = format!("file {}", file.display());
        let mut decoder = LineDecoder::new(source, self.config.clone(), BATCH_ROWS).ok()?;
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        loop {
            let read = decoder.read_from(&mut reader, &mut buf, &mut out);
            out.clear();
            match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Some(message(e)),
            }
        }
        decoder.finish(&mut out).err().map(message)
    }
}

/// A hidden file (`.name`, `_name`), which a listing skips.
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

/// The text of an error, without its kind.
fn message(e: DataFusionError) -> String {
    match e {
        DataFusionError::Execution(text) | DataFusionError::Plan(text) => text,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn the_bad_row_is_named_by_file_line_and_column() {
        let dir = tempfile::tempdir().expect("temp dir");
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        std::fs::write(dir.path().join("1.csv"), "a,b\n1,2\n").expect("write");
        std::fs::write(dir.path().join("2.csv"), "a,b\n3,4\n5,x\n").expect("write");
        std::fs::write(dir.path().join(".hidden.csv"), "junk\n").expect("write");
        let path = dir.path().to_str().expect("utf-8");
        let csv = BadRowLocator::new(path, FileFormat::Csv, CsvOptions::default(), Arc::clone(&schema))
            .expect("local");
        let place = csv.locate().expect("a bad row");
        let second = dir.path().join("2.csv");
        assert!(
            place.starts_with(&format!("file {} line 3: ", second.display())),
            "{place}"
        );
        assert!(place.contains("in column 2 ('b')"), "{place}");

        let json = dir.path().join("t.ndjson");
        std::fs::write(&json, "{\"a\": 1}\n{\"a\": 2, \"b\n").expect("write");
        let json = json.to_str().expect("utf-8");
        let locator = BadRowLocator::new(json, FileFormat::Json, CsvOptions::default(), Arc::clone(&schema))
            .expect("local");
        assert!(
            locator
                .locate()
                .expect("bad")
                .starts_with(&format!("file {json} line 2: ")),
            "the truncated last line"
        );
        std::fs::write(dir.path().join("t.ndjson"), "{\"a\": 1}\n").expect("write");
        assert_eq!(locator.locate(), None, "nothing wrong");
        assert!(BadRowLocator::new("s3://b/k.csv", FileFormat::Csv, CsvOptions::default(), schema).is_none());
    }
}

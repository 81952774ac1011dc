//! The place of a bad row in a CSV or JSON file table read in batch.
//!
//! DataFusion's readers name no file, and arrow's line numbers count from 0
//! and from where its decoder started (a byte range, when a large file is
//! split across cores), or are missing (JSON). So when a batch scan of a
//! text table fails on its data, [`BadRowLocator::locate`] reads the table's
//! files again, in order, with a [`LineDecoder`] (arrow's decoders too, but
//! counting lines from 1, the header being line 1), and its message names the
//! file (a local path, or the URL of a remote one), the line and the column.
//! Only on that error path: a scan that succeeds never pays for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnv;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::file::{CsvOptions, FileFormat};
use super::line_decoder::{DecoderConfig, LineDecoder, TextFormat};

/// Rows decoded per batch while searching.
const BATCH_ROWS: usize = 8192;

/// How to find the bad row of a CSV or JSON table.
#[derive(Debug, Clone)]
pub struct BadRowLocator {
    /// Where the table's files are.
    files: Files,
    /// The files' format.
    format: FileFormat,
    /// How to decode them: the table's format and columns.
    config: DecoderConfig,
}

/// A table's files: a local file or directory, or a remote file or prefix.
#[derive(Debug, Clone)]
enum Files {
    Local(PathBuf),
    Remote {
        /// The table's URL as DataFusion lists it (boxed: it is large).
        url: Box<ListingTableUrl>,
        /// The store serving it (registered when the table was created).
        store: Arc<dyn ObjectStore>,
    },
}

impl BadRowLocator {
    /// A locator for the table at `path` with columns `schema`, or `None`
    /// when its files cannot be read again here (a glob, a binary format, a
    /// remote store `runtime` does not have).
    pub fn new(
        path: &str,
        format: FileFormat,
        csv: CsvOptions,
        schema: SchemaRef,
        runtime: &RuntimeEnv,
    ) -> Option<Self> {
        let text = TextFormat::new(format, csv)?;
        let local = path.strip_prefix("file://").unwrap_or(path);
        if local.contains(['*', '?', '[']) {
            return None;
        }
        let files = match local.contains("://") {
            false => Files::Local(PathBuf::from(local)),
            true => {
                let url = ListingTableUrl::parse(path).ok()?;
                let store = runtime.object_store(url.object_store()).ok()?;
                Files::Remote {
                    url: Box::new(url),
                    store,
                }
            }
        };
        let config = DecoderConfig::try_new(text, schema, None).ok()?;
        Some(Self {
            files,
            format,
            config,
        })
    }

    /// The first bad row of the table's files, as `file PATH line N: what`,
    /// or `None` if every row decodes (the error was not about one).
    pub async fn locate(&self) -> Option<String> {
        match &self.files {
            Files::Local(path) => {
                let (this, path) = (self.clone(), path.clone());
                tokio::task::spawn_blocking(move || {
                    this.local_files(&path)
                        .iter()
                        .find_map(|file| this.locate_in(file))
                })
                .await
                .ok()
                .flatten()
            }
            Files::Remote { url, store } => {
                for object in self.remote_files(url, store.as_ref()).await {
                    let name = format!("{}{object}", url.object_store().as_str());
                    if let Some(place) = self.locate_in_object(store.as_ref(), &object, &name).await {
                        return Some(place);
                    }
                }
                None
            }
        }
    }

    /// The local table's files in the order DataFusion lists them (by path).
    fn local_files(&self, path: &Path) -> Vec<PathBuf> {
        if path.is_file() {
            return vec![path.to_path_buf()];
        }
        let Ok(entries) = std::fs::read_dir(path) else {
            return vec![];
        };
        let files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && !is_hidden(p))
            .collect();
        self.of_format(files, |p| p.to_str())
    }

    /// The remote table's objects, by path: the one file, or those under its
    /// prefix (none if the store cannot list them).
    async fn remote_files(&self, url: &ListingTableUrl, store: &dyn ObjectStore) -> Vec<ObjectPath> {
        if !url.is_collection() {
            return vec![url.prefix().clone()];
        }
        let listed: Vec<ObjectPath> = match store.list(Some(url.prefix())).try_collect::<Vec<_>>().await {
            Ok(objects) => objects.into_iter().map(|o| o.location).collect(),
            Err(_) => return vec![],
        };
        let listed = listed
            .into_iter()
            .filter(|o| o.filename().is_some_and(|n| !n.starts_with(['.', '_'])))
            .collect();
        self.of_format(listed, |o| Some(o.as_ref()))
    }

    /// `files` sorted, only those of the table's format if their extensions
    /// say so.
    fn of_format<F: Ord>(&self, mut files: Vec<F>, name: impl Fn(&F) -> Option<&str>) -> Vec<F> {
        let of_format = |f: &F| {
            name(f)
                .and_then(FileFormat::from_extension)
                .is_some_and(|format| format == self.format)
        };
        if files.iter().any(of_format) {
            files.retain(of_format);
        }
        files.sort();
        files
    }

    /// The first bad row of local `file`, if it has one.
    fn locate_in(&self, file: &Path) -> Option<String> {
        let mut reader = std::fs::File::open(file).ok()?;
        let mut decoder = self.decoder(&file.display().to_string())?;
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

    /// The first bad row of remote `object` (named `name`), if it has one,
    /// read as it streams in.
    async fn locate_in_object(
        &self,
        store: &dyn ObjectStore,
        object: &ObjectPath,
        name: &str,
    ) -> Option<String> {
        let mut chunks = store.get(object).await.ok()?.into_stream();
        let mut decoder = self.decoder(name)?;
        let mut out = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let pushed = decoder.push(&chunk.ok()?, &mut out);
            out.clear();
            if let Err(e) = pushed {
                return Some(message(e));
            }
        }
        decoder.finish(&mut out).err().map(message)
    }

    /// A decoder whose errors name `file`.
    fn decoder(&self, file: &str) -> Option<LineDecoder> {
        LineDecoder::new(format!("file {file}"), self.config.clone(), BATCH_ROWS).ok()
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

    #[tokio::test]
    async fn the_bad_row_is_named_by_file_line_and_column() {
        let runtime = RuntimeEnv::default();
        let dir = tempfile::tempdir().expect("temp dir");
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        std::fs::write(dir.path().join("1.csv"), "a,b\n1,2\n").expect("write");
        std::fs::write(dir.path().join("2.csv"), "a,b\n3,4\n5,x\n").expect("write");
        std::fs::write(dir.path().join(".hidden.csv"), "junk\n").expect("write");
        let locator = |path: &str, format| {
            BadRowLocator::new(path, format, CsvOptions::default(), Arc::clone(&schema), &runtime)
        };
        let path = dir.path().to_str().expect("utf-8");
        let csv = locator(path, FileFormat::Csv).expect("local");
        let place = csv.locate().await.expect("a bad row");
        let second = dir.path().join("2.csv");
        assert!(
            place.starts_with(&format!("file {} line 3: ", second.display())),
            "{place}"
        );
        assert!(place.contains("in column 2 ('b')"), "{place}");

        let json = dir.path().join("t.ndjson");
        std::fs::write(&json, "{\"a\": 1}\n{\"a\": 2, \"b\n").expect("write");
        let json = json.to_str().expect("utf-8");
        let json_locator = locator(json, FileFormat::Json).expect("local");
        assert!(
            json_locator
                .locate()
                .await
                .expect("bad")
                .starts_with(&format!("file {json} line 2: ")),
            "the truncated last line"
        );
        std::fs::write(dir.path().join("t.ndjson"), "{\"a\": 1}\n").expect("write");
        assert_eq!(json_locator.locate().await, None, "nothing wrong");
        assert!(
            locator("s3://b/k.csv", FileFormat::Csv).is_none(),
            "no store registered for the bucket"
        );
    }
}

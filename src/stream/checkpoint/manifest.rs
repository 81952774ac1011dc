//! A checkpoint's manifest: what it holds, written last, so that a
//! checkpoint with a manifest is complete.

use datafusion::common::exec_datafusion_err;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::Result;
use object_store::path::Path;
use serde_json::{Value, json};

/// The manifest format this build writes (2: state pieces may be held by
/// earlier checkpoints, `reads_from`); it reads 1 too.
pub const FORMAT_VERSION: u64 = 2;

/// How far a source had been read when the checkpoint was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePosition {
    /// The table it reads.
    pub table: String,
    /// Rows the graph had taken from it.
    pub rows: u64,
    /// Whether it had ended.
    pub ended: bool,
    /// Its watermark then (the next rows' watermarks start from it).
    pub watermark: i64,
    /// Where it was in each of its files (a followed file or directory),
    /// to seek to on resume; empty for other sources, which resume by `rows`.
    pub files: Vec<FilePosition>,
    /// The local files a source reads once (a file table in a continuous
    /// replay), which resumes by `rows`: a resume checks they are the same.
    pub read_once: Vec<FileIdentity>,
}

/// Which file a source read once: a resume passes over the rows read
/// before, which are those rows only if the file has not changed. Its size
/// and first bytes, not its inode or time: a file written again with the
/// same rows (a `COPY` run again) is the same file to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    /// Its local path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The hash ([`fingerprint_bytes`]) of its first bytes (up to 4 KB).
    pub head_hash: String,
}

/// How far a source had read one file: the bytes of whole lines decoded,
/// the rows after them already taken, and which file it was, so a resumed
/// query seeks there instead of decoding the file again, and notices a file
/// rotated or rewritten while it was down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePosition {
    /// The path it was read under.
    pub path: String,
    /// Its device and inode then (unix), to notice another file under the name.
    pub inode: Option<(u64, u64)>,
    /// Bytes of whole lines up to the position.
    pub offset: u64,
    /// Lines up to `offset` (a header and blank ones included), so errors
    /// after a resume still name the file's own line numbers.
    pub lines: u64,
    /// A CSV header is still expected (none read before `offset`).
    pub header_pending: bool,
    /// Rows of the lines after `offset` already taken.
    pub skip: u64,
    /// The hash ([`fingerprint_bytes`]) of the file's first `head_len` bytes,
    /// to notice it was rewritten in place.
    pub head_hash: String,
    /// How many first bytes `head_hash` covers (at most the offset).
    pub head_len: u64,
}

/// A staged file a sink makes visible once the checkpoint is complete; a
/// restart finishes the renames a crash interrupted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommit {
    /// The object store's URL (`file:///`, `s3://bucket/`).
    pub store: String,
    /// The staged object.
    pub from: String,
    /// Where it goes.
    pub to: String,
    /// `from` and `to` are local paths relative to the working directory
    /// (they were under it when written), so a checkpoint directory moved
    /// with its output (a project copied elsewhere, a committed test
    /// fixture) still finishes its renames there.
    pub relative: bool,
}

impl PendingCommit {
    /// The rename of `from` to `to` in the store at `store`; local paths
    /// under the working directory are kept relative to it.
    pub fn new(store: &str, from: &Path, to: &Path) -> Self {
        let under_working_dir = (store == LOCAL_STORE)
            .then(working_dir)
            .flatten()
            .and_then(|dir| Some((relative_to(&dir, from)?, relative_to(&dir, to)?)));
        match under_working_dir {
            Some((from, to)) => Self {
                store: store.to_string(),
                from,
                to,
                relative: true,
            },
            None => Self {
                store: store.to_string(),
                from: from.to_string(),
                to: to.to_string(),
                relative: false,
            },
        }
    }

    /// The two paths in the store, relative ones put under today's working
    /// directory.
    pub fn paths(&self) -> Result<(Path, Path)> {
        if !self.relative {
            return Ok((Path::from(self.from.as_str()), Path::from(self.to.as_str())));
        }
        let dir =
            working_dir().ok_or_else(|| exec_datafusion_err!("the working directory cannot be read"))?;
        let under = |relative: &str| Path::from_iter(dir.parts().chain(Path::from(relative).parts()));
        Ok((under(&self.from), under(&self.to)))
    }
}

/// The URL of the local file system's store.
const LOCAL_STORE: &str = "file:///";

/// The working directory as a local store's path, resolved as a relative
/// table path is.
fn working_dir() -> Option<Path> {
    Some(ListingTableUrl::parse("./").ok()?.prefix().clone())
}

/// `path` relative to `dir`, if under it.
fn relative_to(dir: &Path, path: &Path) -> Option<String> {
    let parts: Vec<_> = path.prefix_match(dir)?.map(|p| p.as_ref().to_string()).collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// What one checkpoint holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its number, counting up from 1 over the life of the query.
    pub id: u64,
    /// The plan it belongs to (a checkpoint of another query is refused).
    pub fingerprint: String,
    /// When it was taken, milliseconds since the epoch.
    pub taken_at_ms: i64,
    /// Every source had ended and the query had emitted everything.
    pub finished: bool,
    /// Each source's position, in the graph's source order.
    pub sources: Vec<SourcePosition>,
    /// The nodes that wrote a state file.
    pub nodes: Vec<usize>,
    /// Earlier checkpoints whose state files hold pieces of this one's state
    /// (unchanged since): they are kept as long as this one is.
    pub reads_from: Vec<u64>,
    /// Sinks' staged files, made visible after this manifest is written.
    pub commits: Vec<PendingCommit>,
    /// Late rows counted up to this checkpoint (carried over on resume).
    pub late_rows: u64,
}

impl Manifest {
    /// As JSON text.
    pub fn to_json(&self) -> String {
        let sources: Vec<Value> = self
            .sources
            .iter()
            .map(|s| {
                let mut source =
                    json!({"table": s.table, "rows": s.rows, "ended": s.ended, "watermark": s.watermark});
                if !s.files.is_empty() {
                    source["files"] = s.files.iter().map(FilePosition::to_json).collect();
                }
                if !s.read_once.is_empty() {
                    source["read_once"] = s
                        .read_once
                        .iter()
                        .map(|f| json!({"path": f.path, "size": f.size, "head_hash": f.head_hash}))
                        .collect();
                }
                source
            })
            .collect();
        let commits: Vec<Value> = self
            .commits
            .iter()
            .map(|c| {
                let mut commit = json!({"store": c.store, "from": c.from, "to": c.to});
                if c.relative {
                    commit["relative"] = Value::Bool(true);
                }
                commit
            })
            .collect();
        let value = json!({
            "format_version": FORMAT_VERSION,
            "id": self.id,
            "fingerprint": self.fingerprint,
            "taken_at_ms": self.taken_at_ms,
            "finished": self.finished,
            "sources": sources,
            "nodes": self.nodes,
            "reads_from": self.reads_from,
            "commits": commits,
            "late_rows": self.late_rows,
        });
        format!("{value:#}\n")
    }

    /// Read a manifest; an error says what is wrong with it.
    pub fn from_json(text: &str) -> Result<Self> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| exec_datafusion_err!("the manifest is not JSON: {e}"))?;
        let version = u64_of(&value, "format_version")?;
        if version != 1 && version != FORMAT_VERSION {
            return Err(exec_datafusion_err!(
                "the manifest has format version {version}; this Sluice reads versions 1 to {FORMAT_VERSION}"
            ));
        }
        let sources = array_of(&value, "sources")?
            .iter()
            .map(|s| {
                Ok(SourcePosition {
                    table: str_of(s, "table")?,
                    rows: u64_of(s, "rows")?,
                    ended: bool_of(s, "ended")?,
                    watermark: s
                        .get("watermark")
                        .and_then(Value::as_i64)
                        .ok_or_else(|| missing("watermark"))?,
                    // Checkpoints of version 1 before byte offsets have none.
                    files: optional_array(s, "files", FilePosition::from_json)?,
                    read_once: optional_array(s, "read_once", |f| {
                        Ok(FileIdentity {
                            path: str_of(f, "path")?,
                            size: u64_of(f, "size")?,
                            head_hash: str_of(f, "head_hash")?,
                        })
                    })?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let commits = array_of(&value, "commits")?
            .iter()
            .map(|c| {
                Ok(PendingCommit {
                    store: str_of(c, "store")?,
                    from: str_of(c, "from")?,
                    to: str_of(c, "to")?,
                    relative: c.get("relative").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let nodes = array_of(&value, "nodes")?
            .iter()
            .map(|n| {
                n.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| exec_datafusion_err!("the manifest's nodes are not numbers"))
            })
            .collect::<Result<Vec<_>>>()?;
        // Version 1 wrote every state whole.
        let reads_from = match value.get("reads_from") {
            None if version == 1 => vec![],
            _ => array_of(&value, "reads_from")?
                .iter()
                .map(|n| {
                    n.as_u64()
                        .ok_or_else(|| exec_datafusion_err!("the manifest's reads_from are not numbers"))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(Self {
            id: u64_of(&value, "id")?,
            fingerprint: str_of(&value, "fingerprint")?,
            taken_at_ms: value
                .get("taken_at_ms")
                .and_then(Value::as_i64)
                .ok_or_else(|| missing("taken_at_ms"))?,
            finished: bool_of(&value, "finished")?,
            sources,
            nodes,
            reads_from,
            commits,
            late_rows: u64_of(&value, "late_rows")?,
        })
    }
}

impl FilePosition {
    fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "inode": inode_json(self.inode),
            "offset": self.offset,
            "lines": self.lines,
            "header_pending": self.header_pending,
            "skip": self.skip,
            "head_hash": self.head_hash,
            "head_len": self.head_len,
        })
    }

    fn from_json(value: &Value) -> Result<Self> {
        Ok(Self {
            path: str_of(value, "path")?,
            inode: inode_of(value)?,
            offset: u64_of(value, "offset")?,
            lines: u64_of(value, "lines")?,
            header_pending: bool_of(value, "header_pending")?,
            skip: u64_of(value, "skip")?,
            head_hash: str_of(value, "head_hash")?,
            head_len: u64_of(value, "head_len")?,
        })
    }
}

/// The items of an array `field` that may be left out (none then).
fn optional_array<T>(value: &Value, field: &str, item: impl Fn(&Value) -> Result<T>) -> Result<Vec<T>> {
    match value.get(field).and_then(Value::as_array) {
        Some(items) => items.iter().map(item).collect(),
        None => Ok(Vec::new()),
    }
}

/// A device and inode as JSON: `[dev, ino]`, or null.
fn inode_json(inode: Option<(u64, u64)>) -> Value {
    json!(inode.map(|(dev, ino)| vec![dev, ino]))
}

fn inode_of(value: &Value) -> Result<Option<(u64, u64)>> {
    match value.get("inode") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(pair)) if pair.len() == 2 => Ok(Some((
            pair[0].as_u64().ok_or_else(|| missing("inode"))?,
            pair[1].as_u64().ok_or_else(|| missing("inode"))?,
        ))),
        Some(_) => Err(missing("inode")),
    }
}

fn missing(field: &str) -> datafusion::error::DataFusionError {
    exec_datafusion_err!("the manifest has no valid '{field}'")
}

fn u64_of(value: &Value, field: &str) -> Result<u64> {
    value
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| missing(field))
}

fn bool_of(value: &Value, field: &str) -> Result<bool> {
    value
        .get(field)
        .and_then(Value::as_bool)
        .ok_or_else(|| missing(field))
}

fn str_of(value: &Value, field: &str) -> Result<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| missing(field))
}

fn array_of<'a>(value: &'a Value, field: &str) -> Result<&'a Vec<Value>> {
    value
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| missing(field))
}

/// A stable fingerprint of a plan's text (FNV-1a, 64 bits): the same in every
/// build and run, unlike the standard library's hasher.
pub fn fingerprint(text: &str) -> String {
    fingerprint_bytes(text.as_bytes())
}

/// [`fingerprint`] of bytes (a file's head).
pub fn fingerprint_bytes(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_as_written() {
        let manifest = Manifest {
            id: 3,
            fingerprint: fingerprint("plan"),
            taken_at_ms: 1_700_000_000_000,
            finished: false,
            sources: vec![SourcePosition {
                table: "bids".into(),
                rows: 1234,
                ended: false,
                watermark: -7,
                files: vec![FilePosition {
                    path: "logs/a.ndjson".into(),
                    inode: Some((2049, 77)),
                    offset: 4096,
                    lines: 40,
                    header_pending: false,
                    skip: 3,
                    head_hash: fingerprint("head"),
                    head_len: 4096,
                }],
                read_once: vec![FileIdentity {
                    path: "/data/orders.csv".into(),
                    size: 120,
                    head_hash: fingerprint("id,ts"),
                }],
            }],
            nodes: vec![0, 2],
            reads_from: vec![1],
            commits: vec![
                PendingCommit {
                    store: "file:///".into(),
                    from: "tmp/out/.sluice-staging-1/part-0/a.csv".into(),
                    to: "tmp/out/a.csv".into(),
                    relative: false,
                },
                PendingCommit {
                    store: "file:///".into(),
                    from: "out/.sluice-staging-1/part-0/b.csv".into(),
                    to: "out/b.csv".into(),
                    relative: true,
                },
            ],
            late_rows: 5,
        };
        assert_eq!(Manifest::from_json(&manifest.to_json()).expect("ok"), manifest);
    }

    #[test]
    fn another_version_or_a_missing_field_is_an_error() {
        let err = Manifest::from_json(r#"{"format_version": 99}"#).expect_err("an error");
        assert!(err.to_string().contains("version 99"), "{err}");
        let err = Manifest::from_json(r#"{"format_version": 1, "sources": []}"#).expect_err("an error");
        assert!(err.to_string().contains("commits"), "{err}");
    }

    #[test]
    fn a_manifest_without_file_positions_still_reads() {
        // As this build wrote them before sources kept byte offsets.
        let text = r#"{"format_version": 1, "id": 2, "fingerprint": "f", "taken_at_ms": 5, "finished": false,
            "sources": [{"table": "t", "rows": 10, "ended": false, "watermark": 3}],
            "nodes": [], "commits": [], "late_rows": 0}"#;
        let manifest = Manifest::from_json(text).expect("a version 1 manifest");
        assert_eq!(manifest.sources[0].rows, 10);
        assert!(manifest.sources[0].files.is_empty());
        assert!(
            !manifest.to_json().contains("files"),
            "none written for a source without files"
        );
    }

    #[test]
    fn a_version_1_manifest_reads_from_no_earlier_checkpoint() {
        let v1 = r#"{"format_version": 1, "id": 2, "fingerprint": "f", "taken_at_ms": 0, "finished": false,
            "sources": [], "nodes": [3], "commits": [], "late_rows": 0}"#;
        let manifest = Manifest::from_json(v1).expect("a version 1 manifest reads");
        assert_eq!((manifest.nodes, manifest.reads_from), (vec![3], vec![]));
        let v2 = v1.replace(r#""format_version": 1"#, r#""format_version": 2"#);
        let err = Manifest::from_json(&v2).expect_err("version 2 lists reads_from");
        assert!(err.to_string().contains("reads_from"), "{err}");
    }

    #[test]
    fn fingerprints_are_stable_and_differ_by_plan() {
        assert_eq!(fingerprint(""), "cbf29ce484222325");
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}

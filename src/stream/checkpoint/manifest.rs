//! A checkpoint's manifest: what it holds, written last, so that a
//! checkpoint with a manifest is complete.

use datafusion::common::exec_datafusion_err;
use datafusion::error::Result;
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
            .map(|s| json!({"table": s.table, "rows": s.rows, "ended": s.ended, "watermark": s.watermark}))
            .collect();
        let commits: Vec<Value> = self
            .commits
            .iter()
            .map(|c| json!({"store": c.store, "from": c.from, "to": c.to}))
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
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
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
            }],
            nodes: vec![0, 2],
            reads_from: vec![1],
            commits: vec![PendingCommit {
                store: "file:///".into(),
                from: "tmp/out/.sluice-staging-1/part-0/a.csv".into(),
                to: "tmp/out/a.csv".into(),
            }],
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

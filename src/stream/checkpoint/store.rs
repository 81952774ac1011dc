//! The checkpoint directory: `chk-NNNNNN/` per checkpoint, each with a state
//! file per stateful node and, written last and renamed into place, its
//! `_manifest.json`. Read and written through object_store, so a local path
//! and an `s3://` URL work alike.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::common::exec_datafusion_err;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::session_state::SessionState;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::StateSnapshot;
use super::manifest::Manifest;
use crate::connectors::file_sink::{delete_all, io_cause};

/// Complete checkpoints kept: the latest, and the one before it in case the
/// latest turns out unreadable (with the earlier ones they read from).
pub const KEEP: u64 = 2;

const MANIFEST: &str = "_manifest.json";

/// What [`CheckpointStore::open`] writes and deletes to check it may write.
const PROBE: &str = "_sluice_probe";

/// A checkpoint read back: its manifest and its nodes' states.
pub struct Restored {
    /// What it holds.
    pub manifest: Manifest,
    /// The state of each node that wrote one, pieces held by earlier
    /// checkpoints read from them.
    pub states: BTreeMap<usize, StateSnapshot>,
    /// Which checkpoint holds each node's pieces, by piece.
    pub pieces: BTreeMap<usize, BTreeMap<String, u64>>,
}

/// Where a query's checkpoints are.
#[derive(Clone)]
pub struct CheckpointStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    /// The directory as the user gave it, for messages.
    shown: String,
}

impl CheckpointStore {
    /// The checkpoint directory `dir` (a path, created if missing, or a URL
    /// of a registered store such as `s3://bucket/prefix`).
    pub async fn open(state: &SessionState, dir: &str) -> Result<Self> {
        let is_url = url::Url::parse(dir).is_ok_and(|u| u.scheme().len() > 1);
        let location = if is_url {
            crate::connectors::object_stores::register_for_location(state.runtime_env(), dir, &[])?;
            format!("{}/", dir.trim_end_matches('/'))
        } else {
            std::fs::create_dir_all(dir)
                .map_err(|e| exec_datafusion_err!("cannot create the checkpoint directory '{dir}': {e}"))?;
            let absolute = std::fs::canonicalize(dir)
                .map_err(|e| exec_datafusion_err!("cannot open the checkpoint directory '{dir}': {e}"))?;
            format!("{}/", absolute.display())
        };
        let url = ListingTableUrl::parse(&location)?;
        let opened = Self {
            store: state.runtime_env().object_store(&url)?,
            root: url.prefix().clone(),
            shown: dir.to_string(),
        };
        opened.check_writable().await?;
        Ok(opened)
    }

    /// Write and delete a small object, so that a directory the query cannot
    /// write to (a bucket that does not exist, credentials that may not
    /// write, a store that does not answer) is an error now, before the
    /// query runs, rather than at its first checkpoint. (An S3 listing of a
    /// bucket that does not exist is empty, not an error.)
    async fn check_writable(&self) -> Result<()> {
        let probe = self.root.clone().join(PROBE);
        let written = match self.store.put(&probe, PutPayload::from_static(b"sluice")).await {
            Ok(_) => self.store.delete(&probe).await,
            Err(e) => Err(e),
        };
        written.map_err(|e| {
            exec_datafusion_err!(
                "cannot write to the checkpoint directory '{}': {}; check that it exists{} and that this query may write there, or give another --checkpoint-dir",
                self.shown,
                io_cause(&e),
                if self.shown.contains("://") { " (the bucket too)" } else { "" }
            )
        })
    }

    /// The directory as the user gave it.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn checkpoint_dir(&self, id: u64) -> Path {
        self.root.clone().join(format!("chk-{id:06}"))
    }

    fn error(&self, doing: &str, e: object_store::Error) -> DataFusionError {
        exec_datafusion_err!(
            "cannot {doing} in the checkpoint directory '{}': {}",
            self.shown,
            io_cause(&e)
        )
    }

    /// The numbers of the checkpoints present, complete or not, in order.
    pub async fn ids(&self) -> Result<Vec<u64>> {
        let listing = match self.store.list_with_delimiter(Some(&self.root)).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) => return Ok(vec![]),
            Err(e) => return Err(self.error("list the checkpoints", e)),
        };
        let mut ids: Vec<u64> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix("chk-")?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The latest checkpoint that reads back whole, and a note for each later
    /// one that does not (no manifest: it was being written when the query
    /// stopped; or a state file missing or corrupt).
    pub async fn latest(&self) -> Result<(Option<Restored>, Vec<String>)> {
        let mut notes = Vec::new();
        for id in self.ids().await?.into_iter().rev() {
            match self.read(id).await {
                Ok(restored) => return Ok((Some(restored), notes)),
                Err(e) => notes.push(format!("checkpoint {id} is not usable ({e})")),
            }
        }
        Ok((None, notes))
    }

    async fn read(&self, id: u64) -> Result<Restored> {
        let dir = self.checkpoint_dir(id);
        let manifest = match self.store.get(&dir.clone().join(MANIFEST)).await {
            Ok(got) => got.bytes().await.map_err(|e| self.error("read a manifest", e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(exec_datafusion_err!("it has no manifest: it was not finished"));
            }
            Err(e) => return Err(self.error("read a manifest", e)),
        };
        let text =
            std::str::from_utf8(&manifest).map_err(|_| exec_datafusion_err!("its manifest is not text"))?;
        let manifest = Manifest::from_json(text)?;
        let mut states = BTreeMap::new();
        let mut pieces = BTreeMap::new();
        for &node in &manifest.nodes {
            let mut state = self.read_state(id, node).await?;
            pieces.insert(node, state.locate(id, &BTreeMap::new())?);
            // The pieces unchanged since an earlier checkpoint, from its file.
            let mut earlier = BTreeMap::new();
            for from in state.stored_in() {
                if !manifest.reads_from.contains(&from) {
                    return Err(exec_datafusion_err!(
                        "state file node-{node}.arrow refers to checkpoint {from}, which its manifest does not list"
                    ));
                }
                let held = self
                    .read_state(from, node)
                    .await
                    .map_err(|e| exec_datafusion_err!("checkpoint {from}, which it reads from: {e}"))?;
                earlier.insert(from, held);
            }
            state.resolve(|from, name| match earlier.get(&from) {
                Some(held) => held.piece(name).cloned().map_err(|e| {
                    exec_datafusion_err!("checkpoint {from}, which it reads from, node-{node}.arrow: {e}")
                }),
                None => Err(exec_datafusion_err!("checkpoint {from} was not read")),
            })?;
            states.insert(node, state);
        }
        Ok(Restored {
            manifest,
            states,
            pieces,
        })
    }

    /// The state file of `node` in checkpoint `id`, decoded.
    async fn read_state(&self, id: u64, node: usize) -> Result<StateSnapshot> {
        let path = self.checkpoint_dir(id).join(format!("node-{node}.arrow"));
        let bytes = match self.store.get(&path).await {
            Ok(got) => got
                .bytes()
                .await
                .map_err(|e| self.error("read a state file", e))?,
            Err(e) => {
                return Err(exec_datafusion_err!(
                    "state file node-{node}.arrow: {}",
                    io_cause(&e)
                ));
            }
        };
        StateSnapshot::decode(&bytes).map_err(|e| exec_datafusion_err!("state file node-{node}.arrow: {e}"))
    }

    /// Write checkpoint `id`'s state files, one per node.
    pub async fn write_states(&self, id: u64, states: Vec<(usize, Vec<u8>)>) -> Result<()> {
        let dir = self.checkpoint_dir(id);
        for (node, bytes) in states {
            let path = dir.clone().join(format!("node-{node}.arrow"));
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| self.error("write a state file", e))?;
        }
        Ok(())
    }

    /// Complete checkpoint `manifest.id` (its state files written): one put
    /// of the manifest, the last object of the checkpoint. A put is atomic in
    /// every object store, so a reader sees a whole manifest or none: on S3
    /// an object appears whole once its PUT succeeds; a local file is
    /// written under a temporary name and renamed into place by
    /// object_store. (A put, not a rename: on S3 a rename is a copy and a
    /// delete, two more requests that can fail.)
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let path = self.checkpoint_dir(manifest.id).join(MANIFEST);
        self.store
            .put(&path, PutPayload::from(manifest.to_json().into_bytes()))
            .await
            .map(|_| ())
            .map_err(|e| self.error("write a manifest", e))
    }

    /// Delete the checkpoints before the last [`KEEP`] complete ones up to
    /// `latest`, and unfinished ones before `latest`, except those in `read`
    /// (the kept ones read pieces of their state from them).
    pub async fn prune(&self, latest: u64, read: &BTreeSet<u64>) -> Result<()> {
        for id in self.ids().await? {
            if read.contains(&id) {
                continue;
            }
            if id + KEEP <= latest || (id < latest && !self.has_manifest(id).await) {
                delete_all(self.store.as_ref(), &self.checkpoint_dir(id))
                    .await
                    .map_err(|e| self.error("delete an old checkpoint", e))?;
            }
        }
        Ok(())
    }

    /// Whether checkpoint `id` has a manifest (is complete).
    async fn has_manifest(&self, id: u64) -> bool {
        let path = self.checkpoint_dir(id).join(MANIFEST);
        self.store.head(&path).await.is_ok()
    }

    /// Make the staged files of `commits` visible: each rename not done yet
    /// (its source gone and its target there: done before a crash) is done.
    pub async fn commit(state: &SessionState, commits: &[super::manifest::PendingCommit]) -> Result<()> {
        for commit in commits {
            let url = ListingTableUrl::parse(&commit.store)?;
            let store = state.runtime_env().object_store(&url)?;
            let (from, to) = commit.paths()?;
            match store.rename(&from, &to).await {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) if store.head(&to).await.is_ok() => {}
                Err(e) => {
                    return Err(exec_datafusion_err!(
                        "cannot make the staged file '{from}' visible as '{to}': {}",
                        io_cause(&e)
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn rows(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).expect("a batch")
    }

    /// Write checkpoint `id` of one node whose pieces `a` and `b` are given
    /// (changed) or `None` (unchanged); where the pieces now are.
    async fn checkpoint(
        store: &CheckpointStore,
        id: u64,
        pieces: [(&str, Option<&[i64]>); 2],
        before: &BTreeMap<String, u64>,
    ) -> (BTreeMap<String, u64>, Vec<u64>) {
        let mut state = StateSnapshot::default();
        for (name, values) in pieces {
            match values {
                Some(values) => state.put_piece(name.into(), rows(values)),
                None => state.keep_piece(name.into()),
            }
        }
        let at = state.locate(id, before).expect("located");
        let reads_from: Vec<u64> = state.stored_in().into_iter().collect();
        store
            .write_states(id, vec![(0, state.encode().expect("bytes"))])
            .await
            .expect("written");
        let manifest = Manifest {
            id,
            fingerprint: "f".into(),
            taken_at_ms: 0,
            finished: false,
            sources: vec![],
            nodes: vec![0],
            reads_from: reads_from.clone(),
            commits: vec![],
            late_rows: 0,
        };
        store.write_manifest(&manifest).await.expect("written");
        (at, reads_from)
    }

    #[tokio::test]
    async fn a_checkpoint_another_reads_from_is_kept_and_its_pieces_read_back() {
        let tmp = tempfile::tempdir().expect("a directory");
        let dir = tmp.path().join("ck");
        let state = datafusion::prelude::SessionContext::new().state();
        let store = CheckpointStore::open(&state, &dir.to_string_lossy())
            .await
            .expect("opens");
        let (at, _) = checkpoint(
            &store,
            1,
            [("a", Some(&[1, 2])), ("b", Some(&[3]))],
            &BTreeMap::new(),
        )
        .await;
        let (at, _) = checkpoint(&store, 2, [("a", None), ("b", Some(&[4]))], &at).await;
        let (at, three) = checkpoint(&store, 3, [("a", None), ("b", None)], &at).await;
        assert_eq!(three, vec![1, 2]);
        let (at, four) = checkpoint(&store, 4, [("a", None), ("b", Some(&[5]))], &at).await;
        assert_eq!(four, vec![1]);
        // Kept: 3 and 4, and 1 and 2, which they read from.
        let read: BTreeSet<u64> = three.iter().chain(&four).copied().collect();
        store.prune(4, &read).await.expect("pruned");
        assert_eq!(store.ids().await.expect("listed"), vec![1, 2, 3, 4]);
        let (_, five) = checkpoint(&store, 5, [("a", Some(&[6])), ("b", None)], &at).await;
        assert_eq!(five, vec![4]);
        // 5 reads from 4, 4 from 1: 2 and 3 go.
        let read: BTreeSet<u64> = four.iter().chain(&five).copied().collect();
        store.prune(5, &read).await.expect("pruned");
        assert_eq!(store.ids().await.expect("listed"), vec![1, 4, 5]);
        let (latest, notes) = store.latest().await.expect("read");
        let latest = latest.expect("a checkpoint");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(latest.manifest.id, 5);
        let node = &latest.states[&0];
        assert_eq!(node.piece("a").expect("a"), &rows(&[6]));
        assert_eq!(node.piece("b").expect("b"), &rows(&[5]), "read from checkpoint 4");
        assert_eq!(
            latest.pieces[&0],
            BTreeMap::from([("a".into(), 5), ("b".into(), 4)])
        );
        // Without 5's manifest, 4 is the latest: its `a` comes from 1.
        std::fs::remove_file(dir.join("chk-000005/_manifest.json")).expect("removed");
        let latest = store.latest().await.expect("read").0.expect("a checkpoint");
        assert_eq!(latest.manifest.id, 4);
        assert_eq!(latest.states[&0].piece("a").expect("a"), &rows(&[1, 2]));
        // A checkpoint whose earlier one is gone is not usable, and says so.
        std::fs::remove_dir_all(dir.join("chk-000001")).expect("removed");
        let (latest, notes) = store.latest().await.expect("read");
        assert!(latest.is_none());
        assert!(
            notes.iter().any(|n| n.starts_with("checkpoint 4 is not usable")
                && n.contains("checkpoint 1, which it reads from")),
            "{notes:?}"
        );
    }
}

//! Checkpoints of a continuous query: consistent snapshots of every
//! operator's state and every source's position, from which a restarted
//! query resumes (`--checkpoint-dir`, `SET 'checkpoint.dir'`).
//!
//! The graph is driven by one task that pushes a source's events through
//! every operator before it takes the next ones, so between two pushes the
//! whole graph has seen exactly the rows the sources have handed over. The
//! driver takes its checkpoints there: that moment is what aligned barriers
//! give a graph whose operators run apart (Flink, RisingWave), here without
//! buffering an input while the others catch up. When operators come to run
//! on several tasks, barriers become events of their own.
//!
//! A checkpoint is a directory `chk-NNNNNN` with one Arrow IPC state file per
//! stateful node ([`StateSnapshot`]) and a manifest written last
//! ([`manifest::Manifest`]): a checkpoint without a manifest is incomplete
//! and ignored. Everything goes through object_store ([`store`]), so
//! `s3://` works as a checkpoint directory.
//!
//! A checkpoint costs what changed: a state's pieces unchanged since the last
//! checkpoint (a window aggregate's quiet panes) are not written again but
//! read from the earlier checkpoint that holds them (the manifest's
//! `reads_from`, which pruning keeps), and only the copy of the state pauses
//! the query: the rest is written in the background ([`Checkpointer`]).

mod checkpointer;
pub mod manifest;
mod snapshot;
pub mod store;

use std::time::Duration;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::DataFusionError;

pub use checkpointer::{Checkpointer, Output, acknowledge, failed};
pub use snapshot::{StateSnapshot, int_columns, int_rows, with_columns};

use crate::connectors::options::parse_duration_ms;

/// A checkpoint as a sink sees it, after the rows it covers: the sink
/// finishes what it has staged and says which files to make visible once the
/// checkpoint is complete (the driver renames them after the manifest).
pub struct SinkBarrier {
    /// The checkpoint's number.
    pub id: u64,
    /// Where the sink answers with its staged files.
    pub staged: tokio::sync::oneshot::Sender<datafusion::error::Result<Vec<manifest::PendingCommit>>>,
    /// Resolves (its sender dropped) once the checkpoint is written and its
    /// renames done, or given up: the background write may still be renaming
    /// the sink's staged files, so the sink waits for it before it deletes
    /// its staging.
    pub written: tokio::sync::oneshot::Receiver<()>,
}

/// How often a checkpoint is taken unless `checkpoint.interval` says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// `checkpoint.*` settings.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// Where checkpoints go (a path or an `s3://` URL); `None`: none taken.
    pub dir: Option<String>,
    /// Processing time between two checkpoints.
    pub interval: Duration,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        Self {
            dir: None,
            interval: DEFAULT_INTERVAL,
        }
    }
}

impl CheckpointOptions {
    /// The session's checkpoint settings (the defaults if none were made).
    pub fn of(state: &datafusion::execution::session_state::SessionState) -> Self {
        state
            .config()
            .options()
            .extensions
            .get::<Self>()
            .cloned()
            .unwrap_or_default()
    }
}

impl ConfigExtension for CheckpointOptions {
    const PREFIX: &'static str = "checkpoint";
}

impl ExtensionOptions for CheckpointOptions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> datafusion::error::Result<()> {
        let value = value.trim();
        match key {
            "dir" => {
                self.dir = match value {
                    "" | "none" => None,
                    _ => Some(value.to_string()),
                };
                Ok(())
            }
            "interval" => {
                let ms = parse_duration_ms(value).filter(|ms| *ms > 0).ok_or_else(|| {
                    DataFusionError::Configuration(format!(
                        "checkpoint.interval takes a duration such as '10 s' or '1 min', not '{value}'"
                    ))
                })?;
                self.interval = Duration::from_millis(ms);
                Ok(())
            }
            other => Err(DataFusionError::Configuration(format!(
                "unknown setting 'checkpoint.{other}'; the checkpoint settings are: checkpoint.dir, checkpoint.interval"
            ))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![
            ConfigEntry {
                key: "checkpoint.dir".into(),
                value: self.dir.clone(),
                description: "Where a continuous query keeps its checkpoints and resumes from (a path or s3:// URL)",
            },
            ConfigEntry {
                key: "checkpoint.interval".into(),
                value: Some(format!("{} ms", self.interval.as_millis())),
                description: "Processing time between two checkpoints",
            },
        ]
    }
}

//! An operator's state in the session's memory pool: what
//! `datafusion.runtime.memory_limit` bounds for the continuous executor too.
//!
//! An operator registers once, when its graph opens, and resizes its share
//! after each change of its state; a state that does not fit is an error
//! naming the operator, the state and its size, instead of a process that
//! grows until the system stops it.
//!
//! Without a `memory_limit` (DataFusion's pool is then unbounded) the
//! continuous operators share one pool of the default limit
//! [`super::process_memory`] derives from what the process may use, so an
//! oversized state is still an error and not an aborted process.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use datafusion::common::resources_err;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use futures::future::BoxFuture;

use super::process_memory::{DefaultLimit, Limits};

/// What to do about a state that does not fit, unless the operator says
/// better.
const DEFAULT_FIX: &str = "a shorter window or gap, fewer keys";

/// One operator's share of the memory pool.
#[derive(Debug)]
pub struct StateMemory {
    /// The operator, for the pool's report and errors (`WindowAggregate`).
    operator: &'static str,
    /// Its state's name (`window_partials`).
    state: &'static str,
    /// How to make the state smaller, for the error.
    fix: &'static str,
    /// Registered when the graph opens. In a cell so an operator can size
    /// it from its own `&self` measures (`state_bytes`, `state_rows`) in one
    /// call; operators are `Send`, not shared.
    reservation: RefCell<Option<MemoryReservation>>,
    /// The pool's limit and where it comes from, for the message
    /// (`datafusion.runtime.memory_limit (2097152 bytes)`).
    limit: String,
}

/// The pool of continuous state when the session's is unbounded, with its
/// limit; none where the process's limits are unknown.
fn default_pool() -> Option<&'static (Arc<dyn MemoryPool>, DefaultLimit)> {
    static POOL: OnceLock<Option<(Arc<dyn MemoryPool>, DefaultLimit)>> = OnceLock::new();
    POOL.get_or_init(|| {
        let limit = Limits::read().default_limit()?;
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(limit.bytes));
        Some((pool, limit))
    })
    .as_ref()
}

impl StateMemory {
    /// Not registered yet: resizing does nothing until [`StateMemory::open`].
    pub fn new(operator: &'static str, state: &'static str) -> Self {
        Self {
            operator,
            state,
            fix: DEFAULT_FIX,
            reservation: RefCell::new(None),
            limit: String::new(),
        }
    }

    /// Name how to make this state smaller in the error (`a tighter
    /// interval between the two sides' times`).
    pub fn with_fix(mut self, fix: &'static str) -> Self {
        self.fix = fix;
        self
    }

    /// Register with the pool of the query's task, or, if that is
    /// unbounded, with the default pool of continuous state.
    pub fn open(&mut self, task: &Arc<TaskContext>) {
        let mut pool = task.memory_pool();
        self.limit = match pool.memory_limit() {
            MemoryLimit::Finite(bytes) => format!("datafusion.runtime.memory_limit ({bytes} bytes)"),
            MemoryLimit::Unknown => "datafusion.runtime.memory_limit".into(),
            MemoryLimit::Infinite => match default_pool() {
                Some((default, limit)) => {
                    pool = default;
                    format!(
                        "the default memory limit of continuous state ({} bytes, {}; \
                         SET datafusion.runtime.memory_limit to choose it)",
                        limit.bytes,
                        limit.source()
                    )
                }
                None => "memory".into(),
            },
        };
        let consumer = MemoryConsumer::new(format!("continuous {}", self.operator));
        *self.reservation.get_mut() = Some(consumer.register(pool));
    }

    /// Register as [`StateMemory::open`] does and reserve the `bytes` held
    /// already (restored from a checkpoint, or allocated up front), as an
    /// operator's whole `open`.
    pub fn opened(&mut self, task: &Arc<TaskContext>, bytes: usize) -> BoxFuture<'static, Result<()>> {
        self.open(task);
        let reserved = self.resize(bytes, || "held as the query starts".into());
        Box::pin(async { reserved })
    }

    /// The state now holds `bytes`; `detail` says what it holds (`3 open
    /// panes`) when that does not fit. Cheap when it fits: call it after
    /// every batch, with a size the operator keeps up to date.
    pub fn resize(&self, bytes: usize, detail: impl FnOnce() -> String) -> Result<()> {
        let mut reservation = self.reservation.borrow_mut();
        let Some(reservation) = reservation.as_mut() else {
            return Ok(());
        };
        if reservation.size() == bytes || reservation.try_resize(bytes).is_ok() {
            return Ok(());
        }
        resources_err!(
            "the continuous {}'s state ({}: {}, {bytes} bytes) does not fit in {}: \
             raise the limit, or make the state smaller ({})",
            self.operator,
            self.state,
            detail(),
            self.limit,
            self.fix
        )
    }
}

/// Batches an operator holds until a watermark (a sort, window functions),
/// with their bytes counted as they come and go, so sizing the operator's
/// share after every batch costs nothing.
#[derive(Debug, Default)]
pub struct HeldBatches {
    batches: Vec<RecordBatch>,
    bytes: usize,
}

impl HeldBatches {
    /// Hold `batch` too.
    pub fn push(&mut self, batch: RecordBatch) {
        self.bytes += batch.get_array_memory_size();
        self.batches.push(batch);
    }

    /// Hold exactly `batches` (restored from a checkpoint).
    pub fn set(&mut self, batches: Vec<RecordBatch>) {
        self.bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        self.batches = batches;
    }

    /// Give every batch up.
    pub fn take(&mut self) -> Vec<RecordBatch> {
        self.bytes = 0;
        std::mem::take(&mut self.batches)
    }

    /// The batches held, in the order they came.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// Their bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Their rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;

    #[test]
    fn a_state_beyond_the_limit_is_an_error_naming_it() {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(1000, 1.0)
            .build_arc()
            .expect("a runtime");
        let task = Arc::new(TaskContext::default().with_runtime(runtime));
        let mut memory = StateMemory::new("SessionAggregate", "session_rows");
        memory
            .resize(10_000, || "unused".into())
            .expect("not open yet: no limit");
        memory.open(&task);
        memory.resize(900, || "unused".into()).expect("fits");
        let err = memory
            .resize(2000, || "7 rows".into())
            .expect_err("too big")
            .to_string();
        assert!(
            err.contains("the continuous SessionAggregate's state (session_rows: 7 rows, 2000 bytes) does not fit in datafusion.runtime.memory_limit (1000 bytes)"),
            "{err}"
        );
        memory.resize(0, || "unused".into()).expect("freed");
    }
}

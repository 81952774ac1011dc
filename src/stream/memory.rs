//! An operator's state in the session's memory pool: what
//! `datafusion.runtime.memory_limit` bounds for the continuous executor too.
//!
//! An operator registers once, when its graph opens, and resizes its share
//! after each change of its state; a state that does not fit is an error
//! naming the operator, the state and its size, instead of a process that
//! grows until the system stops it.

use std::sync::Arc;

use datafusion::common::resources_err;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryReservation};

/// One operator's share of the memory pool.
#[derive(Debug)]
pub struct StateMemory {
    /// The operator, for the pool's report and errors (`WindowAggregate`).
    operator: &'static str,
    /// Its state's name (`window_partials`).
    state: &'static str,
    /// Registered when the graph opens.
    reservation: Option<MemoryReservation>,
    /// The pool's limit, for the message.
    limit: Option<usize>,
}

impl StateMemory {
    /// Not registered yet: resizing does nothing until [`StateMemory::open`].
    pub fn new(operator: &'static str, state: &'static str) -> Self {
        Self {
            operator,
            state,
            reservation: None,
            limit: None,
        }
    }

    /// Register with the pool of the query's task.
    pub fn open(&mut self, task: &Arc<TaskContext>) {
        let pool = task.memory_pool();
        let consumer = MemoryConsumer::new(format!("continuous {}", self.operator));
        self.reservation = Some(consumer.register(pool));
        self.limit = match pool.memory_limit() {
            MemoryLimit::Finite(bytes) => Some(bytes),
            MemoryLimit::Infinite | MemoryLimit::Unknown => None,
        };
    }

    /// The state now holds `bytes`; `detail` says what it holds (`3 open
    /// panes`) when that does not fit.
    pub fn resize(&mut self, bytes: usize, detail: impl FnOnce() -> String) -> Result<()> {
        let Some(reservation) = &mut self.reservation else {
            return Ok(());
        };
        if reservation.try_resize(bytes).is_ok() {
            return Ok(());
        }
        let limit = self.limit.map(|l| format!(" ({l} bytes)")).unwrap_or_default();
        resources_err!(
            "the continuous {}'s state ({}: {}, {bytes} bytes) does not fit in datafusion.runtime.memory_limit{limit}: \
             raise the limit, or make the state smaller (a shorter window or gap, fewer keys)",
            self.operator,
            self.state,
            detail()
        )
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

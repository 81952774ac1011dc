//! From statements to plans: the catalog of connector tables, DataFusion's
//! logical planning, and the choice of executor by boundedness.

mod boundedness;
mod catalog;
mod event_time;
pub mod flink_functions;
mod postgres_patterns;
pub mod proctime;
pub mod scalar_subqueries;
mod session_where;
mod sql_context;
mod timestamp_format;
pub mod window_node;
pub mod windows;

pub use boundedness::{DATAFUSION_TABLE, ExecutorChoice, SourceUse, choose_executor};
pub use catalog::{SourceCatalog, SourceInfo, Watermark, create_connector_table};
pub use event_time::{NullEventTimes, check_nanos_range, event_time_check, null_event_times};
pub use session_where::SessionWhereIntoAggregate;
pub use sql_context::SessionFunctions;
pub use window_node::{LowerWindows, WindowTvf};

/// Which executor runs a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// DataFusion's batch engine: every source is bounded.
    Batch,
    /// Sluice's incremental engine: some source is unbounded (or forced).
    Continuous,
}

impl std::fmt::Display for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Executor::Batch => "batch",
            Executor::Continuous => "continuous",
        })
    }
}

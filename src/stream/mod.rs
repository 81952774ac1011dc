//! The continuous executor: incremental operators over unbounded sources.
//!
//! Not built yet (see the continuous-executor issue). Until it is, a query
//! over an unbounded source is refused with an error that names the source;
//! it never silently falls back to batch.

use datafusion::common::not_impl_err;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;

use crate::plan::ExecutorChoice;

/// Run a query continuously. Always an error for now.
pub fn execute(choice: &ExecutorChoice) -> Result<SendableRecordBatchStream> {
    not_impl_err!(
        "the continuous executor is not available yet, and this query needs it ({})",
        choice.explanation()
    )
}

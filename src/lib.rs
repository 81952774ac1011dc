//! Sluice: one SQL dialect over bounded data (batch) and unbounded streams (continuous).
//!
//! Data flows one way through the modules:
//!
//! ```text
//! SQL text ─► sql (split, parse: DataFusion's parser + our dialect)
//!          ─► plan (catalog of connector tables, DataFusion logical plan, boundedness)
//!          ─► batch (DataFusion physical plan)  |  stream (incremental operators, later)
//!          ─► cli (REPL, script runner, output formats)
//! ```
//!
//! [`Engine`] ties the layers together and is what the CLI, the tests and the
//! benches drive.
#![deny(clippy::clone_on_ref_ptr)]
#![warn(clippy::unwrap_used)]

pub mod batch;
pub mod cli;
pub mod connectors;
mod engine;
pub mod error;
pub mod plan;
pub mod sql;
pub mod stream;

pub use engine::{Engine, Mode, ResultMode, SluiceOptions, StatementOutput};
pub use error::{Result, SluiceError};

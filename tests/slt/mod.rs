//! The pieces of the sqllogictest harness (`tests/sqllogictests.rs`).

pub mod conformance;
pub mod db;
pub mod fixtures;
pub mod normalize;
pub mod run;

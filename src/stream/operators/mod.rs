//! The continuous executor's operators, one per file. Single-input operators
//! implement [`crate::stream::operator::Operator`]; operators that merge
//! streams (unions, joins) implement
//! [`crate::stream::operator::MultiInputOperator`] and get their inputs'
//! watermarks already merged by the graph.

pub mod dedup;
pub mod deferred;
pub mod emit_on_watermark;
pub mod final_aggregate;
pub mod group_changes;
pub mod interval_join;
pub mod join;
#[cfg(test)]
mod join_differential;
pub mod join_state;
pub mod lookup_join;
pub mod over_aggregate;
pub mod pending_rows;
pub mod session_aggregate;
pub mod sort;
pub mod stateless;
pub mod stream_join;
#[cfg(test)]
pub mod testing;
pub mod top_n;
pub mod union;
pub mod unnest;
pub mod updating_aggregate;
pub mod window_aggregate;
pub mod window_functions;
pub mod window_join;
pub mod window_top_n;

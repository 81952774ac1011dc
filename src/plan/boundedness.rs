//! Which executor runs a plan: batch when every source is bounded,
//! continuous as soon as one is not.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::error::Result;
use datafusion::logical_expr::LogicalPlan;

use super::{Executor, SourceCatalog};
use crate::connectors::Boundedness;

/// How EXPLAIN describes a table DataFusion registered itself (memory tables,
/// `CREATE EXTERNAL TABLE`, views' inputs): bounded, with no connector.
pub const DATAFUSION_TABLE: &str = "datafusion table";

/// One table a plan reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUse {
    /// The table's name as the plan references it.
    pub table: String,
    /// What backs it (`file csv testdata/orders.csv`, `datafusion table`).
    pub description: String,
    /// Whether it ends.
    pub boundedness: Boundedness,
}

/// The executor chosen for a plan, with the sources that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorChoice {
    /// Batch or continuous.
    pub executor: Executor,
    /// Every table the plan reads, in plan order, each once.
    pub sources: Vec<SourceUse>,
}

impl ExecutorChoice {
    /// One line for EXPLAIN: the executor and why.
    pub fn explanation(&self) -> String {
        let list = |filter: &dyn Fn(&SourceUse) -> bool| {
            self.sources
                .iter()
                .filter(|s| filter(s))
                .map(|s| format!("{} ({})", s.table, s.description))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.executor {
            Executor::Batch if self.sources.is_empty() => "batch: the query reads no table".to_string(),
            Executor::Batch => format!("batch: every source is bounded: {}", list(&|_| true)),
            Executor::Continuous if self.sources.iter().all(|s| s.boundedness == Boundedness::Bounded) => {
                format!(
                    "continuous (sluice.mode): replaying bounded sources {}",
                    list(&|_| true)
                )
            }
            Executor::Continuous => format!(
                "continuous: unbounded source {}",
                list(&|s| s.boundedness == Boundedness::Unbounded)
            ),
        }
    }
}

/// Choose the executor for `plan` (for EXPLAIN, of the plan it explains).
pub fn choose_executor(plan: &LogicalPlan, catalog: &SourceCatalog) -> Result<ExecutorChoice> {
    let plan = match plan {
        LogicalPlan::Explain(explain) => explain.plan.as_ref(),
        LogicalPlan::Analyze(analyze) => analyze.input.as_ref(),
        other => other,
    };
    let mut sources: Vec<SourceUse> = Vec::new();
    // A changelog is folded by the continuous executor's updating operators,
    // bounded or not.
    let mut changelog = false;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let table = scan.table_name.to_string();
            let source = source_as_provider(&scan.source)
                .ok()
                .and_then(|provider| catalog.source_of(&provider));
            changelog |= source.as_ref().is_some_and(|s| s.changelog);
            let (description, boundedness) = match source {
                Some(info) => (
                    format!("{} {}", info.connector, info.description),
                    info.boundedness,
                ),
                None => (DATAFUSION_TABLE.to_string(), Boundedness::Bounded),
            };
            if !sources.iter().any(|s| s.table == table) {
                sources.push(SourceUse {
                    table,
                    description,
                    boundedness,
                });
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let executor = if !changelog && sources.iter().all(|s| s.boundedness == Boundedness::Bounded) {
        Executor::Batch
    } else {
        Executor::Continuous
    };
    Ok(ExecutorChoice { executor, sources })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanation_names_the_deciding_sources() {
        let choice = ExecutorChoice {
            executor: Executor::Continuous,
            sources: vec![
                SourceUse {
                    table: "a".into(),
                    description: "file csv a.csv".into(),
                    boundedness: Boundedness::Bounded,
                },
                SourceUse {
                    table: "b".into(),
                    description: "stdin json".into(),
                    boundedness: Boundedness::Unbounded,
                },
            ],
        };
        assert_eq!(
            choice.explanation(),
            "continuous: unbounded source b (stdin json)"
        );
        let batch = ExecutorChoice {
            executor: Executor::Batch,
            sources: choice.sources[..1].to_vec(),
        };
        assert_eq!(
            batch.explanation(),
            "batch: every source is bounded: a (file csv a.csv)"
        );
    }
}

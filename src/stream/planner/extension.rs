//! The stream planner's node in DataFusion's logical plan: a [`Lowered`]
//! extension stands, in the plan being lowered, for the logical node a
//! lowering rule (`rules.rs`) rewrote, with what it was lowered to: the
//! stream operators it runs (a [`Planned`]: its stream plan, window
//! lineage, sources, updating-ness, all computed by its rule from the node
//! and its lowered inputs), or why it could not be (a refusal, which a rule
//! above may still take over: a Top-N's filter takes the window functions
//! below it, a lookup join its table side; the final visitor reports what is
//! left). Its inputs are the lowered nodes its stream plan reads, so the
//! lowered plan is a tree of these nodes, walked by DataFusion's `TreeNode`.
//!
//! One extension type serves every kind of stream node: the kinds are
//! [`StreamNode`]'s variants, built into operators by one `match`
//! (`plan/build.rs`); a logical node type per kind would only repeat them.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchemaRef, DataFusionError};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};

use super::Planned;

/// A logical node lowered by a rule (see the module doc).
#[derive(Clone)]
pub(super) struct Lowered {
    lowering: Arc<Lowering>,
    /// The lowered nodes its rule read: those its stream plan is built on
    /// (for a refusal, where the final visitor looks for a deeper one).
    inputs: Vec<LogicalPlan>,
}

struct Lowering {
    /// Which rule lowered it.
    rule: &'static str,
    /// The logical node it stands for (its inputs lowered already).
    original: LogicalPlan,
    outcome: Outcome,
    /// What its rule found worth saying (state that grows without bound...).
    warnings: Vec<String>,
}

enum Outcome {
    Planned(Planned),
    Refused {
        /// Taken once, by the final visitor.
        error: Mutex<Option<DataFusionError>>,
        /// The refusal was of an updating input (see [`super::StreamPlanner::plan`]).
        of_updating_input: bool,
    },
}

/// A refusal found by the final visitor.
pub(super) struct Refusal {
    pub(super) error: DataFusionError,
    pub(super) of_updating_input: bool,
}

impl Lowered {
    /// `original`, lowered by `rule` to `planned`, which reads `inputs`.
    pub(super) fn planned(
        rule: &'static str,
        original: LogicalPlan,
        planned: Planned,
        inputs: Vec<LogicalPlan>,
        warnings: Vec<String>,
    ) -> LogicalPlan {
        Self::plan(rule, original, Outcome::Planned(planned), inputs, warnings)
    }

    /// `original`, which `rule` refused with `error`; `inputs`: the lowered
    /// plans its rule read, where a deeper refusal may be.
    pub(super) fn refused(
        rule: &'static str,
        original: LogicalPlan,
        error: DataFusionError,
        of_updating_input: bool,
        inputs: Vec<LogicalPlan>,
    ) -> LogicalPlan {
        let outcome = Outcome::Refused {
            error: Mutex::new(Some(error)),
            of_updating_input,
        };
        Self::plan(rule, original, outcome, inputs, Vec::new())
    }

    fn plan(
        rule: &'static str,
        original: LogicalPlan,
        outcome: Outcome,
        inputs: Vec<LogicalPlan>,
        warnings: Vec<String>,
    ) -> LogicalPlan {
        let lowering = Arc::new(Lowering {
            rule,
            original,
            outcome,
            warnings,
        });
        LogicalPlan::Extension(Extension {
            node: Arc::new(Lowered { lowering, inputs }),
        })
    }

    /// `plan` as a lowered node, if it is one.
    pub(super) fn of(plan: &LogicalPlan) -> Option<&Lowered> {
        match plan {
            LogicalPlan::Extension(extension) => extension.node.as_any().downcast_ref::<Lowered>(),
            _ => None,
        }
    }

    /// What it was lowered to; `None` for a refusal.
    pub(super) fn planned_as(&self) -> Option<&Planned> {
        match &self.lowering.outcome {
            Outcome::Planned(planned) => Some(planned),
            Outcome::Refused { .. } => None,
        }
    }

    /// The deepest refusal under `plan` (itself included), whose inputs were
    /// all lowered: the one to report.
    pub(super) fn deepest_refusal(plan: &LogicalPlan) -> Option<Refusal> {
        let lowered = Lowered::of(plan)?;
        if let Outcome::Refused {
            error,
            of_updating_input,
        } = &lowered.lowering.outcome
        {
            if let Some(deeper) = lowered.inputs.iter().find_map(Lowered::deepest_refusal) {
                return Some(deeper);
            }
            let error = error.lock().ok().and_then(|mut e| e.take());
            let error =
                error.unwrap_or_else(|| DataFusionError::Plan("the query could not be lowered".into()));
            return Some(Refusal {
                error,
                of_updating_input: *of_updating_input,
            });
        }
        lowered.inputs.iter().find_map(Lowered::deepest_refusal)
    }

    /// The warnings of `plan`'s lowered nodes, inputs first.
    pub(super) fn warnings(plan: &LogicalPlan, warnings: &mut Vec<String>) {
        if let Some(lowered) = Lowered::of(plan) {
            for input in &lowered.inputs {
                Lowered::warnings(input, warnings);
            }
            warnings.extend(lowered.lowering.warnings.iter().cloned());
        }
    }
}

/// The logical node `plan` stands for: its original, if lowered, else
/// itself. Rules that take over a node below them look at it through this.
pub(super) fn logical(plan: &LogicalPlan) -> &LogicalPlan {
    match Lowered::of(plan) {
        Some(lowered) => &lowered.lowering.original,
        None => plan,
    }
}

/// `plan` as it was before lowering: every lowered node replaced by its
/// original (a lookup join's table side runs in batch; what a side reads
/// is found by its table scans).
pub(super) fn unlowered(plan: &LogicalPlan) -> Result<LogicalPlan> {
    plan.clone()
        .transform_down(|node| match Lowered::of(&node) {
            Some(lowered) => Ok(Transformed::yes(lowered.lowering.original.clone())),
            None => Ok(Transformed::no(node)),
        })
        .map(|transformed| transformed.data)
}

impl fmt::Debug for Lowered {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.fmt_for_explain(f)
    }
}

impl PartialEq for Lowered {
    /// Each lowering is its own node: equal only to itself (over equal inputs).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.lowering, &other.lowering) && self.inputs == other.inputs
    }
}

impl Eq for Lowered {}

impl PartialOrd for Lowered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        (self == other).then_some(std::cmp::Ordering::Equal)
    }
}

impl Hash for Lowered {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.lowering), state);
        self.inputs.hash(state);
    }
}

impl UserDefinedLogicalNodeCore for Lowered {
    fn name(&self) -> &str {
        match self.lowering.outcome {
            Outcome::Planned(_) => "Stream",
            Outcome::Refused { .. } => "Refused",
        }
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        self.inputs.iter().collect()
    }

    fn schema(&self) -> &DFSchemaRef {
        self.lowering.original.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let lowering = &self.lowering;
        write!(
            f,
            "{}: {} by {}",
            self.name(),
            lowering.original.display(),
            lowering.rule
        )
    }

    /// The same lowering over other inputs (DataFusion's analyzers rebuild
    /// nodes when they walk a plan built over lowered nodes).
    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(Lowered {
            lowering: Arc::clone(&self.lowering),
            inputs,
        })
    }
}

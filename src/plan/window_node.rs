//! The window table function as a node of the logical plan.
//!
//! SQL planning leaves a `WindowTvf` node where a window TVF was written, so
//! both executors see the window itself rather than its relational lowering:
//!
//! - batch: the [`LowerWindows`] analyzer rule, first in the session's
//!   analyzer, replaces each node with the plain relational plan of
//!   [`super::windows::lower`] (date_bin, shifts, window functions), which
//!   DataFusion then type-checks, optimizes and runs as any other plan;
//! - continuous: the stream planner analyzes without that rule and maps the
//!   node to a window assigner, or folds it into the windowed aggregate above
//!   (HOP and CUMULATE then aggregate per pane instead of copying each row
//!   into every window).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchemaRef, internal_err};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, ExprSchemable, Extension, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::optimizer::AnalyzerRule;

use super::event_time::NullEventTimes;
use super::windows::{WindowKind, lower};

/// `TUMBLE` / `HOP` / `CUMULATE` / `SESSION` over `input`: the input's columns
/// plus `window_start`, `window_end` and `window_time`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowTvf {
    /// The table argument.
    pub input: Arc<LogicalPlan>,
    /// The event-time expression (the DESCRIPTOR column).
    pub time: Expr,
    /// Which window, with its sizes.
    pub kind: WindowKind,
    /// SESSION's `PARTITION BY` keys (empty for the others).
    pub partition_keys: Vec<Expr>,
    /// Continuous only: a windowed aggregate above it makes its windows of
    /// panes, so each row needs its pane (a HOP's slide, a CUMULATE's step)
    /// or its own session interval, not a copy per window. Batch lowers
    /// every window the same.
    pub panes: bool,
    schema: DFSchemaRef,
    /// Rows left out for a NULL time, counted by every lowering of the node.
    nulls: NullEventTimes,
}

impl WindowTvf {
    /// A window over `input`; its schema is that of its relational lowering.
    pub fn try_new(
        input: Arc<LogicalPlan>,
        time: Expr,
        kind: WindowKind,
        partition_keys: Vec<Expr>,
    ) -> Result<Self> {
        let (unit, tz) = time_type(&time, &input)?;
        let nulls = NullEventTimes::default();
        let lowered = lower(
            input.as_ref().clone(),
            time.clone(),
            unit,
            tz,
            &kind,
            partition_keys.clone(),
            &nulls,
        )?;
        Ok(Self {
            input,
            time,
            kind,
            partition_keys,
            panes: false,
            schema: Arc::clone(lowered.schema()),
            nulls,
        })
    }

    /// The same node counting its NULL times with `other`'s (a rewrite of
    /// `other`).
    pub fn counting_with(mut self, other: &WindowTvf) -> Self {
        self.nulls = other.nulls.clone();
        self
    }

    /// The rows it left out for a NULL time.
    pub fn null_times(&self) -> &NullEventTimes {
        &self.nulls
    }

    /// The node as a plan.
    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension { node: Arc::new(self) })
    }

    /// The relational plan batch runs.
    pub fn lower(&self) -> Result<LogicalPlan> {
        let (unit, tz) = time_type(&self.time, &self.input)?;
        lower(
            self.input.as_ref().clone(),
            self.time.clone(),
            unit,
            tz,
            &self.kind,
            self.partition_keys.clone(),
            &self.nulls,
        )
    }

    /// The node behind an extension plan node, if it is a window.
    pub fn from_plan(plan: &LogicalPlan) -> Option<&WindowTvf> {
        match plan {
            LogicalPlan::Extension(extension) => extension.node.as_any().downcast_ref::<WindowTvf>(),
            _ => None,
        }
    }

    /// How many columns come from the input (the window's follow).
    pub fn input_width(&self) -> usize {
        self.input.schema().fields().len()
    }
}

/// The unit and zone of the time column.
fn time_type(time: &Expr, input: &LogicalPlan) -> Result<(TimeUnit, Option<Arc<str>>)> {
    match time.get_type(input.schema())? {
        DataType::Timestamp(unit, tz) => Ok((unit, tz)),
        other => internal_err!("a window's time column must be a timestamp, not {other}"),
    }
}

impl PartialOrd for WindowTvf {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        // Only plans' equality matters to DataFusion; order by the inputs'
        // display as a stable, if arbitrary, answer.
        match self.input.partial_cmp(&other.input) {
            Some(Ordering::Equal) => format!("{:?}", self.kind).partial_cmp(&format!("{:?}", other.kind)),
            ordering => ordering,
        }
    }
}

impl UserDefinedLogicalNodeCore for WindowTvf {
    fn name(&self) -> &str {
        "Window"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![self.input.as_ref()]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        std::iter::once(self.time.clone())
            .chain(self.partition_keys.iter().cloned())
            .collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Window: {:?} on {}", self.kind, self.time)?;
        if !self.partition_keys.is_empty() {
            let keys: Vec<String> = self.partition_keys.iter().map(|k| k.to_string()).collect();
            write!(f, " partition by {}", keys.join(", "))?;
        }
        if self.panes {
            write!(f, ", per pane")?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(&self, mut exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        if exprs.is_empty() || inputs.len() != 1 {
            return internal_err!("a window has one time expression and one input");
        }
        let time = exprs.remove(0);
        let input = Arc::new(inputs.remove(0));
        let mut window = Self::try_new(input, time, self.kind, exprs)?.counting_with(self);
        window.panes = self.panes;
        Ok(window)
    }

    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let width = self.input_width();
        let input_schema = self.input.schema();
        let mut needed: Vec<usize> = output_columns.iter().copied().filter(|&i| i < width).collect();
        for expr in self.expressions() {
            for column in expr.column_refs() {
                needed.push(input_schema.index_of_column(column).ok()?);
            }
        }
        needed.sort_unstable();
        needed.dedup();
        Some(vec![needed])
    }

    fn prevent_predicate_push_down_columns(&self) -> std::collections::HashSet<String> {
        // Filters on the input's own columns may go below a fixed window (a
        // row's windows depend only on its time), never below a session (the
        // rows a filter removes could have bridged or opened a session), and
        // filters on the window's own columns never.
        let skip = match self.kind {
            WindowKind::Session { .. } => 0,
            _ => self.input_width(),
        };
        self.schema
            .fields()
            .iter()
            .skip(skip)
            .map(|f| f.name().clone())
            .collect()
    }
}

/// Batch's analyzer rule: every window node becomes its relational plan.
#[derive(Debug, Default)]
pub struct LowerWindows;

impl AnalyzerRule for LowerWindows {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match WindowTvf::from_plan(&node) {
            Some(window) => Ok(Transformed::yes(window.lower()?)),
            None => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_lower_windows"
    }
}

//! Window lineage: where a node's window bounds are, as the planner walks
//! the plan bottom-up, so an aggregate knows it groups by a window.

use super::*;

/// Where a window's bounds are in a node's output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WindowLineage {
    pub(super) kind: WindowKind,
    /// The bound columns hold panes (one slide or step), not windows.
    pub(super) panes: bool,
    /// A window's rows come together, when it closes (a windowed aggregate's
    /// output), rather than as they arrive (a window TVF's rows).
    pub(super) complete: bool,
    pub(super) start: Option<usize>,
    pub(super) end: Option<usize>,
    pub(super) time: Option<usize>,
}

impl WindowLineage {
    pub(super) fn role(&self, index: usize) -> Option<WindowColumn> {
        if self.start == Some(index) {
            Some(WindowColumn::Start)
        } else if self.end == Some(index) {
            Some(WindowColumn::End)
        } else if self.time == Some(index) {
            Some(WindowColumn::Time)
        } else {
            None
        }
    }

    /// The bounds moved to where `position` says each column of this node
    /// goes (`None`: dropped); `None` when no bound is left.
    pub(super) fn remap(&self, position: impl Fn(usize) -> Option<usize>) -> Option<WindowLineage> {
        let out = WindowLineage {
            start: self.start.and_then(&position),
            end: self.end.and_then(&position),
            time: self.time.and_then(&position),
            ..*self
        };
        (out.start.is_some() || out.end.is_some() || out.time.is_some()).then_some(out)
    }

    /// The bounds among `columns` (indices of this node's output), renumbered.
    pub(super) fn select(&self, columns: &[usize]) -> Option<WindowLineage> {
        self.remap(|bound| columns.iter().position(|&c| c == bound))
    }

    /// Follow the bounds through a projection's expressions: a bound passes
    /// where an expression is the bare column (or an alias of it).
    pub(super) fn through(&self, exprs: &[Expr], input: &DFSchema) -> Option<WindowLineage> {
        self.remap(|bound| {
            exprs.iter().position(|expr| match strip_alias(expr) {
                Expr::Column(column) => input.index_of_column(column).ok() == Some(bound),
                _ => false,
            })
        })
    }
}

pub(super) fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
}

/// The window bounds among an aggregate's output columns.
pub(super) fn output_lineage(kind: WindowKind, group_columns: &[GroupColumn]) -> WindowLineage {
    let position = |role: WindowColumn| {
        group_columns
            .iter()
            .position(|c| matches!(c, GroupColumn::Window(r) if *r == role))
    };
    WindowLineage {
        kind,
        panes: false,
        complete: true,
        start: position(WindowColumn::Start),
        end: position(WindowColumn::End),
        time: position(WindowColumn::Time),
    }
}

/// Whether `expr` is a bare column holding one of the window's bounds.
pub(super) fn is_bound_column(expr: &Expr, lineage: &WindowLineage, schema: &DFSchema) -> bool {
    match expr {
        Expr::Column(c) => schema
            .index_of_column(c)
            .ok()
            .and_then(|i| lineage.role(i))
            .is_some(),
        _ => false,
    }
}

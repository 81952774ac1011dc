//! A limit on how deep a statement nests.
//!
//! sqlparser parses a chain of binary operators (`a OR b OR ...`, `1 + 1 + ...`)
//! and of set operations (`SELECT 1 UNION ALL SELECT 1 ...`) in a loop, so its
//! recursion limit does not stop them; but every later pass (our rewrites,
//! DataFusion's planner and optimizer, cloning, dropping) walks the tree
//! recursively, one stack frame or more per level. The CLI plans on a large
//! stack (see `cli::main`); past [`MAX_NESTING`] levels a statement is refused
//! here, right after parsing, before any recursive walk, so the process never
//! overflows its stack and aborts.

use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::sql::parser::Statement as DFStatement;
use sqlparser::ast::{Expr, Query, SetExpr, VisitorMut};

/// The deepest chain of operators or set operations a statement may hold.
pub const MAX_NESTING: usize = 10_000;

/// Refuse `statement` if an expression or a query in it nests deeper than
/// [`MAX_NESTING`].
pub fn check_nesting(statement: &mut DFStatement) -> Result<(), DataFusionError> {
    let mut check = Nesting { inside_expr: 0 };
    match super::windows::visit_statement(statement, &mut check) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Nesting {
    /// How many expressions the visitor is inside: only outermost ones are
    /// measured (their parts are within their depth), so the check is linear.
    inside_expr: usize,
}

impl VisitorMut for Nesting {
    type Break = DataFusionError;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<DataFusionError> {
        let depth = set_depth(&query.body);
        if depth > MAX_NESTING {
            return ControlFlow::Break(too_deep(depth, "set operations (UNION, EXCEPT, INTERSECT)"));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<DataFusionError> {
        if self.inside_expr == 0 {
            let depth = expr_depth(expr);
            if depth > MAX_NESTING {
                return ControlFlow::Break(too_deep(depth, "operators"));
            }
        }
        self.inside_expr += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &mut Expr) -> ControlFlow<DataFusionError> {
        self.inside_expr = self.inside_expr.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

fn too_deep(depth: usize, what: &str) -> DataFusionError {
    DataFusionError::Plan(format!(
        "this statement nests {depth} {what} deep, more than the {MAX_NESTING} Sluice plans: \
         split it into smaller statements or expressions (e.g. x IN (1, 2, ...) rather than a chain of OR)"
    ))
}

/// The depth of a chain of set operations, walked without recursion.
fn set_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(body, 1)];
    while let Some((set, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if let SetExpr::SetOperation { left, right, .. } = set {
            pending.push((left, depth + 1));
            pending.push((right, depth + 1));
        }
    }
    deepest
}

/// The depth of an expression's operator chains, walked without recursion.
/// Only the forms the parser builds in a loop can be deep; anything else
/// nests through the parser's recursion, which its own limit bounds.
fn expr_depth(expr: &Expr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(expr, 1)];
    while let Some((e, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        match e {
            Expr::BinaryOp { left, right, .. } => {
                pending.push((left, depth + 1));
                pending.push((right, depth + 1));
            }
            Expr::UnaryOp { expr, .. }
            | Expr::Nested(expr)
            | Expr::Cast { expr, .. }
            | Expr::IsNull(expr)
            | Expr::IsNotNull(expr)
            | Expr::IsTrue(expr)
            | Expr::IsFalse(expr)
            | Expr::IsNotTrue(expr)
            | Expr::IsNotFalse(expr) => pending.push((expr, depth + 1)),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Statement, parse_script};
    use sqlparser::dialect::GenericDialect;

    /// Run `test` on a stack as large as the CLI's: deep trees are dropped
    /// recursively.
    fn on_a_large_stack(test: fn()) {
        let thread = std::thread::Builder::new()
            .stack_size(256 * 1024 * 1024)
            .spawn(test);
        assert!(thread.map(|t| t.join().is_ok()).unwrap_or(false));
    }

    #[test]
    fn a_long_chain_is_refused_and_a_short_one_passes() {
        on_a_large_stack(long_chain);
    }

    fn long_chain() {
        let chain = |n: usize| format!("SELECT {}", vec!["1"; n].join(" + "));
        let refused = parse_script(&chain(MAX_NESTING + 10), &GenericDialect {}, 50).map(|_| ());
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("nests 10010 operators deep"), "{message}");
        let passed = parse_script(&chain(100), &GenericDialect {}, 50);
        assert!(matches!(
            passed.map(|mut s| s.remove(0).statement),
            Ok(Statement::DataFusion(_))
        ));
    }

    #[test]
    fn a_long_union_is_refused() {
        on_a_large_stack(long_union);
    }

    fn long_union() {
        let sql = format!("SELECT 1{}", " UNION ALL SELECT 1".repeat(MAX_NESTING + 1));
        let refused = parse_script(&sql, &GenericDialect {}, 50).map(|_| ());
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("set operations"), "{message}");
    }
}

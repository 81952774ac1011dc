//! Flink's legacy group windows, rewritten into window table functions:
//!
//! ```sql
//! SELECT bidder, SESSION_START(date_time, INTERVAL '10' SECOND), count(*)
//! FROM bid GROUP BY bidder, SESSION(date_time, INTERVAL '10' SECOND)
//! -- becomes
//! SELECT bidder, window_start, count(*)
//! FROM SESSION(bid, date_time, INTERVAL '10' SECOND, partition_key => bidder) AS bid
//! GROUP BY bidder, window_start, window_end
//! ```
//!
//! `TUMBLE(ts, size)`, `HOP(ts, slide, size)` and `SESSION(ts, gap)` in GROUP BY
//! become the window relation over the query's one FROM table (kept under the
//! table's name or alias, so qualified columns still resolve); `*_START`,
//! `*_END` and `*_ROWTIME` become `window_start`, `window_end`, `window_time`.
//! A session window is per group: the other GROUP BY keys partition it.
//! A helper must name the GROUP BY window, as Flink requires: `TUMBLE_START(v, 1)`
//! under `GROUP BY TUMBLE(ts, INTERVAL '5' SECOND)` is an error, not that window's start.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArgOperator, FunctionArguments, GroupByExpr, Ident,
    ObjectName, Select, SelectItem, SetExpr, TableAlias, TableFactor, TableFunctionArgs, Value,
    ValueWithSpan, VisitMut, VisitorMut,
};

use datafusion::sql::parser::Statement as DFStatement;

use datafusion::error::DataFusionError;

use super::windows::PARTITION_KEY_ARG;
use crate::error::{Result, SluiceError};

/// Rewrite every SELECT of `statement` that groups by a legacy window; a
/// window helper (`TUMBLE_START(...)`) that names another window is an error.
pub fn rewrite(statement: &mut DFStatement) -> Result<()> {
    match super::windows::visit_statement(statement, &mut GroupWindows) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct GroupWindows;

impl VisitorMut for GroupWindows {
    type Break = SluiceError;

    fn pre_visit_query(&mut self, query: &mut sqlparser::ast::Query) -> ControlFlow<SluiceError> {
        if let SetExpr::Select(select) = query.body.as_mut()
            && let Err(e) = rewrite_select(select)
        {
            return ControlFlow::Break(e);
        }
        ControlFlow::Continue(())
    }
}

/// The window function a GROUP BY expression calls, with its arguments.
fn group_window(expr: &Expr) -> Option<(String, Vec<Expr>)> {
    let Expr::Function(f) = expr else { return None };
    let [part] = f.name.0.as_slice() else { return None };
    let name = part.as_ident()?.value.to_lowercase();
    if !matches!(name.as_str(), "tumble" | "hop" | "session") {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    // The legacy form's first argument is the time column (the TVF's is a table).
    matches!(
        args.first(),
        Some(Expr::Identifier(_) | Expr::CompoundIdentifier(_))
    )
    .then_some((name, args))
}

fn rewrite_select(select: &mut Select) -> Result<()> {
    let GroupByExpr::Expressions(group_by, _) = &mut select.group_by else {
        return Ok(());
    };
    let Some(position) = group_by.iter().position(|e| group_window(e).is_some()) else {
        return Ok(());
    };
    let Some((function, args)) = group_window(&group_by[position]) else {
        return Ok(());
    };
    let [from] = select.from.as_mut_slice() else {
        return Ok(());
    };
    if !from.joins.is_empty() {
        return Ok(()); // a join: left for DataFusion, which reports the unknown function
    }
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = &mut from.relation
    else {
        return Ok(());
    };

    let keys: Vec<Expr> = group_by
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != position)
        .map(|(_, e)| select_item_of(e, &select.projection))
        .collect::<Result<_>>()?;
    let table_name = name.clone();
    let visible_name = match alias {
        Some(a) => a.name.clone(),
        None => table_name
            .0
            .last()
            .and_then(|p| p.as_ident().cloned())
            .unwrap_or_else(|| Ident::new("w")),
    };

    // FROM t [AS a]  →  FROM <fn>(t, ts, sizes... [, partition_key => k]) AS a
    // The window's arguments are planned against the table itself, before the
    // alias applies: `B.date_time` is written `date_time` there.
    let unqualify = |e: Expr| unqualified(e, &visible_name);
    let window_args: Vec<Expr> = args.into_iter().map(unqualify).collect();
    let bounds = WindowBounds {
        function: function.clone(),
        args: window_args.clone(),
        table: visible_name.clone(),
    };
    let mut tvf_args: Vec<FunctionArg> = vec![unnamed(object_expr(&table_name))];
    tvf_args.extend(window_args.into_iter().map(unnamed));
    if function == "session" {
        tvf_args.extend(keys.into_iter().map(|k| FunctionArg::Named {
            name: Ident::new(PARTITION_KEY_ARG),
            arg: FunctionArgExpr::Expr(unqualify(k)),
            operator: FunctionArgOperator::RightArrow,
        }));
    }
    *name = ObjectName::from(vec![Ident::new(function.to_uppercase())]);
    if let TableFactor::Table { args, alias, .. } = &mut from.relation {
        *args = Some(TableFunctionArgs {
            args: tvf_args,
            settings: None,
        });
        *alias = Some(TableAlias {
            explicit: true,
            name: visible_name,
            columns: vec![],
            at: None,
        });
    }

    group_by.splice(
        position..=position,
        [
            Expr::Identifier(Ident::new("window_start")),
            Expr::Identifier(Ident::new("window_end")),
        ],
    );
    match select.visit(&mut { bounds }) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// A GROUP BY key as the table sees it: a position (`GROUP BY 1`) or a
/// select alias names a select item, whose expression partitions a session
/// (the window is planned over the table, which has no such column).
/// DataFusion resolves the GROUP BY key itself the same way.
fn select_item_of(key: &Expr, projection: &[SelectItem]) -> Result<Expr> {
    let item_expr = |item: &SelectItem| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e.clone()),
        _ => None,
    };
    match key {
        Expr::Value(ValueWithSpan {
            value: Value::Number(n, _),
            span,
        }) => {
            let item = n
                .parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| projection.get(i));
            match item.and_then(item_expr) {
                Some(e) => Ok(e),
                None => Err(SluiceError::at(
                    DataFusionError::Plan(format!(
                        "GROUP BY {n} names no expression of the select list (it has {} items); name the key instead",
                        projection.len()
                    )),
                    *span,
                )),
            }
        }
        Expr::Identifier(name) => {
            let aliased = projection.iter().find_map(|item| match item {
                SelectItem::ExprWithAlias { expr, alias } if same_name(alias, name) => Some(expr.clone()),
                _ => None,
            });
            Ok(aliased.unwrap_or_else(|| key.clone()))
        }
        other => Ok(other.clone()),
    }
}

/// Whether two identifiers name the same thing (unquoted ones ignore case).
fn same_name(a: &Ident, b: &Ident) -> bool {
    match (a.quote_style, b.quote_style) {
        (None, None) => a.value.eq_ignore_ascii_case(&b.value),
        _ => a.value == b.value,
    }
}

/// `table.column` as `column` (the window's arguments are planned against
/// the table itself, before its alias applies).
fn unqualified(e: Expr, table: &Ident) -> Expr {
    match e {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 && parts[0].value == table.value => {
            Expr::Identifier(parts[1].clone())
        }
        other => other,
    }
}

fn unnamed(e: Expr) -> FunctionArg {
    FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
}

fn object_expr(name: &ObjectName) -> Expr {
    let parts: Vec<Ident> = name.0.iter().filter_map(|p| p.as_ident().cloned()).collect();
    match parts.as_slice() {
        [one] => Expr::Identifier(one.clone()),
        _ => Expr::CompoundIdentifier(parts),
    }
}

/// `TUMBLE_START(...)` → `window_start`, and the like, when the helper names
/// the GROUP BY window (same function, same arguments).
struct WindowBounds {
    /// The GROUP BY window: `tumble`, `hop` or `session`.
    function: String,
    /// Its arguments, unqualified.
    args: Vec<Expr>,
    /// The FROM table's visible name, which qualified arguments may use.
    table: Ident,
}

impl VisitorMut for WindowBounds {
    type Break = SluiceError;

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<SluiceError> {
        let written = expr.to_string();
        if let Expr::Function(f) = expr
            && let [part] = f.name.0.as_slice()
            && let Some(ident) = part.as_ident()
        {
            let name = ident.value.to_lowercase();
            let helper = ["tumble", "hop", "session"].iter().find_map(|family| {
                let column = match name.strip_prefix(family)?.strip_prefix('_')? {
                    "start" => "window_start",
                    "end" => "window_end",
                    "rowtime" => "window_time",
                    _ => return None,
                };
                Some((*family, column))
            });
            if let Some((family, column)) = helper {
                let args: Option<Vec<Expr>> = match &f.args {
                    FunctionArguments::List(list) => list
                        .args
                        .iter()
                        .map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                                Some(unqualified(e.clone(), &self.table))
                            }
                            _ => None,
                        })
                        .collect(),
                    _ => None,
                };
                let names_the_window = family == self.function
                    && args.is_some_and(|args| {
                        args.len() == self.args.len()
                            && args
                                .iter()
                                .zip(&self.args)
                                .all(|(a, b)| a.to_string() == b.to_string())
                    });
                if !names_the_window {
                    let window = format!("{}({})", self.function.to_uppercase(), join(&self.args));
                    let suffix = name.rsplit('_').next().unwrap_or_default().to_uppercase();
                    return ControlFlow::Break(SluiceError::at(
                        DataFusionError::Plan(format!(
                            "{written} does not name the GROUP BY window {window}: a window helper takes the window's own arguments, as in {}_{suffix}({})",
                            self.function.to_uppercase(),
                            join(&self.args)
                        )),
                        ident.span,
                    ));
                }
                *expr = Expr::Identifier(Ident::with_span(ident.span, column));
            }
        }
        ControlFlow::Continue(())
    }
}

fn join(args: &[Expr]) -> String {
    args.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use crate::sql::{Statement, parse_script};
    use sqlparser::dialect::GenericDialect;

    fn normalized(sql: &str) -> String {
        match parse_script(sql, &GenericDialect {}, 50)
            .expect(sql)
            .remove(0)
            .statement
        {
            Statement::DataFusion(s) => s.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tumble_group_window_becomes_a_tvf() {
        assert_eq!(
            normalized(
                "SELECT TUMBLE_START(ts, INTERVAL '1' MINUTE) AS s, k, count(*) FROM t GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE), k"
            ),
            "SELECT window_start AS s, k, count(*) FROM TUMBLE((SELECT * FROM t), ts, INTERVAL '1' MINUTE) AS t GROUP BY window_start, window_end, k"
        );
    }

    #[test]
    fn session_is_partitioned_by_the_other_keys() {
        assert_eq!(
            normalized(
                "SELECT B.bidder, SESSION_END(B.date_time, INTERVAL '10' SECOND) FROM bid B GROUP BY B.bidder, SESSION(B.date_time, INTERVAL '10' SECOND)"
            ),
            "SELECT B.bidder, window_end FROM SESSION((SELECT * FROM bid), date_time, INTERVAL '10' SECOND, partition_key => bidder) AS B GROUP BY B.bidder, window_start, window_end"
        );
    }

    #[test]
    fn window_tvfs_and_plain_groups_are_left_alone() {
        let tvf = "SELECT window_start FROM TUMBLE((SELECT * FROM t), ts, INTERVAL '1' MINUTE) GROUP BY window_start";
        assert_eq!(normalized(tvf), tvf);
        assert_eq!(
            normalized("SELECT k FROM t GROUP BY k"),
            "SELECT k FROM t GROUP BY k"
        );
    }
}

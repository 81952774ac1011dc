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

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArgOperator, FunctionArguments, GroupByExpr, Ident,
    ObjectName, Select, SetExpr, TableAlias, TableFactor, TableFunctionArgs, VisitMut, VisitorMut,
};

use datafusion::sql::parser::Statement as DFStatement;

use super::windows::PARTITION_KEY_ARG;

/// Rewrite every SELECT of `statement` that groups by a legacy window.
pub fn rewrite(statement: &mut DFStatement) {
    super::windows::visit_statement(statement, &mut GroupWindows);
}

struct GroupWindows;

impl VisitorMut for GroupWindows {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut sqlparser::ast::Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            rewrite_select(select);
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

fn rewrite_select(select: &mut Select) {
    let GroupByExpr::Expressions(group_by, _) = &mut select.group_by else {
        return;
    };
    let Some(position) = group_by.iter().position(|e| group_window(e).is_some()) else {
        return;
    };
    let Some((function, args)) = group_window(&group_by[position]) else {
        return;
    };
    let [from] = select.from.as_mut_slice() else {
        return;
    };
    if !from.joins.is_empty() {
        return; // a join: left for DataFusion, which reports the unknown function
    }
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = &mut from.relation
    else {
        return;
    };

    let keys: Vec<Expr> = group_by
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != position)
        .map(|(_, e)| e.clone())
        .collect();
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
    let unqualify = |e: Expr| match e {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 && parts[0].value == visible_name.value => {
            Expr::Identifier(parts[1].clone())
        }
        other => other,
    };
    let mut tvf_args: Vec<FunctionArg> = vec![unnamed(object_expr(&table_name))];
    tvf_args.extend(args.into_iter().map(|a| unnamed(unqualify(a))));
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
    let _ = select.visit(&mut WindowBounds);
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

/// `TUMBLE_START(...)` → `window_start`, and the like.
struct WindowBounds;

impl VisitorMut for WindowBounds {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr
            && let [part] = f.name.0.as_slice()
            && let Some(ident) = part.as_ident()
        {
            let name = ident.value.to_lowercase();
            let column = ["tumble_", "hop_", "session_"].iter().find_map(|prefix| {
                match name.strip_prefix(prefix)? {
                    "start" => Some("window_start"),
                    "end" => Some("window_end"),
                    "rowtime" => Some("window_time"),
                    _ => None,
                }
            });
            if let Some(column) = column {
                *expr = Expr::Identifier(Ident::with_span(ident.span, column));
            }
        }
        ControlFlow::Continue(())
    }
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

//! The window table functions' syntax, normalized to one form.
//!
//! Three spellings reach the planner as the same AST:
//!
//! - Flink: `FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))`
//!   (also `SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), gap)` and named
//!   arguments such as `SIZE => ...`), which sqlparser cannot read, is
//!   rewritten token by token into the RisingWave form;
//! - RisingWave: `FROM TUMBLE(t, ts, INTERVAL '10' SECOND)`, a table function
//!   call that sqlparser reads as is;
//! - then, on the AST, the table argument becomes a subquery
//!   `(SELECT * FROM t)`, so DataFusion's table resolution sees `t` and the
//!   window relation planner (`plan::windows`) can plan it.
//!
//! Tokens keep their original spans, so errors still point into the user's text.

use std::ops::ControlFlow;

use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, ObjectName, Query, TableFactor, VisitMut, VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Span, Token, TokenWithSpan, Word};

/// The window table functions, lowercase.
pub const WINDOW_FUNCTIONS: &[&str] = &["tumble", "hop", "cumulate", "session"];

/// The named argument that carries SESSION's `PARTITION BY` keys once the
/// Flink form is rewritten (one argument per key).
pub const PARTITION_KEY_ARG: &str = "partition_key";

/// Whether `name` is one of the window table functions.
pub fn is_window_function(name: &str) -> bool {
    WINDOW_FUNCTIONS.iter().any(|w| w.eq_ignore_ascii_case(name))
}

/// Rewrite every Flink-form window TVF in `tokens` into the RisingWave form:
/// `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), s))` → `TUMBLE(t, ts, s)`.
pub fn rewrite_flink_tvfs(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, ParserError> {
    let mut tokens = tokens;
    // Rewrite one at a time from the left; each rewrite removes its `TABLE(`
    // so the loop ends.
    while let Some(start) = find_flink_tvf(&tokens) {
        tokens = rewrite_one(tokens, start)?;
    }
    Ok(tokens)
}

/// Index of the `TABLE` of the first `TABLE ( <window fn> (`.
fn find_flink_tvf(tokens: &[TokenWithSpan]) -> Option<usize> {
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    significant.windows(4).find_map(|w| {
        let [table, open, function, open2] = [w[0], w[1], w[2], w[3]].map(|i| &tokens[i].token);
        let is = matches!(table, Token::Word(Word { keyword: Keyword::TABLE, .. }))
            && *open == Token::LParen
            && matches!(function, Token::Word(word) if word.quote_style.is_none() && is_window_function(&word.value))
            && *open2 == Token::LParen;
        is.then_some(w[0])
    })
}

/// Index of the parenthesis closing the one at `open`.
fn matching_paren(tokens: &[TokenWithSpan], open: usize) -> Result<usize, ParserError> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    Err(error(
        "unclosed parenthesis in a window table function",
        tokens[open].span,
    ))
}

fn next_significant(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
}

fn rewrite_one(tokens: Vec<TokenWithSpan>, table_kw: usize) -> Result<Vec<TokenWithSpan>, ParserError> {
    let outer_open = next_significant(&tokens, table_kw + 1).unwrap_or(table_kw);
    let outer_close = matching_paren(&tokens, outer_open)?;
    let function = next_significant(&tokens, outer_open + 1).unwrap_or(outer_open);
    let inner_open = next_significant(&tokens, function + 1).unwrap_or(function);
    let inner_close = matching_paren(&tokens, inner_open)?;
    if next_significant(&tokens, inner_close + 1) != Some(outer_close) {
        return Err(error(
            "TABLE(...) must hold exactly one window function call",
            tokens[inner_close].span,
        ));
    }

    // Split the arguments at top-level commas.
    let mut args: Vec<Vec<TokenWithSpan>> = vec![Vec::new()];
    let mut depth = 0usize;
    for t in &tokens[inner_open + 1..inner_close] {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                args.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = args.last_mut() {
            last.push(t.clone());
        }
    }

    let mut partition_keys: Vec<Vec<TokenWithSpan>> = Vec::new();
    let mut new_args = Vec::with_capacity(args.len());
    for arg in args {
        let (name, value) = split_named(arg);
        let value = rewrite_arg(value, &mut partition_keys)?;
        new_args.push([name, value].concat());
    }
    for key in partition_keys {
        let span = key.first().map_or(Span::empty(), |t| t.span);
        let mut arg = vec![
            TokenWithSpan::new(Token::make_word(PARTITION_KEY_ARG, None), span),
            TokenWithSpan::new(Token::RArrow, span),
        ];
        arg.extend(key);
        new_args.push(arg);
    }

    let mut out = Vec::with_capacity(tokens.len());
    out.extend_from_slice(&tokens[..table_kw]);
    out.push(tokens[function].clone());
    out.push(tokens[inner_open].clone());
    for (i, arg) in new_args.into_iter().enumerate() {
        if i > 0 {
            out.push(TokenWithSpan::new(Token::Comma, Span::empty()));
        }
        out.extend(arg);
    }
    out.push(tokens[inner_close].clone());
    out.extend_from_slice(&tokens[outer_close + 1..]);
    Ok(out)
}

/// `name => value` into its two halves (the first empty when positional).
fn split_named(arg: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, Vec<TokenWithSpan>) {
    let arrow = arg.iter().position(|t| t.token == Token::RArrow);
    match arrow {
        Some(i) => {
            let mut arg = arg;
            let value = arg.split_off(i + 1);
            (arg, value)
        }
        None => (Vec::new(), arg),
    }
}

/// `TABLE t [PARTITION BY k | (k1, k2)]` → `t` (keys collected);
/// `DESCRIPTOR(ts)` → `ts`; anything else unchanged.
fn rewrite_arg(
    value: Vec<TokenWithSpan>,
    partition_keys: &mut Vec<Vec<TokenWithSpan>>,
) -> Result<Vec<TokenWithSpan>, ParserError> {
    let significant: Vec<TokenWithSpan> = value
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .cloned()
        .collect();
    match significant.first().map(|t| &t.token) {
        Some(Token::Word(Word {
            keyword: Keyword::TABLE,
            ..
        })) => {
            let partition = significant.iter().position(|t| {
                matches!(
                    t.token,
                    Token::Word(Word {
                        keyword: Keyword::PARTITION,
                        ..
                    })
                )
            });
            let (table, keys) = match partition {
                Some(p) => {
                    if !matches!(
                        significant.get(p + 1).map(|t| &t.token),
                        Some(Token::Word(Word {
                            keyword: Keyword::BY,
                            ..
                        }))
                    ) {
                        return Err(error("expected PARTITION BY", significant[p].span));
                    }
                    (&significant[1..p], &significant[p + 2..])
                }
                None => (&significant[1..], &significant[..0]),
            };
            if table.is_empty() {
                return Err(error("TABLE needs a table name: TABLE bids", significant[0].span));
            }
            let keys = match (keys.first().map(|t| &t.token), keys.last().map(|t| &t.token)) {
                (Some(Token::LParen), Some(Token::RParen)) => &keys[1..keys.len() - 1],
                _ => keys,
            };
            for key in keys.split(|t| t.token == Token::Comma) {
                if !key.is_empty() {
                    partition_keys.push(key.to_vec());
                }
            }
            Ok(table.to_vec())
        }
        Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("descriptor") => {
            match (
                significant.get(1).map(|t| &t.token),
                significant.last().map(|t| &t.token),
            ) {
                (Some(Token::LParen), Some(Token::RParen)) if significant.len() > 3 => {
                    Ok(significant[2..significant.len() - 1].to_vec())
                }
                _ => Err(error(
                    "DESCRIPTOR needs one column: DESCRIPTOR(ts)",
                    significant[0].span,
                )),
            }
        }
        _ => Ok(value),
    }
}

fn error(message: &str, span: Span) -> ParserError {
    ParserError::ParserError(format!("{message}{}", span.start))
}

/// Turn the table argument of every window TVF into a subquery
/// `(SELECT * FROM t)`, so DataFusion resolves `t` like any table.
pub fn wrap_table_arguments(statement: &mut DFStatement) {
    let _ = visit_statement(statement, &mut TableArguments);
}

/// Run a sqlparser visitor over the SQL inside DataFusion's statement wrappers.
pub(crate) fn visit_statement<V: VisitorMut>(
    statement: &mut DFStatement,
    visitor: &mut V,
) -> ControlFlow<V::Break> {
    match statement {
        DFStatement::Statement(s) => s.visit(visitor),
        DFStatement::Explain(explain) => visit_statement(&mut explain.statement, visitor),
        DFStatement::CopyTo(copy) => match &mut copy.source {
            CopyToSource::Query(q) => q.visit(visitor),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => ControlFlow::Continue(()),
    }
}

struct TableArguments;

impl VisitorMut for TableArguments {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            args: Some(args),
            ..
        } = factor
            && name.0.len() == 1
            && name.0[0]
                .as_ident()
                .is_some_and(|i| i.quote_style.is_none() && is_window_function(&i.value))
        {
            // The table is the first positional argument, or `DATA => t`.
            let table_arg = args.args.iter_mut().find_map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                FunctionArg::Named {
                    name,
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } if name.value.eq_ignore_ascii_case("data") => Some(e),
                _ => None,
            });
            if let Some(expr) = table_arg
                && let Some(table) = table_name(expr)
            {
                *expr = Expr::Subquery(Box::new(select_all_from(table)));
            }
        }
        ControlFlow::Continue(())
    }
}

/// The table an argument names: `t` or `schema.t`.
fn table_name(expr: &Expr) -> Option<ObjectName> {
    match expr {
        Expr::Identifier(ident) => Some(ObjectName::from(vec![ident.clone()])),
        Expr::CompoundIdentifier(parts) => Some(ObjectName::from(parts.clone())),
        _ => None,
    }
}

/// `SELECT * FROM <table>`, built by sqlparser from a template whose table
/// name is then replaced (keeping the name's own spans).
fn select_all_from(table: ObjectName) -> Query {
    let mut query = Parser::new(&GenericDialect {})
        .try_with_sql("SELECT * FROM __sluice_window_input")
        .and_then(|mut p| p.parse_query())
        .map(|q| *q)
        .expect("a fixed query always parses");
    let mut replace = ReplaceTable(Some(table));
    let _ = query.visit(&mut replace);
    query
}

struct ReplaceTable(Option<ObjectName>);

impl VisitorMut for ReplaceTable {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        if let Some(table) = self.0.take() {
            *relation = table;
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Statement, parse_script};

    fn normalized(sql: &str) -> String {
        let mut stmts = parse_script(sql, &GenericDialect {}, 50).expect(sql);
        match stmts.remove(0).statement {
            Statement::DataFusion(s) => s.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flink_and_risingwave_forms_meet() {
        let flink = normalized(
            "SELECT * FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))",
        );
        let rw = normalized("SELECT * FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)");
        assert_eq!(flink, rw);
        assert_eq!(
            rw,
            "SELECT * FROM TUMBLE((SELECT * FROM bids), date_time, INTERVAL '10' SECOND)"
        );
    }

    #[test]
    fn named_arguments_and_partition_keys() {
        let s = normalized(
            "SELECT * FROM TABLE(SESSION(TABLE bids PARTITION BY (bidder, auction), DESCRIPTOR(date_time), INTERVAL '5' MINUTES))",
        );
        assert_eq!(
            s,
            "SELECT * FROM SESSION((SELECT * FROM bids), date_time, INTERVAL '5' MINUTES, partition_key => bidder, partition_key => auction)"
        );
        let s = normalized(
            "SELECT * FROM TABLE(HOP(DATA => TABLE bids, TIMECOL => DESCRIPTOR(ts), SLIDE => INTERVAL '1' MINUTE, SIZE => INTERVAL '5' MINUTE))",
        );
        assert_eq!(
            s,
            "SELECT * FROM HOP(DATA => (SELECT * FROM bids), TIMECOL => ts, SLIDE => INTERVAL '1' MINUTE, SIZE => INTERVAL '5' MINUTE)"
        );
    }

    #[test]
    fn other_table_functions_are_untouched() {
        assert_eq!(
            normalized("SELECT * FROM generate_series(1, 3)"),
            "SELECT * FROM generate_series(1, 3)"
        );
    }

    #[test]
    fn malformed_descriptor_is_an_error_with_a_place() {
        let err = parse_script(
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(), INTERVAL '1' SECOND))",
            &GenericDialect {},
            50,
        )
        .expect_err("empty descriptor");
        assert!(
            err.user_message().contains("DESCRIPTOR needs one column"),
            "{}",
            err.user_message()
        );
        assert_eq!(err.location.map(|l| l.column), Some(37));
    }
}

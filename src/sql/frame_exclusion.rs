//! A window frame's exclusion (`EXCLUDE CURRENT ROW`, `EXCLUDE NO OTHERS`,
//! `EXCLUDE GROUP`, `EXCLUDE TIES`), as PostgreSQL and RisingWave write it.
//!
//! sqlparser 0.62 does not parse the clause ("TBD: EXCLUDE" in its AST) and
//! DataFusion's frames have no exclusion, so it is rewritten on the tokens
//! before parsing where an exclusion-free frame means exactly the same, and
//! refused, with the place and a fix, where none does:
//! * `EXCLUDE NO OTHERS` is the default: dropped.
//! * `ROWS BETWEEN s PRECEDING AND CURRENT ROW EXCLUDE CURRENT ROW` (or
//!   `ROWS s PRECEDING EXCLUDE CURRENT ROW`): in a ROWS frame the current row
//!   is one row, the frame's last, so leaving it out is the frame that ends
//!   one row before it, `ROWS BETWEEN s PRECEDING AND 1 PRECEDING` (empty for
//!   a partition's first row, as the excluded frame is).
//! * Any other frame with `EXCLUDE CURRENT ROW`, and `EXCLUDE GROUP` or
//!   `EXCLUDE TIES`: a RANGE or GROUPS frame keeps the current row's peers,
//!   and a frame ending after the current row would have a hole; no
//!   DataFusion frame says either.
//!
//! RisingWave's session frame (`ORDER BY ts SESSION WITH GAP '10 minutes'`,
//! each row's frame the session it falls in) is its own syntax, which no
//! DataFusion frame says either: it is refused here with the window that does.

use datafusion::error::DataFusionError;
use sqlparser::ast::{Expr, Value, WindowFrameBound, WindowFrameUnits};
use sqlparser::dialect::Dialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Span, Token, TokenWithSpan, Tokenizer, Word};

use crate::error::{Result, SluiceError};

/// Rewrite or refuse every frame exclusion in `tokens` (see the module doc).
pub fn rewrite(mut tokens: Vec<TokenWithSpan>, dialect: &dyn Dialect) -> Result<Vec<TokenWithSpan>> {
    refuse_session_frames(&tokens)?;
    let mut from = 0;
    while let Some(found) = next_exclusion(&tokens, from) {
        let replacement = match found.kind {
            Exclusion::NoOthers => Vec::new(),
            Exclusion::CurrentRow => frame_before_current_row(&tokens, &found, dialect)?,
            Exclusion::Group | Exclusion::Ties => {
                return Err(refusal(
                    &tokens,
                    &found,
                    format!(
                        "{} in a window frame is not supported (DataFusion's frames have no exclusion): compute the excluded rows' share apart, or drop it",
                        found.kind.text()
                    ),
                ));
            }
        };
        let (start, end) = match found.kind {
            Exclusion::NoOthers => (found.exclude, found.end),
            _ => (found.units, found.end),
        };
        from = start + replacement.len();
        tokens.splice(start..end, replacement);
    }
    Ok(tokens)
}

/// Refuse RisingWave's `SESSION WITH GAP` frame (see the module doc).
fn refuse_session_frames(tokens: &[TokenWithSpan]) -> Result<()> {
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let word = |n: usize, text: &str| matches!(significant.get(n).map(|&i| &tokens[i].token), Some(Token::Word(w)) if is_word(w, text));
    let Some(n) =
        (0..significant.len()).find(|&n| word(n, "session") && word(n + 1, "with") && word(n + 2, "gap"))
    else {
        return Ok(());
    };
    let span = Span::new(
        tokens[significant[n]].span.start,
        tokens[significant[n + 2]].span.end,
    );
    Err(SluiceError::at(
        DataFusionError::NotImplemented(
            "RisingWave's session frame (ORDER BY ts SESSION WITH GAP ...) is not supported: no DataFusion frame says it. Group the rows into sessions with a SESSION window instead, as in FROM TABLE(SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '10' MINUTE)), whose window_start and window_end bound each session".to_string(),
        ),
        span,
    ))
}

/// Which exclusion a frame names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Exclusion {
    CurrentRow,
    NoOthers,
    Group,
    Ties,
}

impl Exclusion {
    fn text(self) -> &'static str {
        match self {
            Exclusion::CurrentRow => "EXCLUDE CURRENT ROW",
            Exclusion::NoOthers => "EXCLUDE NO OTHERS",
            Exclusion::Group => "EXCLUDE GROUP",
            Exclusion::Ties => "EXCLUDE TIES",
        }
    }
}

/// An exclusion found: the frame's units word (`ROWS`), the `EXCLUDE`, and
/// the index after the clause.
struct Found {
    kind: Exclusion,
    units: usize,
    exclude: usize,
    end: usize,
}

/// The next `EXCLUDE ...` at or after token `from` that ends a window frame:
/// a frame's units word (`ROWS`, `RANGE`, `GROUPS`) comes before it within
/// the same parentheses. Anything else named `exclude` (Snowflake's
/// `* EXCLUDE (col)`, a column) is left to the parser.
fn next_exclusion(tokens: &[TokenWithSpan], from: usize) -> Option<Found> {
    let word = |i: usize, text: &str| matches!(tokens.get(i).map(|t| &t.token), Some(Token::Word(w)) if is_word(w, text));
    (from..tokens.len()).find_map(|exclude| {
        if !word(exclude, "exclude") {
            return None;
        }
        let first = skip_whitespace(tokens, exclude + 1);
        let (kind, last) = if word(first, "current") {
            let row = skip_whitespace(tokens, first + 1);
            (Exclusion::CurrentRow, word(row, "row").then_some(row)?)
        } else if word(first, "no") {
            let others = skip_whitespace(tokens, first + 1);
            (Exclusion::NoOthers, word(others, "others").then_some(others)?)
        } else if word(first, "group") {
            (Exclusion::Group, first)
        } else if word(first, "ties") {
            (Exclusion::Ties, first)
        } else {
            return None;
        };
        let units = units_before(tokens, exclude)?;
        Some(Found {
            kind,
            units,
            exclude,
            end: last + 1,
        })
    })
}

/// The frame units word before token `at` in the same parentheses.
fn units_before(tokens: &[TokenWithSpan], at: usize) -> Option<usize> {
    let mut depth = 0i32;
    for i in (0..at).rev() {
        match &tokens[i].token {
            Token::RParen => depth += 1,
            Token::LParen if depth == 0 => return None,
            Token::LParen => depth -= 1,
            Token::Word(w) if depth == 0 && ["rows", "range", "groups"].iter().any(|u| is_word(w, u)) => {
                return Some(i);
            }
            _ => {}
        }
    }
    None
}

/// The tokens of the frame `found` names, without its current row: a ROWS
/// frame ending at the current row ends one row before it instead.
fn frame_before_current_row(
    tokens: &[TokenWithSpan],
    found: &Found,
    dialect: &dyn Dialect,
) -> Result<Vec<TokenWithSpan>> {
    let frame_tokens = tokens[found.units..found.exclude].to_vec();
    let mut parser = Parser::new(dialect).with_tokens_with_locations(frame_tokens);
    let frame = parser.parse_window_frame()?;
    if parser.peek_token_ref().token != Token::EOF {
        return Err(refusal(
            tokens,
            found,
            "EXCLUDE CURRENT ROW does not follow a window frame here: write it after the frame, as in ROWS 2 PRECEDING EXCLUDE CURRENT ROW".to_string(),
        ));
    }
    let refuse = |why: &str| refusal(tokens, found, format!("EXCLUDE CURRENT ROW {why}"));
    if frame.units != WindowFrameUnits::Rows {
        return Err(refuse(&format!(
            "in a {} frame would keep the current row's peers, which no DataFusion frame says: write a ROWS frame ending at CURRENT ROW (it is then the frame ending 1 PRECEDING)",
            frame.units
        )));
    }
    if !matches!(frame.end_bound, None | Some(WindowFrameBound::CurrentRow)) {
        return Err(refuse(
            "in a frame that goes past the current row would leave a hole in it, which no DataFusion frame says: end the frame at CURRENT ROW, or combine two frames",
        ));
    }
    let start = match &frame.start_bound {
        WindowFrameBound::Preceding(None) => "UNBOUNDED PRECEDING".to_string(),
        WindowFrameBound::Preceding(Some(n)) if !is_zero(n) => format!("{n} PRECEDING"),
        _ => {
            return Err(refuse(
                "from the current row leaves an empty frame: start the frame before it (n PRECEDING)",
            ));
        }
    };
    let text = format!("ROWS BETWEEN {start} AND 1 PRECEDING");
    let span = Span::new(tokens[found.units].span.start, tokens[found.end - 1].span.end);
    let replacement = Tokenizer::new(dialect, &text).tokenize().map_err(|e| {
        SluiceError::at(
            DataFusionError::Internal(format!("the rewritten frame {text} does not tokenize: {e}")),
            span,
        )
    })?;
    Ok(replacement
        .into_iter()
        .map(|token| TokenWithSpan::new(token, span))
        .collect())
}

fn is_zero(expr: &Expr) -> bool {
    matches!(expr, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.parse::<f64>() == Ok(0.0)))
}

/// The error refusing `found`, placed at its `EXCLUDE`.
fn refusal(tokens: &[TokenWithSpan], found: &Found, message: String) -> SluiceError {
    SluiceError::at(
        DataFusionError::NotImplemented(message),
        Span::new(tokens[found.exclude].span.start, tokens[found.end - 1].span.end),
    )
}

fn skip_whitespace(tokens: &[TokenWithSpan], mut at: usize) -> usize {
    while matches!(tokens.get(at).map(|t| &t.token), Some(Token::Whitespace(_))) {
        at += 1;
    }
    at
}

fn is_word(w: &Word, text: &str) -> bool {
    w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;

    fn rewritten(sql: &str) -> Result<String> {
        let tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .expect("tokens");
        let tokens = rewrite(tokens, &GenericDialect {})?;
        Ok(tokens.iter().map(|t| t.token.to_string()).collect())
    }

    #[test]
    fn a_rows_frame_ending_at_the_current_row_ends_one_row_before_it() {
        assert_eq!(
            rewritten("SELECT sum(x) OVER (ORDER BY t ROWS 2 PRECEDING EXCLUDE CURRENT ROW) FROM s")
                .expect("rewrites"),
            "SELECT sum(x) OVER (ORDER BY t ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING) FROM s"
        );
        assert_eq!(
            rewritten("SELECT sum(x) OVER (ORDER BY t rows between unbounded preceding and current row exclude current row) FROM s")
                .expect("rewrites"),
            "SELECT sum(x) OVER (ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) FROM s"
        );
    }

    #[test]
    fn exclude_no_others_is_the_default_and_other_excludes_are_left_alone() {
        assert_eq!(
            rewritten("SELECT sum(x) OVER (ORDER BY t ROWS 2 PRECEDING EXCLUDE NO OTHERS) FROM s")
                .expect("rewrites"),
            "SELECT sum(x) OVER (ORDER BY t ROWS 2 PRECEDING ) FROM s"
        );
        let snowflake = "SELECT * EXCLUDE (current) FROM s";
        assert_eq!(rewritten(snowflake).expect("left alone"), snowflake);
    }

    #[test]
    fn a_session_frame_is_refused_with_the_window_that_says_it() {
        let sql =
            "SELECT first_value(tm) OVER (PARTITION BY bar ORDER BY tm SESSION WITH GAP '10 minutes') FROM t";
        let err = rewritten(sql).expect_err("refused");
        assert!(err.to_string().contains("TABLE(SESSION("), "{err}");
        assert_eq!(
            err.location.expect("a place").column as usize,
            sql.find("SESSION").expect("there") + 1
        );
        let column = "SELECT session, gap FROM t";
        assert_eq!(rewritten(column).expect("left alone"), column);
    }

    #[test]
    fn frames_without_an_exact_rewrite_are_refused_at_the_clause() {
        for (sql, says) in [
            (
                "SELECT sum(x) OVER (ORDER BY t RANGE 2 PRECEDING EXCLUDE CURRENT ROW) FROM s",
                "peers",
            ),
            (
                "SELECT sum(x) OVER (ORDER BY t ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE CURRENT ROW) FROM s",
                "hole",
            ),
            (
                "SELECT sum(x) OVER (ORDER BY t ROWS CURRENT ROW EXCLUDE CURRENT ROW) FROM s",
                "empty",
            ),
            (
                "SELECT sum(x) OVER (ORDER BY t ROWS 2 PRECEDING EXCLUDE TIES) FROM s",
                "EXCLUDE TIES",
            ),
        ] {
            let err = rewritten(sql).expect_err(sql);
            assert!(err.to_string().contains(says), "{sql}: {err}");
            let at = err.location.expect("a place");
            assert_eq!(
                at.column as usize,
                sql.find("EXCLUDE").expect("there") + 1,
                "{sql}"
            );
        }
    }
}

//! Splitting a script into statements at top-level `;`, keeping positions.

use datafusion::error::DataFusionError;
use sqlparser::dialect::Dialect;
use sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::error::{Result, SluiceError};

/// The tokens of one statement, positioned in the whole script.
#[derive(Debug, Clone)]
pub struct StatementTokens {
    /// Tokens without the closing `;` (whitespace and comments included, as
    /// sqlparser's parser expects them).
    pub tokens: Vec<TokenWithSpan>,
    /// From the first to the last significant token.
    pub span: Span,
    /// The statement's source text.
    pub text: String,
}

/// Tokenize `sql` and cut it into statements. Empty statements (`;;`) and
/// comment-only tails are dropped.
pub fn split_statements(sql: &str, dialect: &dyn Dialect) -> Result<Vec<StatementTokens>> {
    let tokens = Tokenizer::new(dialect, sql)
        .tokenize_with_location()
        .map_err(|e| {
            // As DataFusion reports it: the message ends in " at Line: l, Column: c".
            let location = e.location;
            let mut err = SluiceError::from(DataFusionError::SQL(
                Box::new(sqlparser::parser::ParserError::TokenizerError(e.to_string())),
                None,
            ));
            err.location = Some(location);
            err
        })?;
    let line_starts = line_starts(sql);
    let mut statements = Vec::new();
    let mut current = Vec::new();
    let mut depth = 0i32;
    for token in tokens {
        match token.token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth -= 1,
            _ => {}
        }
        if token.token == Token::SemiColon && depth <= 0 {
            push_statement(&mut statements, std::mem::take(&mut current), sql, &line_starts);
            depth = 0;
        } else {
            current.push(token);
        }
    }
    push_statement(&mut statements, current, sql, &line_starts);
    Ok(statements)
}

/// Whether `sql` holds only complete statements: the last significant token is
/// a top-level `;` (or there is nothing but whitespace). An unterminated
/// string or comment is incomplete. Used by the REPL to decide whether to
/// keep reading lines.
pub fn is_complete(sql: &str, dialect: &dyn Dialect) -> bool {
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize() else {
        return false;
    };
    let mut depth = 0i32;
    let mut last_significant = None;
    for token in &tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth -= 1,
            _ => {}
        }
        if is_significant(token) {
            last_significant = Some((token, depth));
        }
    }
    match last_significant {
        None => true,
        Some((Token::SemiColon, d)) => d <= 0,
        Some(_) => false,
    }
}

fn is_significant(token: &Token) -> bool {
    !matches!(token, Token::Whitespace(_) | Token::EOF)
}

fn push_statement(
    out: &mut Vec<StatementTokens>,
    mut tokens: Vec<TokenWithSpan>,
    sql: &str,
    line_starts: &[usize],
) {
    let significant: Vec<&TokenWithSpan> = tokens.iter().filter(|t| is_significant(&t.token)).collect();
    let (Some(first), Some(last)) = (significant.first(), significant.last()) else {
        return;
    };
    let span = Span::new(first.span.start, last.span.end);
    let text = match (
        offset_of(sql, line_starts, span.start),
        offset_of(sql, line_starts, span.end),
    ) {
        (Some(start), Some(end)) if start <= end => sql[start..end].to_string(),
        _ => String::new(),
    };
    // Drop trailing whitespace/comments so the parser's "end of statement"
    // errors point at real tokens.
    while tokens.last().is_some_and(|t| {
        matches!(
            t.token,
            Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab)
        )
    }) {
        tokens.pop();
    }
    out.push(StatementTokens { tokens, span, text });
}

/// Byte offsets at which each line starts.
fn line_starts(sql: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// The byte offset of a 1-based line/column (columns count characters).
fn offset_of(sql: &str, line_starts: &[usize], loc: Location) -> Option<usize> {
    let line_start = *line_starts.get(usize::try_from(loc.line).ok()?.checked_sub(1)?)?;
    let column = usize::try_from(loc.column).ok()?.checked_sub(1)?;
    let rest = &sql[line_start..];
    match rest.char_indices().nth(column) {
        Some((i, _)) => Some(line_start + i),
        None => Some(sql.len().min(line_start + rest.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;

    fn texts(sql: &str) -> Vec<String> {
        split_statements(sql, &GenericDialect {})
            .expect("splits")
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        assert_eq!(
            texts("select ';' as a; -- note\nselect 2;;\n select (3) ;"),
            vec!["select ';' as a", "select 2", "select (3)"]
        );
    }

    #[test]
    fn comment_only_tail_is_not_a_statement() {
        assert_eq!(texts("select 1; -- bye\n"), vec!["select 1"]);
        assert!(texts("  -- nothing\n").is_empty());
    }

    #[test]
    fn multibyte_text_is_cut_at_character_boundaries() {
        assert_eq!(
            texts("select 'héllo' as é; select 2"),
            vec!["select 'héllo' as é", "select 2"]
        );
    }

    #[test]
    fn completeness_for_the_repl() {
        let d = GenericDialect {};
        assert!(is_complete("select 1;", &d));
        assert!(is_complete("select 1; -- done", &d));
        assert!(!is_complete("select 1", &d));
        assert!(!is_complete("select ';", &d));
        assert!(!is_complete("select 1; select (2;", &d));
        assert!(is_complete("", &d));
    }

    #[test]
    fn unterminated_string_reports_its_place() {
        let err = split_statements("select 1;\nselect 'oops", &GenericDialect {}).expect_err("bad");
        assert_eq!(err.location.map(|l| l.line), Some(2));
    }
}

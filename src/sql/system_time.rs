//! `JOIN t FOR SYSTEM_TIME AS OF expr`: Flink's temporal join, as Nexmark
//! q13 and stream enrichment write it.
//!
//! DataFusion's dialects do not parse the clause, so it is taken off the
//! tokens before parsing and the table it versions is carried beside the
//! statement. Sluice's tables do not change while a query reads them (files,
//! bounded generators), so every version is the same and the join is a plain
//! join, a lookup of each streamed row in continuous mode. A table whose rows
//! change (a stream, a changelog) has versions that differ: the engine
//! refuses the clause there ([`VersionedTable`]).

use sqlparser::dialect::Dialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Span, Token, TokenWithSpan, Word};

/// A table read `FOR SYSTEM_TIME AS OF` some time.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedTable {
    /// The table's name as written (`side_input`, `db.side_input`).
    pub table: String,
    /// The time it is read as of, as written (`B.p_time`, `PROCTIME()`).
    pub as_of: String,
    /// Where the clause stands.
    pub span: Span,
}

/// Remove every `FOR SYSTEM_TIME AS OF <expr>` from `tokens`, returning the
/// tables they followed. The expression's extent is found by sqlparser
/// itself (it parses one expression, which stops before an alias or `ON`).
pub fn take_system_time(tokens: &mut Vec<TokenWithSpan>, dialect: &dyn Dialect) -> Vec<VersionedTable> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some((start, after_of)) = find_clause(tokens, from) {
        let rest: Vec<TokenWithSpan> = tokens[after_of..].to_vec();
        let mut parser = Parser::new(dialect).with_tokens_with_locations(rest);
        let Ok(expr) = parser.parse_expr() else {
            // Leave the clause: the parser then names the place it fails.
            from = after_of;
            continue;
        };
        let end = after_of + parser.index();
        let span = Span::new(tokens[start].span.start, tokens[end - 1].span.end);
        found.push(VersionedTable {
            table: table_before(tokens, start),
            as_of: expr.to_string(),
            span,
        });
        tokens.drain(start..end);
        from = start;
    }
    found
}

/// The next `FOR SYSTEM_TIME AS OF` at or after token `from`: the index of
/// `FOR` and that of the token after `OF`.
fn find_clause(tokens: &[TokenWithSpan], from: usize) -> Option<(usize, usize)> {
    const CLAUSE: [&str; 4] = ["for", "system_time", "as", "of"];
    (from..tokens.len()).find_map(|start| {
        let mut at = start;
        for (n, word) in CLAUSE.iter().enumerate() {
            if n > 0 {
                at = skip_whitespace(tokens, at);
            }
            match tokens.get(at).map(|t| &t.token) {
                Some(Token::Word(w)) if is_word(w, word) => at += 1,
                _ => return None,
            }
        }
        Some((start, at))
    })
}

fn skip_whitespace(tokens: &[TokenWithSpan], mut at: usize) -> usize {
    while matches!(tokens.get(at).map(|t| &t.token), Some(Token::Whitespace(_))) {
        at += 1;
    }
    at
}

/// The (possibly qualified) name written just before token `at`.
fn table_before(tokens: &[TokenWithSpan], at: usize) -> String {
    let mut i = at;
    while i > 0 && matches!(tokens[i - 1].token, Token::Whitespace(_)) {
        i -= 1;
    }
    let mut parts = Vec::new();
    while i > 0 {
        match &tokens[i - 1].token {
            Token::Word(w) => parts.push(w.value.clone()),
            _ => break,
        }
        i -= 1;
        if i > 0 && tokens[i - 1].token == Token::Period {
            i -= 1;
        } else {
            break;
        }
    }
    parts.reverse();
    parts.join(".")
}

fn is_word(w: &Word, text: &str) -> bool {
    w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn take(sql: &str) -> (Vec<(String, String)>, String) {
        let mut tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .expect("tokens");
        let found = take_system_time(&mut tokens, &GenericDialect {});
        let text = tokens.iter().map(|t| t.token.to_string()).collect::<String>();
        (
            found.into_iter().map(|v| (v.table, v.as_of)).collect(),
            text.split_whitespace().collect::<Vec<_>>().join(" "),
        )
    }

    #[test]
    fn the_clause_is_taken_off_with_its_expression() {
        assert_eq!(
            take("SELECT * FROM b JOIN side_input FOR SYSTEM_TIME AS OF b.p_time AS s ON b.k = s.k"),
            (
                vec![("side_input".to_string(), "b.p_time".to_string())],
                "SELECT * FROM b JOIN side_input AS s ON b.k = s.k".to_string()
            )
        );
        assert_eq!(
            take("SELECT * FROM b JOIN db.t for system_time as of PROCTIME() s ON true"),
            (
                vec![("db.t".to_string(), "PROCTIME()".to_string())],
                "SELECT * FROM b JOIN db.t s ON true".to_string()
            )
        );
    }

    #[test]
    fn other_uses_of_the_words_stay() {
        let (found, text) = take("SELECT system_time FROM t FOR UPDATE");
        assert!(found.is_empty());
        assert_eq!(text, "SELECT system_time FROM t FOR UPDATE");
    }
}

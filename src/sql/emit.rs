//! `EMIT ON WINDOW CLOSE` and `EMIT CHANGES`: when a continuous query emits.
//!
//! The clause closes a query (RisingWave writes it after `GROUP BY`), and
//! sqlparser does not know it, so it is taken off the tokens before parsing
//! and carried beside the statement. In batch it changes nothing: a bounded
//! query's every window is closed at the end of input.

use sqlparser::tokenizer::{Token, TokenWithSpan, Word};

/// When a continuous query's results are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// Each window's final rows once the watermark passes its end (append-only).
    OnWindowClose,
    /// Early and updated results as a changelog (`+I`, `-U`, `+U`, `-D`).
    Changes,
}

impl std::fmt::Display for Emit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Emit::OnWindowClose => "EMIT ON WINDOW CLOSE",
            Emit::Changes => "EMIT CHANGES",
        })
    }
}

/// Remove a top-level `EMIT ON WINDOW CLOSE` / `EMIT CHANGES` from `tokens`,
/// returning which it was. Anything else named `emit` (a column, an alias) is
/// left alone for the parser.
pub fn take_emit(tokens: &mut Vec<TokenWithSpan>) -> Option<Emit> {
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let word_at = |n: usize, text: &str| matches!(significant.get(n).map(|&i| &tokens[i].token), Some(Token::Word(w)) if is_word(w, text));
    let mut depth = 0i32;
    for (n, &i) in significant.iter().enumerate() {
        match &tokens[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && word_at(n, "emit") => {
                let found = if word_at(n + 1, "on") && word_at(n + 2, "window") && word_at(n + 3, "close") {
                    Some((Emit::OnWindowClose, 4))
                } else if word_at(n + 1, "changes") {
                    Some((Emit::Changes, 2))
                } else {
                    None
                };
                if let Some((emit, len)) = found {
                    let last = significant[n + len - 1];
                    tokens.drain(i..=last);
                    return Some(emit);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_word(w: &Word, text: &str) -> bool {
    w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn take(sql: &str) -> (Option<Emit>, String) {
        let mut tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .expect("tokens");
        let emit = take_emit(&mut tokens);
        (
            emit,
            tokens
                .iter()
                .map(|t| t.token.to_string())
                .collect::<String>()
                .trim()
                .to_string(),
        )
    }

    #[test]
    fn clauses_are_taken_off() {
        assert_eq!(
            take("SELECT a FROM t GROUP BY a EMIT ON WINDOW CLOSE"),
            (
                Some(Emit::OnWindowClose),
                "SELECT a FROM t GROUP BY a".to_string()
            )
        );
        assert_eq!(take("select 1 emit changes").0, Some(Emit::Changes));
        assert_eq!(take("SELECT emit FROM (SELECT 1 AS emit)").0, None);
    }

    #[test]
    fn other_uses_of_the_word_stay() {
        assert_eq!(take("SELECT 1 EMIT"), (None, "SELECT 1 EMIT".to_string()));
    }
}

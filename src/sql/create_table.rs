//! `CREATE TABLE ... WITH ('connector' = ...)`: Flink's connector-table DDL.
//!
//! sqlparser cannot read it (quoted option keys, `WATERMARK FOR` among the
//! columns), so we parse it here with sqlparser's own parser primitives: column
//! definitions and expressions are exactly sqlparser's, only the frame is ours.

use sqlparser::ast::{ColumnDef, Expr, Ident, ObjectName};
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Span, Token, TokenWithSpan, Word};

use crate::error::Result;

/// A table backed by a connector, declared in SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateConnectorTable {
    /// The table's name as written.
    pub name: ObjectName,
    /// Declared columns; empty means "take the schema from the source".
    pub columns: Vec<ColumnDef>,
    /// `WATERMARK FOR col AS expr`, if declared.
    pub watermark: Option<WatermarkDef>,
    /// The `WITH (...)` options in the order written.
    pub options: Vec<ConnectorOption>,
    /// `CREATE OR REPLACE TABLE`.
    pub or_replace: bool,
    /// `CREATE TABLE IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// Where the table name stands, for errors about the table as a whole.
    pub name_span: Span,
}

/// `WATERMARK FOR column AS expression`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: Ident,
    /// How the watermark is computed from a row (e.g. `ts - INTERVAL '5' SECOND`).
    pub expr: Expr,
    /// Where the clause stands.
    pub span: Span,
}

/// One `'key' = 'value'` of a `WITH (...)` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorOption {
    /// The key, lowercase (`connector`, `path`, `csv.field-delimiter`).
    pub key: String,
    /// The value as text.
    pub value: String,
    /// Where the option stands, for errors about it.
    pub span: Span,
}

/// Whether the statement is a connector table: `CREATE [OR REPLACE] [TEMPORARY]
/// TABLE [IF NOT EXISTS] name [(...)] WITH (` or a column list holding
/// `WATERMARK`. Anything else (`CREATE TABLE t AS SELECT`, a plain memory
/// table) stays DataFusion's.
pub(crate) fn is_connector_table(tokens: &[TokenWithSpan]) -> bool {
    let words: Vec<&Token> = tokens
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let keyword = |i: usize, k: Keyword| matches!(words.get(i), Some(Token::Word(w)) if w.keyword == k);
    let mut i = 0;
    if !keyword(i, Keyword::CREATE) {
        return false;
    }
    i += 1;
    if keyword(i, Keyword::OR) && keyword(i + 1, Keyword::REPLACE) {
        i += 2;
    }
    if keyword(i, Keyword::TEMPORARY) || keyword(i, Keyword::TEMP) {
        i += 1;
    }
    if !keyword(i, Keyword::TABLE) {
        return false;
    }
    i += 1;
    if keyword(i, Keyword::IF) && keyword(i + 1, Keyword::NOT) && keyword(i + 2, Keyword::EXISTS) {
        i += 3;
    }
    // The name: words separated by periods (`WITH` after it is not part of it).
    if !matches!(words.get(i), Some(Token::Word(_))) {
        return false;
    }
    i += 1;
    while matches!(words.get(i), Some(Token::Period)) && matches!(words.get(i + 1), Some(Token::Word(_))) {
        i += 2;
    }
    if matches!(words.get(i), Some(Token::LParen)) {
        let mut depth = 0;
        while let Some(token) = words.get(i) {
            match token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::Word(w) if depth == 1 && is_watermark(w) => return true,
                _ => {}
            }
            i += 1;
            if depth == 0 {
                break;
            }
        }
    }
    keyword(i, Keyword::WITH) && matches!(words.get(i + 1), Some(Token::LParen))
}

/// `WATERMARK` is not one of sqlparser's keywords, so it is matched as a word.
fn is_watermark(word: &Word) -> bool {
    word.quote_style.is_none() && word.value.eq_ignore_ascii_case("watermark")
}

/// Parse a statement that [`is_connector_table`] accepted.
pub(crate) fn parse(tokens: Vec<TokenWithSpan>, dialect: &dyn Dialect) -> Result<CreateConnectorTable> {
    let mut parser = Parser::new(dialect).with_tokens_with_locations(tokens);
    Ok(parse_with(&mut parser)?)
}

fn parse_with(parser: &mut Parser<'_>) -> Result<CreateConnectorTable, ParserError> {
    parser.expect_keyword(Keyword::CREATE)?;
    let or_replace = parser.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
    let _temporary = parser.parse_keyword(Keyword::TEMPORARY) || parser.parse_keyword(Keyword::TEMP);
    parser.expect_keyword(Keyword::TABLE)?;
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name_span = parser.peek_token_ref().span;
    let name = parser.parse_object_name(false)?;

    let mut columns = Vec::new();
    let mut watermark = None;
    if parser.consume_token(&Token::LParen) {
        loop {
            let start = parser.peek_token_ref().span;
            if matches!(&parser.peek_token_ref().token, Token::Word(w) if is_watermark(w)) {
                parser.next_token();
                if watermark.is_some() {
                    return parser_error("a table can declare only one WATERMARK", start);
                }
                parser.expect_keyword(Keyword::FOR)?;
                let column = parser.parse_identifier()?;
                parser.expect_keyword(Keyword::AS)?;
                let expr = parser.parse_expr()?;
                watermark = Some(WatermarkDef {
                    column,
                    expr,
                    span: start,
                });
            } else {
                columns.push(parser.parse_column_def()?);
            }
            if parser.consume_token(&Token::Comma) {
                if parser.consume_token(&Token::RParen) {
                    break; // a trailing comma, as DataFusion allows
                }
                continue;
            }
            if parser.consume_token(&Token::RParen) {
                break;
            }
            return parser.expected_ref("',' or ')' after a column definition", parser.peek_token_ref());
        }
    }

    let with_span = parser.peek_token_ref().span;
    if !parser.parse_keyword(Keyword::WITH) {
        return parser_error(
            "a table with a WATERMARK needs a source: add WITH ('connector' = ...)",
            with_span,
        );
    }
    parser.expect_token(&Token::LParen)?;
    let mut options = Vec::new();
    if !parser.consume_token(&Token::RParen) {
        loop {
            options.push(parse_option(parser)?);
            if parser.consume_token(&Token::Comma) {
                continue;
            }
            parser.expect_token(&Token::RParen)?;
            break;
        }
    }
    let end = parser.peek_token_ref();
    if !matches!(end.token, Token::EOF) {
        return parser.expected_ref("end of statement", end);
    }
    Ok(CreateConnectorTable {
        name,
        columns,
        watermark,
        options,
        or_replace,
        if_not_exists,
        name_span,
    })
}

/// `'key' = 'value'`; keys may also be bare identifiers (Arroyo writes
/// `connector = 'kafka'`), values numbers or booleans.
fn parse_option(parser: &mut Parser<'_>) -> Result<ConnectorOption, ParserError> {
    let start = parser.peek_token_ref().span;
    let key_token = parser.next_token();
    let key = match &key_token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
        Token::Word(_) => {
            // Bare keys may be dotted: csv.header = 'false'.
            let mut key = key_token.token.to_string();
            while parser.consume_token(&Token::Period) {
                key.push('.');
                key.push_str(&parser.parse_identifier()?.value);
            }
            key
        }
        _ => return parser.expected("an option name such as 'connector'", key_token),
    };
    parser.expect_token(&Token::Eq)?;
    let value_token = parser.next_token();
    let value = match &value_token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
        Token::Number(n, _) => n.clone(),
        Token::Word(w) if matches!(w.keyword, Keyword::TRUE | Keyword::FALSE) => w.value.to_lowercase(),
        _ => return parser.expected(&format!("a quoted value for option '{key}'"), value_token),
    };
    Ok(ConnectorOption {
        key: key.to_lowercase(),
        value,
        span: start,
    })
}

fn parser_error<T>(message: &str, span: Span) -> Result<T, ParserError> {
    Err(ParserError::ParserError(format!("{message}{}", span.start)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Statement, parse_script};
    use sqlparser::dialect::GenericDialect;

    fn parse_one(sql: &str) -> crate::Result<CreateConnectorTable> {
        let mut stmts = parse_script(sql, &GenericDialect {}, 50)?;
        match stmts.pop().map(|s| s.statement) {
            Some(Statement::CreateConnectorTable(c)) => Ok(*c),
            other => panic!("not a connector table: {other:?}"),
        }
    }

    #[test]
    fn flink_ddl_with_watermark() {
        let t = parse_one(
            "CREATE TABLE bids (auction BIGINT, price BIGINT, date_time TIMESTAMP(3),\n\
             WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND\n\
             ) WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'json')",
        )
        .expect("parses");
        assert_eq!(t.name.to_string(), "bids");
        assert_eq!(t.columns.len(), 3);
        let wm = t.watermark.expect("watermark");
        assert_eq!(wm.column.value, "date_time");
        assert_eq!(wm.expr.to_string(), "date_time - INTERVAL '4' SECOND");
        assert_eq!(wm.span.start.line, 2);
        let keys: Vec<_> = t
            .options
            .iter()
            .map(|o| (o.key.as_str(), o.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("connector", "file"),
                ("path", "testdata/bids.ndjson"),
                ("format", "json")
            ]
        );
    }

    #[test]
    fn bare_keys_numbers_and_no_columns() {
        let t = parse_one(
            "create table if not exists t with (connector = 'nexmark', events = 10, csv.header = false)",
        )
        .expect("parses");
        assert!(t.columns.is_empty() && t.if_not_exists);
        assert_eq!(t.options[1].value, "10");
        assert_eq!(t.options[2].key, "csv.header");
        assert_eq!(t.options[2].value, "false");
    }

    #[test]
    fn plain_create_table_stays_datafusions() {
        for sql in [
            "CREATE TABLE t (a INT)",
            "CREATE TABLE t AS SELECT 1",
            "CREATE TABLE t AS WITH x AS (SELECT 1) SELECT * FROM x",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 'a.csv'",
        ] {
            let stmts = parse_script(sql, &GenericDialect {}, 50).expect(sql);
            assert!(matches!(stmts[0].statement, Statement::DataFusion(_)), "{sql}");
        }
    }

    #[test]
    fn errors_name_the_place() {
        let err = parse_one("CREATE TABLE t (a INT, WATERMARK FOR a AS a) ").expect_err("no WITH");
        assert!(
            err.user_message().contains("WITH ('connector'"),
            "{}",
            err.user_message()
        );
        let err = parse_one("CREATE TABLE t (a INT) WITH ('connector' 'file')").expect_err("no =");
        assert_eq!(err.location.map(|l| (l.line, l.column)), Some((1, 42)));
    }
}

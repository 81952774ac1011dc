//! SQL text to statements: our dialect as a layer over DataFusion's parser.
//!
//! A script is tokenized once with sqlparser (so every token keeps its line
//! and column in the whole script) and split at top-level `;`. Each statement's
//! tokens then go either to our own parser, for the forms DataFusion does not
//! know (`CREATE TABLE ... WITH ('connector' = ...)`), or unchanged to
//! DataFusion's `DFParser`, so DataFusion's behaviour is never lost.

mod create_table;
mod emit;
mod frame_exclusion;
mod group_windows;
mod nesting;
mod split;
mod system_time;
pub mod windows;

pub use create_table::{ConnectorOption, CreateConnectorTable, WatermarkDef};
pub use emit::Emit;
pub use nesting::MAX_NESTING;
pub use split::{StatementTokens, is_complete, split_statements};
pub use system_time::VersionedTable;

use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use sqlparser::dialect::Dialect;
use sqlparser::tokenizer::Span;

use crate::error::{Result, SluiceError};

/// One parsed statement of a script.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// What the statement says.
    pub statement: Statement,
    /// Where it stands in the script.
    pub span: Span,
    /// Its source text, without the closing `;`.
    pub text: String,
    /// `EMIT ON WINDOW CLOSE` / `EMIT CHANGES`, if the query says when to emit.
    pub emit: Option<Emit>,
    /// The tables it reads `FOR SYSTEM_TIME AS OF` a time (temporal joins);
    /// the engine checks that their rows do not change.
    pub versioned: Vec<VersionedTable>,
}

/// The statements Sluice understands.
#[derive(Debug, Clone)]
pub enum Statement {
    /// Anything DataFusion parses: standard SQL and DataFusion's extensions
    /// (`CREATE EXTERNAL TABLE`, `COPY`, `EXPLAIN`, `SET`, ...).
    DataFusion(Box<DFStatement>),
    /// `CREATE TABLE name (columns, WATERMARK FOR ...) WITH ('connector' = ...)`.
    CreateConnectorTable(Box<CreateConnectorTable>),
}

/// Parse one statement's tokens with `dialect`.
pub fn parse_statement(
    tokens: &StatementTokens,
    dialect: &dyn Dialect,
    recursion_limit: usize,
) -> Result<ParsedStatement> {
    // An error without a place is one at the end of input ("found: EOF"):
    // point at the end of the statement.
    let at_end = |e: SluiceError| e.or_at(Span::new(tokens.span.end, tokens.span.end));
    let mut emit = None;
    let mut versioned = Vec::new();
    let statement = if create_table::is_connector_table(&tokens.tokens) {
        let create = create_table::parse(tokens.tokens.clone(), dialect).map_err(at_end)?;
        Statement::CreateConnectorTable(Box::new(create))
    } else {
        let mut dialect_tokens =
            windows::rewrite_flink_tvfs(tokens.tokens.clone()).map_err(|e| at_end(e.into()))?;
        emit = emit::take_emit(&mut dialect_tokens);
        versioned = system_time::take_system_time(&mut dialect_tokens, dialect);
        let dialect_tokens = frame_exclusion::rewrite(dialect_tokens, dialect).map_err(at_end)?;
        let mut parser = DFParserBuilder::new(dialect_tokens)
            .with_dialect(dialect)
            .with_recursion_limit(recursion_limit)
            .build()
            .map_err(|e| at_end(e.into()))?;
        let mut statements = parser.parse_statements().map_err(|e| at_end(e.into()))?;
        match (statements.pop_front(), statements.is_empty()) {
            (Some(mut statement), true) => {
                if let Some(emit) = emit
                    && is_create_view(&statement)
                {
                    return Err(SluiceError::at(
                        datafusion::error::DataFusionError::Plan(format!(
                            "{emit} in CREATE VIEW would not be kept with the view; write it on the query that reads the view, as in SELECT ... FROM view {emit}"
                        )),
                        tokens.span,
                    ));
                }
                nesting::check_nesting(&mut statement).map_err(|e| SluiceError::at(e, tokens.span))?;
                group_windows::rewrite(&mut statement).map_err(|e| e.or_at(tokens.span))?;
                windows::wrap_table_arguments(&mut statement);
                Statement::DataFusion(Box::new(statement))
            }
            _ => {
                return Err(SluiceError::at(
                    datafusion::error::DataFusionError::Plan("expected exactly one statement".into()),
                    tokens.span,
                ));
            }
        }
    };
    Ok(ParsedStatement {
        statement,
        span: tokens.span,
        text: tokens.text.clone(),
        emit,
        versioned,
    })
}

/// Whether `statement` creates a view: a view keeps its query, not how a
/// continuous run of it emits.
fn is_create_view(statement: &DFStatement) -> bool {
    matches!(statement, DFStatement::Statement(s) if matches!(s.as_ref(), sqlparser::ast::Statement::CreateView(_)))
}

/// Split and parse a whole script. Used by tests and tools that want every
/// statement up front; the CLI parses one statement at a time so that a
/// syntax error late in a file does not stop the statements before it.
pub fn parse_script(
    sql: &str,
    dialect: &dyn Dialect,
    recursion_limit: usize,
) -> Result<Vec<ParsedStatement>> {
    split_statements(sql, dialect)?
        .iter()
        .map(|tokens| parse_statement(tokens, dialect, recursion_limit))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;

    #[test]
    fn datafusion_statements_pass_through() {
        let stmts = parse_script(
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 'x.csv';\nSELECT 1; COPY t TO 'y.csv'",
            &GenericDialect {},
            50,
        )
        .expect("parses");
        assert_eq!(stmts.len(), 3);
        assert!(
            stmts
                .iter()
                .all(|s| matches!(s.statement, Statement::DataFusion(_)))
        );
        assert_eq!(stmts[1].span.start.line, 2);
        assert_eq!(stmts[1].text, "SELECT 1");
    }

    #[test]
    fn syntax_errors_point_into_the_script() {
        let err = parse_script("SELECT 1;\n\nSELECT 1 +", &GenericDialect {}, 50).expect_err("bad sql");
        let loc = err.location.expect("has a location");
        assert_eq!((loc.line, loc.column), (3, 11));
    }
}

//! The one error type of the engine.
//!
//! Internally every layer raises [`DataFusionError`]s with the kind that says
//! whose fault it is (`Plan`: the query, `Execution`: the data, `NotImplemented`:
//! a known gap). [`SluiceError`] adds where in the SQL text the problem is, so
//! the CLI can print `LINE n:` with a caret.

use datafusion::error::DataFusionError;
use sqlparser::tokenizer::{Location, Span};

/// Result with a [`SluiceError`].
pub type Result<T, E = SluiceError> = std::result::Result<T, E>;

/// An error from any layer of Sluice, with the place in the SQL text when known.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct SluiceError {
    /// What went wrong.
    #[source]
    pub source: DataFusionError,
    /// Where in the script it went wrong (1-based line and column), when known.
    pub location: Option<Location>,
}

impl SluiceError {
    /// An error at a place in the SQL text.
    pub fn at(source: DataFusionError, span: Span) -> Self {
        let location = (span != Span::empty()).then_some(span.start);
        Self { source, location }
    }

    /// Attach `span` unless the error already knows its place.
    pub fn or_at(mut self, span: Span) -> Self {
        if self.location.is_none() && span != Span::empty() {
            self.location = Some(span.start);
        }
        self
    }

    /// The message without DataFusion's kind prefixes (`Error during planning: `,
    /// `SQL error: ParserError(...)`), for people rather than test oracles.
    pub fn user_message(&self) -> String {
        user_message(&self.source)
    }
}

impl From<DataFusionError> for SluiceError {
    fn from(source: DataFusionError) -> Self {
        let location = location_of(&source);
        Self { source, location }
    }
}

impl From<sqlparser::parser::ParserError> for SluiceError {
    fn from(e: sqlparser::parser::ParserError) -> Self {
        DataFusionError::SQL(Box::new(e), None).into()
    }
}

/// The place a DataFusion error points at: a diagnostic's span, or the
/// `at Line: l, Column: c` that sqlparser writes into its messages.
fn location_of(e: &DataFusionError) -> Option<Location> {
    if let Some(span) = e.diagnostic().and_then(|d| d.span) {
        return Some(Location::new(span.start.line, span.start.column));
    }
    let text = e.to_string();
    let at = text.rfind(" at Line: ")?;
    let rest = &text[at + " at Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(Location::new(line.parse().ok()?, column.parse().ok()?))
}

fn user_message(e: &DataFusionError) -> String {
    match e {
        DataFusionError::Diagnostic(_, inner) => user_message(inner),
        DataFusionError::Context(ctx, inner) => format!("{ctx}: {}", user_message(inner)),
        DataFusionError::SQL(parser_error, _) => {
            let text = match parser_error.as_ref() {
                sqlparser::parser::ParserError::TokenizerError(s)
                | sqlparser::parser::ParserError::ParserError(s) => s.clone(),
                other => other.to_string(),
            };
            match text.rfind(" at Line: ") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
        DataFusionError::ArrowError(inner, _) => inner.to_string(),
        DataFusionError::External(inner) => match inner.downcast_ref::<DataFusionError>() {
            Some(df) => user_message(df),
            None => inner.to_string(),
        },
        other => other.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_location_is_read_from_the_message() {
        let e: SluiceError = sqlparser::parser::ParserError::ParserError(
            "Expected: an expression, found: FROM at Line: 3, Column: 8".into(),
        )
        .into();
        assert_eq!(e.location, Some(Location::new(3, 8)));
        assert_eq!(e.user_message(), "Expected: an expression, found: FROM");
    }

    #[test]
    fn plan_errors_lose_the_kind_prefix() {
        let e: SluiceError = DataFusionError::Plan("table 'x' not found".into()).into();
        assert_eq!(e.user_message(), "table 'x' not found");
        assert_eq!(e.location, None);
    }
}

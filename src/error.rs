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

/// DataFusion reports a function called with a type none of its signatures
/// takes (`sum(text)`) as "Internal error: Function 'f' failed to match any
/// signature, errors: ... requires T, but received U (DataType: D) ..." (a
/// plan error from its SQL planner, an internal one elsewhere). It is the
/// query's fault, and users read it as ours: the message people see names
/// the function, the type and the types it takes. (The error itself keeps
/// DataFusion's text, which DataFusion's own tests match.)
fn signature_mismatch(message: &str) -> Option<String> {
    let message = message.strip_prefix("Internal error: ").unwrap_or(message);
    let rest = message.strip_prefix("Function '")?;
    let (function, rest) = rest.split_once("' failed to match any signature")?;
    let mut takes: Vec<&str> = Vec::new();
    let mut received = None;
    for part in rest.split(" requires ").skip(1) {
        let Some((wanted, after)) = part.split_once(", but received ") else {
            continue;
        };
        if !takes.contains(&wanted) {
            takes.push(wanted);
        }
        if received.is_none() {
            received = after
                .split_once("(DataType: ")
                .and_then(|(_, t)| t.split_once(')'))
                .map(|(t, _)| t);
        }
    }
    // Without a received type (a wrong number of arguments), DataFusion's
    // own list of what failed says more.
    let received = received?;
    let takes = match takes.as_slice() {
        [] => return None,
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    };
    Some(format!(
        "{function}() cannot take an argument of type {received}; it takes {takes}: CAST the argument, as in {function}(CAST(x AS BIGINT))"
    ))
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
        DataFusionError::Plan(message) | DataFusionError::Internal(message)
            if let Some(mismatch) = signature_mismatch(message) =>
        {
            mismatch
        }
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
    fn a_signature_mismatch_is_the_query_s_fault() {
        let e: SluiceError = DataFusionError::Plan(
            "Internal error: Function 'sum' failed to match any signature, errors: Error during planning: Function 'sum' requires Decimal, \
             but received String (DataType: Utf8View).,Error during planning: Function 'sum' requires Int64, but received \
             String (DataType: Utf8View).."
                .into(),
        )
        .into();
        assert_eq!(
            e.user_message(),
            "sum() cannot take an argument of type Utf8View; it takes Decimal or Int64: CAST the argument, as in sum(CAST(x AS BIGINT))"
        );
    }

    #[test]
    fn plan_errors_lose_the_kind_prefix() {
        let e: SluiceError = DataFusionError::Plan("table 'x' not found".into()).into();
        assert_eq!(e.user_message(), "table 'x' not found");
        assert_eq!(e.location, None);
    }
}

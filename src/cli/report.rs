//! Error reports: one line that names the place (`file:line:column`) and the
//! problem, and on a terminal the offending line with a caret under it.

use std::io::Write;

use crate::error::SluiceError;

/// Where SQL came from, for error messages.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// `q.sql`, `<stdin>`, `<command line>`, `<repl>`.
    pub name: &'a str,
    /// The whole text, to quote the failing line from.
    pub text: &'a str,
}

/// Print `error` to `err`. `detail` adds the quoted line and caret.
pub fn report(err: &mut dyn Write, source: &Source<'_>, error: &SluiceError, detail: bool) {
    let full = error.user_message();
    // One line names the place and the problem; anything longer (a server's
    // HTML error page, a multi-line diagnostic) follows only on a terminal.
    let (message, rest) = full.trim_end().split_once('\n').unwrap_or((full.trim_end(), ""));
    let _ = match error.location {
        Some(loc) => writeln!(
            err,
            "Error: {}:{}:{}: {message}",
            source.name, loc.line, loc.column
        ),
        None => writeln!(err, "Error: {}: {message}", source.name),
    };
    if detail && !rest.is_empty() {
        let _ = writeln!(err, "{rest}");
    }
    if detail
        && let Some(loc) = error.location
        && let Some(line) = source.text.lines().nth(loc.line.saturating_sub(1) as usize)
    {
        let prefix = format!("LINE {}: ", loc.line);
        let pad: String = line
            .chars()
            .take(loc.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(err, "{prefix}{line}\n{}{pad}^", " ".repeat(prefix.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::error::DataFusionError;
    use sqlparser::tokenizer::{Location, Span};

    #[test]
    fn one_line_with_place_then_caret() {
        let e = SluiceError::at(
            DataFusionError::Plan("table 'foo' not found".into()),
            Span::new(Location::new(2, 15), Location::new(2, 18)),
        );
        let text = "SELECT 1;\nSELECT * FROM foo;";
        let mut out = Vec::new();
        report(&mut out, &Source { name: "q.sql", text }, &e, false);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Error: q.sql:2:15: table 'foo' not found\n"
        );
        let mut out = Vec::new();
        report(&mut out, &Source { name: "q.sql", text }, &e, true);
        let text = String::from_utf8_lossy(&out).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "LINE 2: SELECT * FROM foo;");
        assert_eq!(lines[2].find('^'), Some("LINE 2: ".len() + 14));
    }
}

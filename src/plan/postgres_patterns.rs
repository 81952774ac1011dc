//! PostgreSQL's `to_char` patterns (`'YYYY-MM-DD HH24:MI:SS'`), as RisingWave
//! and PostgreSQL queries write them (RisingWave's Nexmark q10, q15-q17),
//! translated to chrono's, which DataFusion's `to_char` reads. A pattern with
//! `%` in it is chrono's already and is kept, so DataFusion's own uses of
//! `to_char` mean what they did.
//!
//! Supported: `YYYY YY MM DD DDD HH HH12 HH24 MI SS MS US AM PM am pm TZ`
//! (the numeric ones in any case), `Mon Month Dy Day` (mixed case: chrono
//! has no upper-case month names, so `MON`, `MONTH`, `DY` and `DAY` are
//! refused rather than printed in the wrong case), the `FM` prefix (no
//! padding), and `"literal text"`. PostgreSQL's other fields (`D`, `W`,
//! `IW`, `Q`, ...) are refused; other characters are copied.

use datafusion::common::exec_err;
use datafusion::error::Result;

/// A PostgreSQL `to_char` pattern as a chrono format; one with `%` is kept.
pub fn postgres_to_chrono(pattern: &str) -> Result<String> {
    if pattern.contains('%') {
        return Ok(pattern.to_string());
    }
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            // Literal text up to the closing quote.
            let Some(end) = rest[1..].find('"') else {
                return exec_err!("to_char: unclosed \" in pattern '{pattern}'");
            };
            out.push_str(&rest[1..1 + end]);
            rest = &rest[end + 2..];
            continue;
        }
        let fill = starts_with_any_case(rest, "FM");
        let field = if fill { &rest[2..] } else { rest };
        if let Some((length, spec)) = field_at(field, pattern)? {
            match (fill, spec.strip_prefix('%')) {
                // `%-d`: chrono's no-padding flag.
                (true, Some(letter)) if spec.len() == 2 => {
                    out.push_str("%-");
                    out.push_str(letter);
                }
                _ => out.push_str(spec),
            }
            rest = &field[length..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// The field the pattern starts with: its length and chrono's spec.
fn field_at(text: &str, pattern: &str) -> Result<Option<(usize, &'static str)>> {
    // Longest first, so that `HH24` is not read as `HH` then `24`.
    const NUMERIC: [(&str, &str); 13] = [
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("YYYY", "%Y"),
        ("DDD", "%j"),
        ("HH", "%I"),
        ("YY", "%y"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("MS", "%3f"),
        ("US", "%6f"),
        ("TZ", "%Z"),
    ];
    const NAMES: [(&str, &str); 8] = [
        ("Month", "%B"),
        ("Mon", "%b"),
        ("Day", "%A"),
        ("Dy", "%a"),
        ("AM", "%p"),
        ("PM", "%p"),
        ("am", "%P"),
        ("pm", "%P"),
    ];
    for upper in ["MONTH", "MON", "DAY", "DY"] {
        if text.starts_with(upper) {
            return exec_err!(
                "to_char: '{upper}' in pattern '{pattern}' asks for an upper-case name, which is not supported; write it mixed-case ('{}'), or use upper(to_char(...))",
                mixed_case(upper)
            );
        }
    }
    if let Some((name, spec)) = NAMES.iter().find(|(name, _)| text.starts_with(name)) {
        return Ok(Some((name.len(), spec)));
    }
    if let Some((name, spec)) = NUMERIC.iter().find(|(name, _)| starts_with_any_case(text, name)) {
        return Ok(Some((name.len(), spec)));
    }
    // PostgreSQL fields chrono cannot print the same: refused, never
    // copied as text (PostgreSQL would print the field there).
    const UNSUPPORTED: [&str; 15] = [
        "SSSSS", "SSSS", "IYYY", "IYY", "IY", "IW", "WW", "CC", "RM", "TH", "W", "Q", "J", "D", "I",
    ];
    if let Some(name) = UNSUPPORTED.iter().find(|name| starts_with_any_case(text, name)) {
        return exec_err!(
            "to_char: the field '{name}' in pattern '{pattern}' is not supported; use YYYY YY MM DD DDD HH HH12 HH24 MI SS MS US AM PM TZ Mon Month Dy Day, and \"quote\" literal text"
        );
    }
    Ok(None)
}

fn starts_with_any_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn mixed_case(upper: &str) -> String {
    let mut chars = upper.chars();
    chars
        .next()
        .map(|first| first.to_string() + &chars.as_str().to_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_patterns_become_chrono_formats() -> Result<()> {
        assert_eq!(postgres_to_chrono("YYYY-MM-DD")?, "%Y-%m-%d");
        assert_eq!(postgres_to_chrono("HH24:MI")?, "%H:%M");
        assert_eq!(postgres_to_chrono("HH:MI:SS.MS AM")?, "%I:%M:%S.%3f %p");
        assert_eq!(postgres_to_chrono("yyyy-mm-dd hh24:mi:ss")?, "%Y-%m-%d %H:%M:%S");
        assert_eq!(postgres_to_chrono("FMDD Mon YY")?, "%-d %b %y");
        assert_eq!(postgres_to_chrono("Day, \"week of\" Month")?, "%A, week of %B");
        Ok(())
    }

    #[test]
    fn a_chrono_pattern_is_kept() -> Result<()> {
        assert_eq!(postgres_to_chrono("%Y-%m-%d MM")?, "%Y-%m-%d MM");
        Ok(())
    }

    #[test]
    fn what_chrono_cannot_print_is_an_error() {
        let err = postgres_to_chrono("DD MON YYYY").expect_err("upper-case month");
        assert!(err.to_string().contains("'Mon'"), "{err}");
        assert!(postgres_to_chrono("\"open").is_err());
        // Day of the week and week numbers would be copied as text.
        assert!(postgres_to_chrono("D").is_err());
        assert!(postgres_to_chrono("IW").is_err());
    }
}

//! The `WITH (...)` options of a connector table, checked key by key.

use std::collections::BTreeMap;

use datafusion::common::plan_err;
use datafusion::error::Result;

/// Options as written, lowercase keys, each consumed once by the connector
/// that understands it. Whatever is left unconsumed is a typo or an option of
/// another connector, and [`Options::finish`] reports it rather than ignoring it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    values: BTreeMap<String, String>,
}

impl Options {
    /// Options from `(key, value)` pairs; a key given twice is an error.
    pub fn try_new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (key, value) in pairs {
            let key = key.to_lowercase();
            if values.insert(key.clone(), value).is_some() {
                return plan_err!("option '{key}' is given twice");
            }
        }
        Ok(Self { values })
    }

    /// Take an optional option.
    pub fn take(&mut self, key: &str) -> Option<String> {
        self.values.remove(key)
    }

    /// Take a required option; `what` says what it is for in the error.
    pub fn take_required(&mut self, key: &str, what: &str) -> Result<String> {
        match self.values.remove(key) {
            Some(v) => Ok(v),
            None => plan_err!("missing option '{key}' ({what})"),
        }
    }

    /// Take a `'true'`/`'false'` option.
    pub fn take_bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.to_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => plan_err!("option '{key}' must be 'true' or 'false', not '{v}'"),
            },
        }
    }

    /// Take a single-character option (a delimiter or quote).
    pub fn take_char(&mut self, key: &str) -> Result<Option<char>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => {
                let v = match v.as_str() {
                    "\\t" => "\t".to_string(),
                    _ => v,
                };
                let mut chars = v.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii() => Ok(Some(c)),
                    _ => plan_err!("option '{key}' must be a single ASCII character, not '{v}'"),
                }
            }
        }
    }

    /// Take every option whose key starts with `prefix`, prefix removed.
    pub fn take_prefixed(&mut self, prefix: &str) -> Vec<(String, String)> {
        let keys: Vec<String> = self
            .values
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let v = self.values.remove(&k)?;
                Some((k[prefix.len()..].to_string(), v))
            })
            .collect()
    }

    /// Fail on any option nobody consumed, listing what `connector` accepts.
    pub fn finish(self, connector: &str, accepted: &[&str]) -> Result<()> {
        match self.values.keys().next() {
            None => Ok(()),
            Some(key) => plan_err!(
                "unknown option '{key}' for connector '{connector}'; it accepts: {}",
                accepted.join(", ")
            ),
        }
    }
}

/// A count: digits, optionally grouped with `_` (`1_000_000`).
pub fn parse_count(s: &str) -> Option<u64> {
    if s.is_empty() || s.starts_with('_') {
        return None;
    }
    s.replace('_', "").parse().ok()
}

/// A duration in milliseconds: a number with a unit (`250 ms`, `4s`, `1 min`,
/// `2 h`, `1 d`; `second(s)`, `minute(s)`, `hour(s)`, `day(s)` too), or a bare
/// number of milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number = parse_count(number)?;
    let scale: u64 = match unit.trim().to_lowercase().as_str() {
        "" | "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "second" | "seconds" => 1_000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        Options::try_new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid")
    }

    #[test]
    fn leftovers_are_reported_with_the_accepted_keys() {
        let mut o = opts(&[("path", "x"), ("fromat", "csv")]);
        assert_eq!(o.take("path").as_deref(), Some("x"));
        let err = o.finish("file", &["path", "format"]).expect_err("typo");
        assert!(
            err.to_string()
                .contains("unknown option 'fromat' for connector 'file'; it accepts: path, format")
        );
    }

    #[test]
    fn typed_values_are_checked() {
        let mut o = opts(&[("a", "TRUE"), ("b", "yes"), ("c", "\\t"), ("d", ";;")]);
        assert_eq!(o.take_bool("a").expect("bool"), Some(true));
        assert!(o.take_bool("b").is_err());
        assert_eq!(o.take_char("c").expect("tab"), Some('\t'));
        assert!(o.take_char("d").is_err());
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let err = Options::try_new([("a".into(), "1".into()), ("A".into(), "2".into())]).expect_err("dup");
        assert!(err.to_string().contains("option 'a' is given twice"));
    }
}

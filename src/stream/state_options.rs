//! Settings of continuous queries' state, under `SET 'state.<name>'`:
//! `state.ttl` bounds what a join of two streams with no time bound and an
//! updating GROUP BY keep.

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::DataFusionError;

use super::operator::{MILLISECOND, Nanos};
use crate::connectors::options::parse_duration_ms;

/// `state.*` settings.
#[derive(Debug, Clone, Default)]
pub struct StateOptions {
    /// How long a regular join of two streams keeps a row, and an updating
    /// GROUP BY a group no row touches, in event time: until the watermark
    /// passes the one in force at the last touch plus this. `None`: for ever
    /// (the join warns that its state grows without bound).
    pub ttl: Option<Nanos>,
}

impl ConfigExtension for StateOptions {
    const PREFIX: &'static str = "state";
}

impl ExtensionOptions for StateOptions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> datafusion::error::Result<()> {
        match key {
            "ttl" => {
                let value = value.trim();
                self.ttl = match value {
                    "" | "0" | "none" => None,
                    _ => Some(
                        parse_duration_ms(value)
                            .and_then(|ms| i64::try_from(ms).ok())
                            .and_then(|ms| ms.checked_mul(MILLISECOND))
                            .ok_or_else(|| {
                                DataFusionError::Configuration(format!(
                                    "state.ttl takes a duration such as '1 h', '30 min' or '10 s' (or 'none'), not '{value}'"
                                ))
                            })?,
                    ),
                };
                Ok(())
            }
            other => Err(DataFusionError::Configuration(format!(
                "unknown setting 'state.{other}'; the state settings are: state.ttl"
            ))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            key: format!("{}.ttl", Self::PREFIX),
            value: Some(match self.ttl {
                Some(ttl) => format!("{} ms", ttl / MILLISECOND),
                None => "none".to_string(),
            }),
            description: "how long a join of two streams with no time bound keeps a row, and an updating GROUP BY an untouched group (event time); none: for ever",
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_takes_a_duration_or_none() {
        let mut options = StateOptions::default();
        options.set("ttl", "1 h").expect("an hour");
        assert_eq!(options.ttl, Some(3_600 * 1_000 * MILLISECOND));
        options.set("ttl", "none").expect("none");
        assert_eq!(options.ttl, None);
        assert!(options.set("ttl", "soon").is_err());
        assert!(options.set("size", "1").is_err());
    }
}

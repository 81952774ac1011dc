//! Sluice's own settings (`SET sluice.<name>`), listed by `SHOW ALL` under
//! their full names.

use super::*;

/// Sluice's own settings, set with `SET sluice.<name> = <value>` and listed by
/// `SHOW ALL` / `information_schema.df_settings` under their full names.
#[derive(Debug, Clone)]
pub struct SluiceOptions {
    /// EXPLAIN starts with a row naming the executor (batch or continuous) and why.
    pub explain_executor: bool,
    /// Which executor runs queries.
    pub mode: Mode,
    /// How the shell shows a continuous query's rows.
    pub result_mode: ResultMode,
    /// Warn on stderr while a continuous query's lag (now minus its
    /// watermark) is above this many milliseconds; `None`: never.
    pub alert_lag_ms: Option<u64>,
    /// Updating aggregates emit their changes at most once per this many
    /// milliseconds of processing time; `None`: after every input batch.
    pub emit_interval_ms: Option<u64>,
}

impl Default for SluiceOptions {
    fn default() -> Self {
        Self {
            explain_executor: true,
            mode: Mode::Auto,
            result_mode: ResultMode::Table,
            alert_lag_ms: None,
            emit_interval_ms: None,
        }
    }
}

/// `sluice.mode` (the CLI's `--mode`): which executor runs a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Batch when every source is bounded, continuous otherwise.
    #[default]
    Auto,
    /// Batch only: a query over an unbounded source is an error.
    Batch,
    /// Continuous even over bounded tables (a replay, ending with a
    /// watermark that closes every window).
    Continuous,
}

// The names are the ones `--mode` takes (clap's `ValueEnum`), so `SET
// sluice.mode` and the flag accept and show the same words.
impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = clap::ValueEnum::to_possible_value(self);
        f.write_str(value.as_ref().map_or("", |v| v.get_name()))
    }
}

impl std::str::FromStr for Mode {
    type Err = DataFusionError;

    fn from_str(value: &str) -> datafusion::error::Result<Self> {
        <Mode as clap::ValueEnum>::from_str(value, true).map_err(|_| {
            DataFusionError::Configuration(format!(
                "sluice.mode takes auto, batch or continuous, not '{value}'"
            ))
        })
    }
}

/// `sluice.result.mode`: how the shell shows a continuous query (Flink's
/// SQL client's three modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ResultMode {
    /// One live table updated in place: appended rows at the bottom, an
    /// updating result folded by key; a status line under it.
    #[default]
    Table,
    /// Every change as it comes, with its `op` (`+I`, `-U`, `+U`, `-D`).
    Changelog,
    /// Plain rows as they come, one table per emission.
    Tableau,
}

impl std::fmt::Display for ResultMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = clap::ValueEnum::to_possible_value(self);
        f.write_str(value.as_ref().map_or("", |v| v.get_name()))
    }
}

impl std::str::FromStr for ResultMode {
    type Err = DataFusionError;

    fn from_str(value: &str) -> datafusion::error::Result<Self> {
        <ResultMode as clap::ValueEnum>::from_str(value, true).map_err(|_| {
            DataFusionError::Configuration(format!(
                "sluice.result.mode takes table, changelog or tableau, not '{value}'"
            ))
        })
    }
}

impl ConfigExtension for SluiceOptions {
    const PREFIX: &'static str = "sluice";
}

// Written out rather than with DataFusion's `extensions_options!`, whose
// entries lose the `sluice.` prefix, so `SHOW sluice.explain_executor` could
// not find them.
impl ExtensionOptions for SluiceOptions {
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
            "explain_executor" => {
                self.explain_executor = value.parse().map_err(|_| {
                    DataFusionError::Configuration(format!(
                        "sluice.explain_executor takes true or false, not '{value}'"
                    ))
                })?;
                Ok(())
            }
            "mode" => {
                self.mode = value.parse()?;
                Ok(())
            }
            "result.mode" => {
                self.result_mode = value.parse()?;
                Ok(())
            }
            "alert.lag" => {
                self.alert_lag_ms = duration_or_none("alert.lag", value)?;
                Ok(())
            }
            "emit.interval" => {
                self.emit_interval_ms = duration_or_none("emit.interval", value)?.filter(|ms| *ms > 0);
                Ok(())
            }
            other => Err(DataFusionError::Configuration(format!(
                "unknown setting 'sluice.{other}'; Sluice's settings are: sluice.alert.lag, sluice.emit.interval, sluice.explain_executor, sluice.mode, sluice.result.mode"
            ))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![
            ConfigEntry {
                key: format!("{}.explain_executor", Self::PREFIX),
                value: Some(self.explain_executor.to_string()),
                description: "EXPLAIN starts with a row naming the executor (batch or continuous) and why",
            },
            ConfigEntry {
                key: format!("{}.mode", Self::PREFIX),
                value: Some(self.mode.to_string()),
                description: "auto: batch when every source is bounded, else continuous; batch; continuous (replays bounded tables as streams)",
            },
            ConfigEntry {
                key: format!("{}.result.mode", Self::PREFIX),
                value: Some(self.result_mode.to_string()),
                description: "how the shell shows a continuous query: table (live, in place), changelog (each change), tableau (rows as they come)",
            },
            ConfigEntry {
                key: format!("{}.alert.lag", Self::PREFIX),
                value: Some(match self.alert_lag_ms {
                    Some(ms) => format!("{ms} ms"),
                    None => "none".to_string(),
                }),
                description: "warn on stderr while a continuous query's lag (now minus its watermark) is above this; none: never",
            },
            ConfigEntry {
                key: format!("{}.emit.interval", Self::PREFIX),
                value: Some(match self.emit_interval_ms {
                    Some(ms) => format!("{ms} ms"),
                    None => "none".to_string(),
                }),
                description: "updating aggregates emit their changes at most once per this much processing time, a key's changes in between folded into one; none: after every input batch",
            },
        ]
    }
}

/// The milliseconds of a duration setting `sluice.{key}` (`'30 s'`, `'2 min'`),
/// or `None` for `'none'`.
fn duration_or_none(key: &str, value: &str) -> datafusion::error::Result<Option<u64>> {
    let value = value.trim();
    match value {
        "" | "none" => Ok(None),
        _ => crate::connectors::options::parse_duration_ms(value)
            .map(Some)
            .ok_or_else(|| {
                DataFusionError::Configuration(format!(
                    "sluice.{key} takes a duration such as '30 s' or '2 min' (or 'none'), not '{value}'"
                ))
            }),
    }
}

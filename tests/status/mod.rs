//! Checked-in status files (`tests/nexmark_status.txt`, ...): one line per
//! case, `name pass`, `name pass-with-edits: <edits>` or `name fail: <why>`.
//! A case must do what its line says; one listed as failing that passes is
//! reported too, so a status file only ever improves.

use std::collections::BTreeMap;

/// A status file's lines, by case name (`#` lines are comments).
pub struct StatusFile {
    /// The file's name, for messages.
    file: &'static str,
    /// Case name to its whole line.
    lines: BTreeMap<String, String>,
}

impl StatusFile {
    /// Read `path`; `file` names it in messages (`tests/nexmark_status.txt`).
    pub fn read(path: &str, file: &'static str) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                (
                    l.split_whitespace().next().unwrap_or_default().to_string(),
                    l.to_string(),
                )
            })
            .collect();
        Self { file, lines }
    }

    /// What is wrong, if anything, with case `name` having had `outcome`
    /// after the runner's edits `applied`.
    pub fn check<T>(&self, name: &str, outcome: &Result<T, String>, applied: &[&str]) -> Option<String> {
        let file = self.file;
        let actual = match (outcome, applied.is_empty()) {
            (Ok(_), true) => format!("{name} pass"),
            (Ok(_), false) => format!("{name} pass-with-edits: {}", applied.join("; ")),
            (Err(_), _) => format!("{name} fail"),
        };
        let Some(line) = self.lines.get(name) else {
            return Some(format!("{name} has no line in {file}; it is: {actual}"));
        };
        let listed_failing = line.starts_with(&format!("{name} fail"));
        match (outcome, listed_failing) {
            (Ok(_), true) => Some(format!("{name} now passes: update {file} to `{actual}`")),
            (Ok(_), false) if *line != actual => {
                Some(format!("{name}: {file} says `{line}`, but it is `{actual}`"))
            }
            (Err(e), false) => Some(format!("{name} is listed `{line}` but fails: {e}")),
            _ => None,
        }
    }

    /// Whether case `name` is listed as passing (`pass` or `pass-with-edits`).
    #[allow(dead_code)] // not every test that shares this module asks
    pub fn listed_passing(&self, name: &str) -> bool {
        self.lines
            .get(name)
            .is_some_and(|line| !line.starts_with(&format!("{name} fail")))
    }

    /// Lines naming a case that is not in `names`.
    pub fn strays(&self, names: &[String]) -> Vec<String> {
        self.lines
            .keys()
            .filter(|name| !names.contains(name))
            .map(|name| format!("{} lists {name}, which is not a case", self.file))
            .collect()
    }
}

//! DataFusion's own sqllogictests (`../shared/conformance/datafusion`, from
//! `datafusion-sqllogictest` 55.2.0) run through Sluice's front end.
//!
//! The suite is copied to a temporary directory (the shared copy is read-only
//! in CI, and eight files write to `test_files/scratch/`), and the process's
//! current directory is set to its `datafusion/sqllogictest`, once, before any
//! test starts: the files' relative `LOCATION`s resolve from there. Records
//! that fail are listed in `sqllogictests/conformance-known-failures.txt`;
//! a failure outside the list fails the file's test, and so does a listed
//! record that now passes, so the list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use datafusion::execution::context::SessionConfig;
use sluice::Engine;

use super::fixtures;
use super::normalize::PathTokens;
use super::run::{SltFile, fresh_scratch_dir, run_file};

/// Where the suite lives, relative to the package root.
const SHARED_SUITE: &str = "../shared/conformance/datafusion";
/// The known-failures list, relative to the package root.
pub const KNOWN_FAILURES: &str = "sqllogictests/conformance-known-failures.txt";

/// The copied suite, ready to run.
pub struct Suite {
    /// Keeps the copy alive; its path is what `WORKSPACE_ROOT` stands for.
    root: tempfile::TempDir,
    /// `<root>/datafusion/sqllogictest/test_files`.
    test_files: PathBuf,
    /// Listed failures: `file:line` to reason.
    known: BTreeMap<String, String>,
}

/// Totals over the conformance files that ran.
#[derive(Debug, Default)]
pub struct Totals {
    /// Files run.
    pub files: usize,
    /// Files with no failing record.
    pub clean_files: usize,
    /// Records run.
    pub records: usize,
    /// Records passed.
    pub passed: usize,
    /// Every record place seen, to find stale entries of the list.
    pub seen: BTreeSet<String>,
}

impl Suite {
    /// Copy the suite and make its `datafusion/sqllogictest` the current
    /// directory. Call before any test thread starts.
    pub fn set_up(package_root: &Path) -> Result<Self, String> {
        let shared = package_root.join(SHARED_SUITE);
        if !shared.is_dir() {
            return Err(format!(
                "the conformance suite is missing: expected {} (a copy of shared/ beside the checkout)",
                shared.display()
            ));
        }
        let root = tempfile::Builder::new()
            .prefix("sluice-conformance-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        copy_dir(&shared, root.path()).map_err(|e| format!("cannot copy {}: {e}", shared.display()))?;
        let sqllogictest_dir = root.path().join("datafusion").join("sqllogictest");
        std::env::set_current_dir(&sqllogictest_dir)
            .map_err(|e| format!("cannot enter {}: {e}", sqllogictest_dir.display()))?;
        let known = read_known_failures(&package_root.join(KNOWN_FAILURES))?;
        Ok(Self {
            test_files: sqllogictest_dir.join("test_files"),
            root,
            known,
        })
    }

    /// Every `.slt` file of the suite, relative to `test_files/`, sorted.
    pub fn files(&self) -> Result<Vec<String>, String> {
        let mut files = Vec::new();
        collect_slt_files(&self.test_files, &mut files).map_err(|e| e.to_string())?;
        let mut names: Vec<String> = files
            .iter()
            .map(|f| super::run::relative(f, &self.test_files))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The listed failures.
    pub fn known(&self) -> &BTreeMap<String, String> {
        &self.known
    }

    /// Run one file and check its failures against the list.
    pub async fn run(&self, name: &str, totals: &Mutex<Totals>) -> Result<(), String> {
        let path = self.test_files.join(name);
        fresh_scratch_dir(&self.test_files.join("scratch"), &path)?;

        let engine = Arc::new(Engine::with_config(
            SessionConfig::new().with_target_partitions(4),
        ));
        engine
            .context()
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .set("sluice.explain_executor", "false")
            .map_err(|e| e.to_string())?;
        let fixture_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let file_name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        fixtures::register_for(engine.context(), &file_name, fixture_dir.path())
            .await
            .map_err(|e| format!("cannot register the fixtures of {name}: {e}"))?;
        let config_before = config_entries(&engine);

        // Like upstream: the root as an object-store path (no leading `/`).
        let mut paths = PathTokens::default();
        paths.add(
            self.root.path().to_string_lossy().trim_start_matches('/'),
            "WORKSPACE_ROOT",
        );
        let report = run_file(SltFile {
            path: &path,
            suite_dir: &self.test_files,
            engine: Arc::clone(&engine),
            paths,
            vars: Vec::new(),
        })
        .await?;

        let mut failures = report.failures;
        let changed = changed_config(&config_before, &config_entries(&engine));
        if !changed.is_empty() {
            failures.push((
                format!("{name}:end"),
                format!("the file left the configuration modified: {changed}"),
            ));
        }
        let failed: BTreeSet<&str> = failures.iter().map(|(place, _)| place.as_str()).collect();
        let mut places = report.places;
        places.push(format!("{name}:end"));
        {
            let mut totals = totals.lock().map_err(|e| e.to_string())?;
            totals.files += 1;
            totals.clean_files += usize::from(failures.is_empty());
            totals.records += report.ran;
            totals.passed += report.passed;
            totals.seen.extend(places.iter().cloned());
        }

        let unexpected: Vec<&(String, String)> = failures
            .iter()
            .filter(|(place, _)| !self.known.contains_key(place))
            .collect();
        let fixed: Vec<&String> = places
            .iter()
            .filter(|place| self.known.contains_key(*place) && !failed.contains(place.as_str()))
            .collect();
        if unexpected.is_empty() && fixed.is_empty() {
            return Ok(());
        }
        let mut message = String::new();
        if !unexpected.is_empty() {
            message.push_str(&format!(
                "{} record(s) failed that {KNOWN_FAILURES} does not list:\n\n",
                unexpected.len()
            ));
            for (place, error) in unexpected.iter().take(10) {
                message.push_str(&format!("--- {place}\n{error}\n"));
            }
            if unexpected.len() > 10 {
                message.push_str(&format!("... and {} more\n", unexpected.len() - 10));
            }
        }
        if !fixed.is_empty() {
            message.push_str(&format!(
                "\nthese records pass now: remove them from {KNOWN_FAILURES}:\n"
            ));
            for place in fixed {
                message.push_str(&format!("  {place}\n"));
            }
        }
        Err(message)
    }
}

/// The session's settings as `key=value`, to spot a file that leaves them changed.
fn config_entries(engine: &Engine) -> BTreeMap<String, Option<String>> {
    engine
        .context()
        .state()
        .config()
        .options()
        .entries()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect()
}

fn changed_config(
    before: &BTreeMap<String, Option<String>>,
    after: &BTreeMap<String, Option<String>>,
) -> String {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let show = |v: Option<&Option<String>>| v.cloned().flatten().unwrap_or_else(|| "NULL".into());
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| format!("{k}: {} -> {}", show(before.get(k)), show(after.get(k))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `file:line  reason` lines; `#` comments and blank lines are ignored.
fn read_known_failures(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut known = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (place, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if reason.trim().is_empty() {
            return Err(format!(
                "{}:{}: give a reason after '{place}'",
                path.display(),
                i + 1
            ));
        }
        if known
            .insert(place.to_string(), reason.trim().to_string())
            .is_some()
        {
            return Err(format!("{}:{}: '{place}' is listed twice", path.display(), i + 1));
        }
    }
    Ok(known)
}

/// Every `*.slt` file under `dir` (not `*.slt.part`, which files include).
pub fn collect_slt_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "scratch") {
                collect_slt_files(&path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "slt") {
            out.push(path);
        }
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

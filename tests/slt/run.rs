//! Running one `.slt` file record by record, keeping every record's outcome
//! (rather than stopping at the first failure), as DataFusion's runner does.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sluice::Engine;
use sqllogictest::{Record, RecordOutput, Runner, parse_file, strict_column_validator};

use super::db::SluiceDb;
use super::normalize::{PathTokens, SltColumnType, normalize_expected, validate};

/// How a file went.
#[derive(Debug, Default)]
pub struct FileReport {
    /// `statement` and `query` records that ran.
    pub ran: usize,
    /// Those that passed.
    pub passed: usize,
    /// Records skipped by `skipif`/`onlyif`.
    pub skipped: usize,
    /// Failures: the record's place (`file:line`, the file relative to the
    /// suite directory) and the error.
    pub failures: Vec<(String, String)>,
    /// The place of every record that ran.
    pub places: Vec<String>,
}

/// A file to run.
pub struct SltFile<'a> {
    /// The `.slt` file.
    pub path: &'a Path,
    /// The directory that record places are written relative to.
    pub suite_dir: &'a Path,
    /// The session to run it on.
    pub engine: Arc<Engine>,
    /// Directories shown as tokens in results.
    pub paths: PathTokens,
    /// Variables for `control substitution on` (`$name`).
    pub vars: Vec<(String, String)>,
}

/// Run every record of the file.
pub async fn run_file(file: SltFile<'_>) -> Result<FileReport, String> {
    let records = parse_file::<SltColumnType>(file.path).map_err(|e| e.to_string())?;
    let engine = Arc::clone(&file.engine);
    let paths = file.paths.clone();
    let mut runner = Runner::new(move || {
        let db = SluiceDb::new(Arc::clone(&engine), paths.clone());
        async move { Ok(db) }
    });
    runner.with_column_validator(strict_column_validator);
    runner.with_normalizer(normalize_expected);
    runner.with_validator(validate);
    for (key, value) in file.vars {
        runner.set_var(key, value);
    }

    let mut report = FileReport::default();
    for record in records {
        let place = match &record {
            Record::Halt { .. } => break,
            Record::Statement { loc, .. } | Record::Query { loc, .. } => Some(format!(
                "{}:{}",
                relative(Path::new(loc.file()), file.suite_dir),
                loc.line()
            )),
            _ => None,
        };
        let outcome = runner.run_async(record).await;
        let Some(place) = place else {
            if let Err(e) = outcome {
                return Err(format!("{e}"));
            }
            continue;
        };
        if !matches!(outcome, Ok(RecordOutput::Nothing)) {
            report.places.push(place.clone());
        }
        match outcome {
            Ok(RecordOutput::Nothing) => report.skipped += 1,
            Ok(_) => {
                report.ran += 1;
                report.passed += 1;
            }
            Err(e) => {
                report.ran += 1;
                report.failures.push((place, e.to_string()));
            }
        }
    }
    runner.shutdown_async().await;
    Ok(report)
}

/// `path` relative to `base`, with `.` components dropped (`./join.slt.part`).
pub fn relative(path: &Path, base: &Path) -> String {
    let path: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let base: PathBuf = base
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    path.strip_prefix(&base)
        .unwrap_or(&path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// `<parent>/<stem of file>/`, emptied (created if missing).
pub fn fresh_scratch_dir(parent: &Path, file: &Path) -> Result<PathBuf, String> {
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
    let dir = parent.join(stem.unwrap_or_default());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

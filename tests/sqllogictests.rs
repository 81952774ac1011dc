//! The sqllogictest harness: every `sqllogictests/**/*.slt` file, and
//! DataFusion's conformance suite, run through `sluice::Engine`.
//!
//! Each file is one test (`cargo test --test sqllogictests -- <filter>`), on a
//! fresh engine:
//! * `sluice::<name>`: our own files, on `Engine::new()`. Each gets an empty
//!   scratch directory `sqllogictests/scratch/<stem>/`, which the file names
//!   `$SCRATCH` after `control substitution on`; results show it as `$SCRATCH`.
//! * `conformance::<name>`: see `slt/conformance.rs`. A summary of passed
//!   records and files is printed at the end.

mod slt;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Failed, Trial};
use sluice::Engine;

use slt::conformance::{KNOWN_FAILURES, Suite, Totals, collect_slt_files};
use slt::normalize::PathTokens;
use slt::run::{SltFile, fresh_scratch_dir, run_file};

/// Our own files, relative to the package root.
const OWN_SUITE: &str = "sqllogictests";

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let package_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => Arc::new(runtime),
        Err(e) => {
            eprintln!("cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut trials = own_trials(&package_root, &runtime);
    let totals = Arc::new(Mutex::new(Totals::default()));
    // Sets the current directory: must happen before any test thread starts.
    let suite = Suite::set_up(&package_root).map(Arc::new);
    let conformance = suite
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|suite| Ok((suite, suite.files()?)));
    match conformance {
        Ok((suite, names)) => {
            trials.extend(names.into_iter().map(|name| {
                let suite = Arc::clone(suite);
                let totals = Arc::clone(&totals);
                let runtime = Arc::clone(&runtime);
                let test_name = format!("conformance::{}", name.trim_end_matches(".slt"));
                Trial::test(test_name, move || {
                    runtime.block_on(suite.run(&name, &totals)).map_err(Failed::from)
                })
            }));
        }
        Err(e) => trials.push(Trial::test("conformance::set_up", move || Err(Failed::from(e)))),
    }

    let every_conformance_file = args.filter.is_none() && args.skip.is_empty() && !args.list;
    let conclusion = libtest_mimic::run(&args, trials);
    if args.list {
        return conclusion.exit_code();
    }
    let stale = report_totals(&totals, suite.as_deref().ok(), every_conformance_file);
    if stale {
        return ExitCode::FAILURE;
    }
    conclusion.exit_code()
}

/// One trial per own `.slt` file.
fn own_trials(package_root: &Path, runtime: &Arc<tokio::runtime::Runtime>) -> Vec<Trial> {
    let suite_dir = package_root.join(OWN_SUITE);
    let mut files = Vec::new();
    if let Err(e) = collect_slt_files(&suite_dir, &mut files) {
        let message = format!("cannot list {}: {e}", suite_dir.display());
        return vec![Trial::test("sluice::list", move || Err(Failed::from(message)))];
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = slt::run::relative(&path, &suite_dir);
            let runtime = Arc::clone(runtime);
            let suite_dir = suite_dir.clone();
            Trial::test(format!("sluice::{}", name.trim_end_matches(".slt")), move || {
                runtime
                    .block_on(run_own_file(&path, &suite_dir))
                    .map_err(Failed::from)
            })
        })
        .collect()
}

/// Run one of our files on a fresh default engine with an empty scratch dir.
async fn run_own_file(path: &Path, suite_dir: &Path) -> Result<(), String> {
    let scratch = fresh_scratch_dir(&suite_dir.join("scratch"), path)?;
    let scratch = scratch.to_string_lossy().into_owned();
    let mut paths = PathTokens::default();
    paths.add(&scratch, "$SCRATCH");
    paths.add(scratch.trim_start_matches('/'), "$SCRATCH");

    let report = run_file(SltFile {
        path,
        suite_dir,
        engine: Arc::new(Engine::new()),
        paths,
        vars: vec![("SCRATCH".to_string(), scratch)],
    })
    .await?;
    if report.failures.is_empty() {
        return Ok(());
    }
    let mut message = format!("{} of {} records failed:\n\n", report.failures.len(), report.ran);
    for (place, error) in &report.failures {
        message.push_str(&format!("--- {place}\n{error}\n"));
    }
    Err(message)
}

/// Print the conformance summary. Returns whether the known-failures list
/// has entries for records that no longer exist (checked only when every
/// conformance file ran).
fn report_totals(totals: &Mutex<Totals>, suite: Option<&Suite>, every_file_ran: bool) -> bool {
    let Ok(totals) = totals.lock() else {
        return false;
    };
    if totals.files == 0 {
        return false;
    }
    println!(
        "conformance: {}/{} records passed, {}/{} files fully passing",
        totals.passed, totals.records, totals.clean_files, totals.files
    );
    let Some(suite) = suite.filter(|_| every_file_ran) else {
        return false;
    };
    let stale: Vec<&String> = suite
        .known()
        .keys()
        .filter(|place| !totals.seen.contains(*place))
        .collect();
    for place in &stale {
        println!("{KNOWN_FAILURES} lists {place}, which is not a record of the suite: remove it");
    }
    !stale.is_empty()
}

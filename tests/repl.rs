//! The interactive shell, driven through a pseudo-terminal with rexpect:
//! prompt, multi-line statements, backslash commands, history, and Ctrl-C
//! that cancels a running query but not the shell.

use std::path::Path;
use std::process::Command;

use rexpect::error::Error;
use rexpect::session::{PtySession, spawn_command};

// rexpect reads the terminal byte by byte as chars, so the table's UTF-8 box
// characters arrive mangled: patterns match cell text and `[^\n]*` between.

/// Generous: a debug build plans and runs queries slowly on a busy machine.
const TIMEOUT_MS: u64 = 30_000;
const PROMPT: &str = "sluice> ";

/// The shell, started with no arguments on a terminal, with its history in
/// `data_home` and the banner read.
fn shell(data_home: &Path) -> Result<PtySession, Error> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("XDG_DATA_HOME", data_home)
        .env("HOME", data_home)
        .env("TERM", "xterm")
        .env_remove("RUST_LOG");
    let mut session = spawn_command(command, Some(TIMEOUT_MS))?;
    session.exp_string("type \\help for help")?;
    session.exp_string(PROMPT)?;
    Ok(session)
}

/// Create the table `products` over testdata/products.parquet.
fn create_products(s: &mut PtySession) -> Result<(), Error> {
    s.send_line(
        "CREATE TABLE products (product_id BIGINT, name VARCHAR, category VARCHAR, price DOUBLE) \
         WITH ('connector' = 'file', 'path' = 'testdata/products.parquet', 'format' = 'parquet');",
    )?;
    // The echo redraws the prompt while the line is typed: wait for the end
    // of the statement's echo, then for the next prompt.
    s.exp_string("'format' = 'parquet');")?;
    s.exp_string(PROMPT)?;
    Ok(())
}

/// Send `\q` and wait for the shell to end.
fn quit(mut session: PtySession) -> Result<String, Error> {
    session.send_line("\\q")?;
    session.exp_eof()
}

#[test]
fn multi_line_query_commands_and_history() -> Result<(), Error> {
    let home = tempfile::tempdir().expect("a temp dir");
    let mut s = shell(home.path())?;

    // A statement over two lines runs once it ends with ';'; the second
    // line has the continuation prompt.
    s.send_line("SELECT 41 + 1 AS answer,")?;
    s.exp_string("   ...> ")?;
    s.send_line("'two lines' AS how;")?;
    s.exp_regex(r"answer [^\n]* how")?;
    s.exp_regex(r"42 [^\n]* two lines")?;
    s.exp_regex(r"1 row in \d+\.\d+ s")?;
    s.exp_string(PROMPT)?;

    // \d lists a table once it exists, \d NAME describes it.
    create_products(&mut s)?;
    s.send_line("\\d")?;
    s.exp_regex(r"public [^\n]* products ")?;
    s.exp_string(PROMPT)?;
    s.send_line("\\d products")?;
    // SQL's names for the types, not Arrow's.
    s.exp_regex(r"product_id [^\n]* BIGINT")?;
    s.exp_regex(r"category [^\n]* VARCHAR")?;
    s.exp_string(PROMPT)?;

    // \format and \maxrows change the output from inside the shell.
    s.send_line("\\format json")?;
    s.exp_string("Format is json.")?;
    s.exp_string(PROMPT)?;
    s.send_line("SELECT name FROM products ORDER BY product_id LIMIT 2;")?;
    s.exp_regex(r#"\{"name":"[^"]+"\}"#)?;
    s.exp_string(PROMPT)?;
    s.send_line("\\format table")?;
    s.exp_string("Format is table.")?;
    s.exp_string(PROMPT)?;
    s.send_line("\\maxrows 3")?;
    s.exp_string("at most 3 rows")?;
    s.exp_string(PROMPT)?;
    s.send_line("SELECT product_id FROM products;")?;
    s.exp_string("(197 more rows not shown")?;
    s.exp_string(PROMPT)?;
    s.send_line("\\format yaml")?;
    s.exp_string("\\format takes table, csv, json or changelog, not 'yaml'")?;
    s.exp_string(PROMPT)?;

    // \timing toggles the time under results.
    s.send_line("\\timing")?;
    s.exp_string("Timing is off.")?;
    s.send_line("SELECT count(*) AS n FROM products;")?;
    s.exp_regex(r" 200 ")?;
    let (before, _) = s.exp_regex(r"\n1 row\r?\n")?;
    assert!(!before.contains(" in "), "no time with timing off: {before:?}");
    s.exp_string(PROMPT)?;
    s.send_line("\\timing")?;
    s.exp_string("Timing is on.")?;
    s.exp_string(PROMPT)?;

    // Help, an unknown command, and an error that keeps the shell alive.
    s.send_line("\\help")?;
    s.exp_string("\\q              quit")?;
    s.exp_string("sluice.result.mode")?;
    s.exp_string("tableau")?;
    s.exp_string(PROMPT)?;
    s.send_line("\\nope")?;
    s.exp_string("unknown command '\\nope'")?;
    s.exp_string(PROMPT)?;
    s.send_line("SELECT * FROM missing_table;")?;
    s.exp_string("Error: <repl>:1:15:")?;
    s.exp_string(PROMPT)?;
    s.send_line("SELECT 'still here' AS alive;")?;
    s.exp_string("still here")?;
    s.exp_string(PROMPT)?;

    quit(s)?;
    let history = home.path().join("sluice").join("history.txt");
    let text = std::fs::read_to_string(&history).expect("the history file was written");
    assert!(text.contains("SELECT 'still here' AS alive;"), "{text}");
    assert!(text.contains("\\timing"), "{text}");
    Ok(())
}

#[test]
fn tab_completes_columns_and_functions() -> Result<(), Error> {
    let home = tempfile::tempdir().expect("a temp dir");
    let mut s = shell(home.path())?;
    create_products(&mut s)?;
    // A column of the table: `categ` becomes `category`, or the query fails.
    s.send("SELECT count(DISTINCT categ")?;
    s.send("\t")?;
    s.send_line(") AS kinds FROM products;")?;
    s.exp_string(") AS kinds FROM products;")?;
    s.exp_regex(r"kinds [^\n]*\n[^\n]*\n[^\n]* \d+ ")?;
    s.exp_regex(r"1 row")?;
    s.exp_string(PROMPT)?;
    // A function, with its parenthesis: `uppe` becomes `upper(`.
    s.send("SELECT uppe")?;
    s.send("\t")?;
    s.send_line("'done') AS shout;")?;
    s.exp_regex(r"shout")?;
    s.exp_regex(r"DONE")?;
    s.exp_string(PROMPT)?;
    quit(s)?;
    Ok(())
}

#[test]
fn describe_shows_sql_types_with_their_precision() -> Result<(), Error> {
    let home = tempfile::tempdir().expect("a temp dir");
    let mut s = shell(home.path())?;
    s.send_line(
        "CREATE TABLE g (k INT, amount DECIMAL(10, 2), ts TIMESTAMP(3), d DATE) WITH ('connector' = 'datagen');",
    )?;
    s.exp_string("'datagen');")?;
    s.exp_string(PROMPT)?;
    s.send_line("\\d g")?;
    s.exp_regex(r"k [^\n]* INT")?;
    s.exp_regex(r"amount [^\n]* DECIMAL\(10, 2\)")?;
    s.exp_regex(r"ts [^\n]* TIMESTAMP\(3\)")?;
    s.exp_regex(r"d [^\n]* DATE")?;
    s.exp_string(PROMPT)?;
    quit(s)?;
    Ok(())
}

#[test]
fn include_runs_a_file() -> Result<(), Error> {
    let home = tempfile::tempdir().expect("a temp dir");
    let script = home.path().join("inc.sql");
    std::fs::write(&script, "SELECT 'from a file' AS origin;\n").expect("write the script");
    let mut s = shell(home.path())?;
    s.send_line(&format!("\\i {}", script.display()))?;
    s.exp_string("from a file")?;
    s.exp_string(PROMPT)?;
    // Tab completes the path: the one file there that starts so.
    s.send(&format!("\\i {}/in", home.path().display()))?;
    s.send("\t")?;
    s.send_line("")?;
    s.exp_string("from a file")?;
    s.exp_string(PROMPT)?;
    s.send_line("\\i no/such/file.sql")?;
    s.exp_string("cannot read 'no/such/file.sql'")?;
    s.exp_string(PROMPT)?;
    quit(s)?;
    Ok(())
}

#[test]
fn ctrl_c_cancels_a_running_query_and_the_shell_goes_on() -> Result<(), Error> {
    let home = tempfile::tempdir().expect("a temp dir");
    let mut s = shell(home.path())?;
    // A second cancellation works as well as the first.
    for _ in 0..2 {
        cancel_a_long_query(&mut s)?;
        s.send_line("SELECT 'after cancel' AS next;")?;
        s.exp_string("after cancel")?;
        s.exp_string(PROMPT)?;
    }

    // Ctrl-C at the prompt clears the line; Ctrl-D leaves.
    s.send("SELECT 'never run'")?;
    s.send_control('c')?;
    s.exp_string(PROMPT)?;
    s.send_line("SELECT 'typed again' AS t;")?;
    s.exp_string("typed again")?;
    s.exp_string(PROMPT)?;
    s.send_control('d')?;
    let rest = s.exp_eof()?;
    assert!(!rest.contains("panicked"), "{rest:?}");
    Ok(())
}

/// Start a query that would run for hours, interrupt it with Ctrl-C, and
/// expect the shell to say so and prompt again.
fn cancel_a_long_query(s: &mut PtySession) -> Result<(), Error> {
    s.send_line("SELECT count(*) FROM generate_series(1, 10000000000);")?;
    // Let the query start before interrupting it.
    std::thread::sleep(std::time::Duration::from_millis(1_000));
    s.send_control('c')?;
    s.exp_string("Query cancelled.")?;
    s.exp_string(PROMPT)?;
    Ok(())
}

#[test]
fn a_continuous_query_shows_each_window_and_ctrl_c_stops_it() -> Result<(), Error> {
    let home = tempfile::tempdir().expect("a temp dir");
    let mut s = shell(home.path())?;
    // An endless generator, slowed to 2,000 bids a second of wall clock and
    // 1,000 of event time: a 1 s window closes about every half second.
    s.send_line(
        "CREATE TABLE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP(3), \
         WATERMARK FOR date_time AS date_time) \
         WITH ('connector' = 'nexmark', 'rate' = '2000', 'events.per.second' = '1000');",
    )?;
    s.exp_string(PROMPT)?;
    // Flink's tableau mode: rows as they come (the live table is in tests/live.rs).
    s.send_line("SET 'sluice.result.mode' = 'tableau';")?;
    s.exp_string("'tableau';")?;
    s.exp_string(PROMPT)?;
    s.send_line(
        "SELECT window_start, count(*) AS bids FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '1' SECOND)) \
         GROUP BY window_start, window_end;",
    )?;
    // Two windows come out while the query runs, each as its own table.
    let (first, _) = s.exp_regex(r"2015-07-15T00:00:00 [^\n]*\d")?;
    let (second, _) = s.exp_regex(r"2015-07-15T00:00:01 [^\n]*\d")?;
    assert!(
        !first.contains("\x1b[J") && !second.contains("\x1b[J"),
        "not redrawn in place"
    );
    assert!(second.contains("window_start"), "a header per table: {second:?}");
    s.send_control('c')?;
    s.exp_string("Query cancelled after")?;
    s.exp_string(PROMPT)?;
    s.send_line("SELECT 'still here' AS after;")?;
    s.exp_string("still here")?;
    s.exp_string(PROMPT)?;
    quit(s)?;
    Ok(())
}

#[test]
fn a_long_batch_query_draws_its_progress_bar_on_time() -> Result<(), Error> {
    // Enough rows to keep every worker of the runtime busy for seconds.
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut csv = String::from("k,v\n");
    for i in 0..1_500_000u64 {
        csv.push_str(&format!("{},{i}\n", i % 97));
    }
    std::fs::write(dir.path().join("big.csv"), csv).expect("write");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.current_dir(dir.path()).env("TERM", "xterm").args([
        "-e",
        "CREATE TABLE b (k BIGINT, v BIGINT) WITH ('connector' = 'file', 'path' = 'big.csv', 'format' = 'csv');
         SELECT k, sum(v) FROM b GROUP BY k ORDER BY k LIMIT 1",
    ]);
    let mut session = spawn_command(command, Some(120_000))?;
    let screen = session.exp_eof()?;
    // Each drawing is `\r\x1b[K[###...]  N% 0 of 2 file parts (15 MB) · 1.3 s · ...`.
    let bars: Vec<&str> = screen.split('\r').filter(|d| d.contains("file parts")).collect();
    let elapsed: Vec<f64> = bars
        .iter()
        .filter_map(|bar| {
            // The time follows the total's `)` and a separator (its UTF-8
            // arrives mangled, see above).
            let (_, after) = bar.split_once(") ")?;
            let after = after.trim_start_matches(|c: char| !c.is_ascii_digit());
            after.split_once(" s ")?.0.parse().ok()
        })
        .collect();
    assert!(
        elapsed.len() >= 2,
        "the bar is drawn while the query runs: {screen:?}"
    );
    // First drawn after a second (as it should), not once the workers let
    // a timer through; then redrawn as time passes, not in bursts of the
    // same numbers.
    assert!(elapsed[0] < 4.0, "first drawn at {} s: {elapsed:?}", elapsed[0]);
    let repeats = elapsed
        .windows(3)
        .filter(|w| w[0] == w[1] && w[1] == w[2])
        .count();
    assert_eq!(repeats, 0, "the same time drawn over and over: {elapsed:?}");
    Ok(())
}

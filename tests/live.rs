//! The shell's live table, driven through a pseudo-terminal: what the
//! terminal shows (bytes replayed into a vt100 screen), not just what was
//! written, so "updated in place" means the screen holds one table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rexpect::error::Error;
use rexpect::session::{PtySession, spawn_command};

const TIMEOUT_MS: u64 = 30_000;
const PROMPT: &str = "sluice> ";

/// The shell on a terminal `cols` × `rows`, and the screen it draws.
struct Shell {
    session: PtySession,
    screen: vt100::Parser,
    /// Where the shell's terminal is (`/dev/pts/N`), to resize it.
    tty: PathBuf,
}

impl Shell {
    fn start(home: &Path, cols: u16, rows: u16, lang: &str) -> Result<Self, Error> {
        let tty = home.join("tty");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "tty > '{}'; stty cols {cols} rows {rows}; exec '{}'",
                tty.display(),
                env!("CARGO_BIN_EXE_sluice")
            ))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("XDG_DATA_HOME", home)
            .env("HOME", home)
            .env("TERM", "xterm")
            .env("LANG", lang)
            .env_remove("LC_ALL")
            .env_remove("LC_CTYPE")
            .env_remove("RUST_LOG");
        let session = spawn_command(command, Some(TIMEOUT_MS))?;
        let mut shell = Self {
            session,
            screen: vt100::Parser::new(nonzero(rows), nonzero(cols), 0),
            tty,
        };
        shell.expect("type \\help for help")?;
        shell.expect(PROMPT)?;
        Ok(shell)
    }

    /// Read up to `needle`, putting what was read on the screen.
    fn expect(&mut self, needle: &str) -> Result<String, Error> {
        let before = self.session.exp_string(needle)?;
        self.show(&before);
        self.show(needle);
        Ok(before)
    }

    /// Wait `wait`, then read whatever came, onto the screen.
    fn settle(&mut self, wait: Duration) -> Result<(), Error> {
        std::thread::sleep(wait);
        // Everything read so far (rexpect's one-char read splits the chars
        // it made of bytes above 0x7f); a running query redraws its status
        // a few times a second, so there is always some.
        let (before, all) = self.session.exp_regex(r"[\s\S]+")?;
        self.show(&before);
        self.show(&all);
        Ok(())
    }

    /// rexpect hands bytes over as chars (one per byte): back to bytes.
    fn show(&mut self, text: &str) {
        let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        self.screen.process(&bytes);
    }

    fn contents(&self) -> String {
        self.screen.screen().contents()
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        let tty = std::fs::read_to_string(&self.tty).expect("the shell wrote its tty");
        let status = Command::new("stty")
            .arg("-F")
            .arg(tty.trim())
            .args(["cols", &cols.to_string(), "rows", &rows.to_string()])
            .status()
            .expect("stty runs");
        assert!(status.success());
        self.screen.set_size(nonzero(rows), nonzero(cols));
    }

    fn run(&mut self, sql: &str) -> Result<(), Error> {
        self.session.send_line(sql)?;
        Ok(())
    }

    /// Run `sql` (whose echo ends with `echo_end`) and wait for the prompt.
    fn statement(&mut self, sql: &str, echo_end: &str) -> Result<(), Error> {
        self.run(sql)?;
        self.expect(echo_end)?;
        self.expect(PROMPT)?;
        Ok(())
    }

    /// Ctrl-C a running query: its summary, then the prompt.
    fn stop(&mut self) -> Result<(), Error> {
        self.session.send_control('c')?;
        self.expect("Query cancelled after")?;
        self.expect(PROMPT)?;
        Ok(())
    }

    fn pid(&self) -> i32 {
        self.session.process.child_pid.as_raw()
    }
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("a size above zero")
}

/// The number after `label` in the status line on `screen` (`in 12,000`).
fn count(screen: &str, label: &str) -> Option<u64> {
    let line = screen.lines().rev().find(|l| l.contains("rows/s"))?;
    let rest = &line[line.find(label)? + label.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    digits.parse().ok()
}

/// Table header lines (`| window_start |`) on `screen`: the echoed SQL
/// names the column too.
fn headers(screen: &str) -> usize {
    screen
        .lines()
        .filter(|l| (l.starts_with('|') || l.starts_with('│')) && l.contains("window_start"))
        .count()
}

/// Lines of `screen` that contain `text`.
fn lines_with(screen: &str, text: &str) -> usize {
    screen.lines().filter(|l| l.contains(text)).count()
}

/// CPU time (user + system, clock ticks) the process has used.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the shell's stat");
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a command name") + 2..]
        .split(' ')
        .collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

const BIDS: &str = "CREATE TABLE bid (auction BIGINT, price BIGINT, date_time TIMESTAMP(3), \
     WATERMARK FOR date_time AS date_time) \
     WITH ('connector' = 'nexmark', 'rate' = '2000', 'events.per.second' = '1000');";

#[test]
fn windows_append_to_one_table_in_place_under_a_status_line() -> Result<(), Error> {
    let home = tempfile::tempdir().expect("a temp dir");
    let mut s = Shell::start(home.path(), 120, 30, "C.UTF-8")?;
    s.statement(BIDS, "1000');")?;
    // 2,000 events a second of wall clock, 1,000 of event time: a 1 s window
    // closes about every half second.
    s.run(
        "SELECT window_start, count(*) AS bids FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '1' SECOND)) \
         GROUP BY window_start, window_end;",
    )?;
    s.expect("window_end;")?;
    s.expect("2015-07-15T00:00:01")?;
    s.settle(Duration::from_millis(600))?;
    let first = s.contents();
    s.settle(Duration::from_millis(1_500))?;
    let second = s.contents();
    // One table, drawn over itself: one header, each window once.
    assert_eq!(headers(&first), 1, "{first}");
    assert_eq!(headers(&second), 1, "{second}");
    assert_eq!(lines_with(&second, "2015-07-15T00:00:01"), 1, "{second}");
    // Later windows were added to it, and the counts rose.
    assert!(
        lines_with(&second, "2015-07-15T00:00") > lines_with(&first, "2015-07-15T00:00"),
        "{first}\n---\n{second}"
    );
    let (in1, in2) = (count(&first, " in "), count(&second, " in "));
    assert!(in1.is_some() && in2 > in1, "{first}\n---\n{second}");
    assert!(count(&second, " out ") > count(&first, " out "), "{second}");
    // The window the latest rows are in is open: its group is in state.
    assert!(count(&second, " state ").is_some_and(|n| n >= 1), "{second}");
    assert!(second.contains("watermark 2015-07-15 00:00:0"), "{second}");
    assert!(second.contains("lag "), "{second}");

    // Ctrl-C: the table stays, a summary under it, the prompt again.
    s.stop()?;
    let after = s.contents();
    assert_eq!(headers(&after), 1, "{after}");
    assert!(after.contains("rows in, "), "{after}");
    s.run("SELECT 'still here' AS after;")?;
    s.expect("still here")?;
    s.expect(PROMPT)?;
    s.run("\\q")?;
    s.session.exp_eof()?;
    Ok(())
}

#[test]
fn an_updating_result_is_folded_and_ctrl_c_leaves_nothing_running() -> Result<(), Error> {
    let home = tempfile::tempdir().expect("a temp dir");
    let mut s = Shell::start(home.path(), 100, 30, "C.UTF-8")?;
    s.statement(BIDS, "1000');")?;
    // A 1 min window of event time is open for 30 s of wall clock: EMIT
    // CHANGES updates its one row.
    s.run(
        "SELECT window_start, count(*) AS bids FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '1' MINUTE)) \
         GROUP BY window_start, window_end EMIT CHANGES;",
    )?;
    s.expect("EMIT CHANGES;")?;
    s.expect("2015-07-15T00:00:00")?;
    s.settle(Duration::from_millis(800))?;
    let first = s.contents();
    s.settle(Duration::from_millis(1_200))?;
    let second = s.contents();
    // The window's row, once, with a count that rose in place.
    assert_eq!(lines_with(&first, "2015-07-15T00:00:00"), 1, "{first}");
    assert_eq!(lines_with(&second, "2015-07-15T00:00:00"), 1, "{second}");
    let bids = |screen: &str| -> u64 {
        let line = screen
            .lines()
            .find(|l| l.contains("2015-07-15T00:00:00"))
            .expect("the window's row");
        line.split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())
            .and_then(|n| n.parse().ok())
            .expect("a count")
    };
    assert!(bids(&second) > bids(&first), "{first}\n---\n{second}");
    assert!(
        !second.contains("+U") && !second.contains("op "),
        "no changelog column: {second}"
    );
    s.stop()?;

    // An updating GROUP BY over the stream (no window): four keys, each row
    // updated where it stands, its count rising; its groups are in state.
    s.run("SELECT auction % 4 AS k, count(*) AS bids FROM bid GROUP BY auction % 4;")?;
    s.expect("GROUP BY auction % 4;")?;
    s.expect("rows/s")?;
    s.settle(Duration::from_millis(1_200))?;
    let first = s.contents();
    s.settle(Duration::from_millis(1_200))?;
    let second = s.contents();
    let count_of = |screen: &str, key: &str| -> Option<u64> {
        screen
            .lines()
            .filter(|l| l.starts_with('│') || l.starts_with('|'))
            .map(|l| {
                l.split(['│', '┆', '|'])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect::<Vec<_>>()
            })
            .find(|cells| cells.first() == Some(&key))
            .and_then(|cells| cells.get(1).and_then(|n| n.parse().ok()))
    };
    for key in ["0", "1", "2", "3"] {
        let rows = second
            .lines()
            .filter(|l| {
                (l.starts_with('│') || l.starts_with('|')) && l.split_whitespace().nth(1) == Some(key)
            })
            .count();
        assert_eq!(rows, 1, "key {key} once: {second}");
    }
    assert!(
        count_of(&second, "1") > count_of(&first, "1"),
        "{first}\n---\n{second}"
    );
    assert!(count(&second, " state ").is_some_and(|n| n == 4), "{second}");
    s.stop()?;

    // The changelog mode shows the changes as they come.
    s.statement("SET 'sluice.result.mode' = 'changelog';", "'changelog';")?;
    s.run(
        "SELECT window_start, count(*) AS bids FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '1' MINUTE)) \
         GROUP BY window_start, window_end EMIT CHANGES;",
    )?;
    s.expect("EMIT CHANGES;")?;
    s.expect("+U")?;
    s.settle(Duration::from_millis(800))?;
    let changes = s.contents();
    assert!(lines_with(&changes, "2015-07-15T00:00:00") > 1, "{changes}");
    s.stop()?;
    s.statement("SET 'sluice.result.mode' = 'table';", "'table';")?;

    // A query that reads as fast as it can and never emits a row: after
    // Ctrl-C nothing of it may go on using the CPU.
    s.statement(
        "CREATE TABLE fast (auction BIGINT, price BIGINT, date_time TIMESTAMP(3)) \
         WITH ('connector' = 'nexmark', 'table' = 'bid');",
        "'bid');",
    )?;
    s.run("SELECT auction FROM fast WHERE price < 0;")?;
    s.expect("price < 0;")?;
    s.expect("rows/s")?;
    s.settle(Duration::from_millis(1_000))?;
    let busy = s.contents();
    assert!(count(&busy, " in ").is_some_and(|n| n > 0), "{busy}");
    let before = cpu_ticks(s.pid());
    std::thread::sleep(Duration::from_millis(1_000));
    let while_running = cpu_ticks(s.pid()) - before;
    s.stop()?;
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(s.pid());
    std::thread::sleep(Duration::from_millis(1_000));
    let idle = cpu_ticks(s.pid()) - before;
    // Clock ticks are 1/100 s: running, it used about a core; stopped, nearly nothing.
    assert!(
        while_running >= 10,
        "the query was busy (a shared machine may give it less than a core): {while_running} ticks in 1 s"
    );
    assert!(idle <= 5, "{idle} ticks of CPU in 1 s after Ctrl-C");
    s.run("\\q")?;
    s.session.exp_eof()?;
    Ok(())
}

#[test]
fn a_narrow_plain_terminal_and_a_resize_do_not_break_it() -> Result<(), Error> {
    let home = tempfile::tempdir().expect("a temp dir");
    let mut s = Shell::start(home.path(), 40, 16, "C")?;
    s.statement(BIDS, "1000');")?;
    s.run(
        "SELECT window_start, window_end, count(*) AS bids, max(price) AS top \
         FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '1' SECOND)) \
         GROUP BY window_start, window_end;",
    )?;
    s.expect("window_end;")?;
    s.expect("rows/s")?;
    s.settle(Duration::from_millis(1_200))?;
    let narrow = s.contents();
    // ASCII borders under LANG=C, and the table cut to the width, not wrapped.
    assert!(narrow.contains("+---"), "{narrow}");
    assert_eq!(headers(&narrow), 1, "{narrow}");
    s.resize(70, 20);
    s.settle(Duration::from_millis(1_200))?;
    let wide = s.contents();
    assert!(wide.contains("bids"), "{wide}");
    s.resize(30, 12);
    s.settle(Duration::from_millis(800))?;
    s.stop()?;
    s.run("SELECT 'fine' AS still;")?;
    s.expect("fine")?;
    s.expect(PROMPT)?;
    s.run("\\q")?;
    let rest = s.session.exp_eof()?;
    assert!(!rest.contains("panicked"), "{rest}");
    Ok(())
}

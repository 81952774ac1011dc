//! The shell's live view of a continuous query: one table redrawn in place,
//! with a status line under it, like Flink's SQL client in table mode.
//!
//! [`LiveTable`] holds the rows: appended rows go to the bottom and the
//! oldest scroll off; a changelog (an `op` column first) is folded by its
//! key (the GROUP BY columns, when the planner knows them; else the whole
//! row, as in Flink's table mode): a `-U` or `-D` takes out the row with the
//! same key, and the `+U` after a `-U`, or any row whose key is shown, takes
//! its place, so an updated row changes where it stands. A changed
//! row is shown in reverse video for a moment. [`LiveScreen`] draws it:
//! the cursor goes back up over the last drawing, which is cleared and drawn
//! again; each line is cut to the terminal's width, so the count of lines to
//! go back over is exact, and after a resize a fresh drawing starts below.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use crossterm::{QueueableCommand, cursor, terminal};

use super::output::{OutputError, format_rows};

/// How long a changed row stays marked.
pub const HIGHLIGHT: Duration = Duration::from_millis(1_000);

/// Lines a drawing takes besides its rows: the table's borders and header
/// (4), a "rows above" line, the status line, and one spare for the line
/// the cursor rests on.
const CHROME_LINES: usize = 7;

/// A continuous query's result as it stands.
pub struct LiveTable {
    header: Vec<String>,
    numeric: Vec<bool>,
    /// Rows carry their change first (`+I`, `-U`, `+U`, `-D`): fold them.
    fold: bool,
    /// Rows in order; `None` where a row was taken out (folded tables keep
    /// every row's place, so that updates stay where they are).
    slots: Vec<Option<LiveRow>>,
    /// Rows not taken out.
    live: usize,
    /// Folding: each row's key (its cells, without a key) to the slots
    /// that hold it.
    index: HashMap<Vec<String>, Vec<usize>>,
    /// Folding by key: the key columns' places in a row's cells.
    key: Option<Vec<usize>>,
    /// Where the last `-U` took a row out: its `+U` goes there.
    updated: Option<usize>,
    /// Appending: rows kept at most (the oldest scroll off).
    keep: usize,
    /// Rows taken out that were never there (a changelog that retracts an
    /// unknown row), said under the table rather than hidden.
    unmatched: u64,
}

struct LiveRow {
    cells: Vec<String>,
    changed: Instant,
}

impl LiveTable {
    /// A table for rows of `schema`. `fold`: rows whose first column is
    /// the change column are folded; otherwise every row is appended (and
    /// any change column shown). `keep` bounds the rows an appending table
    /// keeps.
    pub fn new(schema: &SchemaRef, fold: bool, keep: usize) -> Self {
        let fold = fold && crate::stream::is_changelog(schema);
        let fields = schema.fields().iter().skip(usize::from(fold));
        Self {
            header: fields.clone().map(|f| f.name().clone()).collect(),
            numeric: fields.map(|f| f.data_type().is_numeric()).collect(),
            fold,
            slots: Vec::new(),
            live: 0,
            index: HashMap::new(),
            key: None,
            updated: None,
            keep: keep.max(1),
            unmatched: 0,
        }
    }

    /// Fold by the columns named `key` (an updating result's GROUP BY), if
    /// every one is shown; otherwise rows stay folded by their whole cells.
    pub fn with_key(mut self, key: Option<&Vec<String>>) -> Self {
        self.key = key.and_then(|names| {
            names
                .iter()
                .map(|name| self.header.iter().position(|h| h == name))
                .collect()
        });
        self
    }

    /// The cells that name a row: its key's, or all of them.
    fn key_of(&self, cells: &[String]) -> Vec<String> {
        match &self.key {
            Some(key) => key.iter().filter_map(|&i| cells.get(i).cloned()).collect(),
            None => cells.to_vec(),
        }
    }

    /// Take a batch of the query's rows.
    pub fn apply(&mut self, batch: &RecordBatch, now: Instant) -> Result<(), OutputError> {
        // Appending, only the rows that can still be shown are formatted (a
        // fast stream would otherwise format every row it sends).
        let batch = match self.fold {
            false if batch.num_rows() > self.keep => batch.slice(batch.num_rows() - self.keep, self.keep),
            _ => batch.clone(),
        };
        let rows = format_rows(&batch).map_err(OutputError::from)?;
        for mut cells in rows {
            for cell in &mut cells {
                // One line per row: the drawing counts its lines.
                if cell.contains(['\n', '\r']) {
                    *cell = cell.replace('\n', "\\n").replace('\r', "\\r");
                }
            }
            if !self.fold {
                self.push(cells, now);
                continue;
            }
            let op = cells.remove(0);
            match op.as_str() {
                "-U" | "-D" => {
                    let taken = self.take_out(&self.key_of(&cells));
                    if taken.is_none() {
                        self.unmatched += 1;
                    }
                    self.updated = if op == "-U" { taken } else { None };
                }
                "+U" => match self.updated.take() {
                    Some(slot) => self.put(slot, cells, now),
                    None => self.push(cells, now),
                },
                _ => self.push(cells, now),
            }
        }
        if !self.fold && self.slots.len() >= 2 * self.keep {
            let drop = self.slots.len() - self.keep;
            self.slots.drain(..drop);
            self.live = self.slots.len();
        }
        Ok(())
    }

    fn push(&mut self, cells: Vec<String>, now: Instant) {
        if self.fold {
            let key = self.key_of(&cells);
            // Folding by key, a row whose key is shown replaces that row.
            if self.key.is_some()
                && let Some(slot) = self.take_out(&key)
            {
                self.put(slot, cells, now);
                return;
            }
            self.index.entry(key).or_default().push(self.slots.len());
        }
        self.slots.push(Some(LiveRow { cells, changed: now }));
        self.live += 1;
    }

    fn put(&mut self, slot: usize, cells: Vec<String>, now: Instant) {
        self.index.entry(self.key_of(&cells)).or_default().push(slot);
        self.slots[slot] = Some(LiveRow { cells, changed: now });
        self.live += 1;
    }

    /// Take out a row with key `key`; its slot.
    fn take_out(&mut self, key: &[String]) -> Option<usize> {
        let slots = self.index.get_mut(key)?;
        let slot = slots.pop()?;
        if slots.is_empty() {
            self.index.remove(key);
        }
        self.slots[slot] = None;
        self.live -= 1;
        Some(slot)
    }

    /// Whether a row is still marked as changed at `now`.
    pub fn has_marked_rows(&self, now: Instant) -> bool {
        self.slots
            .iter()
            .rev()
            .flatten()
            .take(self.keep)
            .any(|r| now.duration_since(r.changed) < HIGHLIGHT)
    }

    /// The table as lines for a terminal `width` columns wide and `height`
    /// lines high: the last rows that fit, changed rows marked, each line cut
    /// to the width.
    pub fn render(&self, width: usize, height: usize, now: Instant, unicode: bool) -> Vec<String> {
        let room = height.saturating_sub(CHROME_LINES).max(1);
        let mut shown: Vec<&LiveRow> = self.slots.iter().rev().flatten().take(room).collect();
        shown.reverse();
        let mut table = Table::new();
        table
            .load_preset(if unicode {
                presets::UTF8_FULL_CONDENSED
            } else {
                presets::ASCII_FULL_CONDENSED
            })
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(self.header.iter().map(Cell::new));
        for (i, numeric) in self.numeric.iter().enumerate() {
            if *numeric && let Some(column) = table.column_mut(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        for row in &shown {
            table.add_row(&row.cells);
        }
        // Borders, header and its rule come first (3 lines), then one line
        // per row.
        const FIRST_ROW_LINE: usize = 3;
        let mut lines: Vec<String> = table
            .to_string()
            .lines()
            .enumerate()
            .map(|(i, line)| {
                let line = cut(line, width);
                let marked = i
                    .checked_sub(FIRST_ROW_LINE)
                    .and_then(|row| shown.get(row))
                    .is_some_and(|r| now.duration_since(r.changed) < HIGHLIGHT);
                if marked {
                    format!("\x1b[7m{line}\x1b[0m")
                } else {
                    line
                }
            })
            .collect();
        let hidden = self.live - shown.len();
        let mut notes = Vec::new();
        if hidden > 0 {
            notes.push(format!("{hidden} more rows above"));
        }
        if self.unmatched > 0 {
            notes.push(format!("{} retractions matched no row shown", self.unmatched));
        }
        if !notes.is_empty() {
            lines.push(cut(&format!("({})", notes.join("; ")), width));
        }
        lines
    }
}

/// `line` cut to fit a terminal `width` columns wide (one column spare, so
/// that no line makes the terminal wrap).
pub fn cut(line: &str, width: usize) -> String {
    let fit = width.saturating_sub(1).max(1);
    match line.char_indices().nth(fit) {
        Some((end, _)) => line[..end].to_string(),
        None => line.to_string(),
    }
}

/// The status line cut shorter still: the terminal echoes Ctrl-C as `^C`
/// after it, which must not wrap it onto a second line (the last drawing
/// would then be one line lower than counted).
fn cut_status(status: &str, width: usize) -> String {
    cut(status, width.saturating_sub(2))
}

/// The terminal's size (columns, lines), or 80 × 24 if it cannot be read.
pub fn terminal_size() -> (usize, usize) {
    match terminal::size() {
        Ok((w, h)) if w > 0 && h > 0 => (usize::from(w), usize::from(h)),
        _ => (80, 24),
    }
}

/// Draws a [`LiveTable`] and a status line in place on a terminal.
pub struct LiveScreen {
    /// Lines of the last drawing above the status line (where the cursor
    /// rests, at its end).
    drawn: Option<usize>,
    /// The width the last drawing was cut to.
    width: usize,
}

impl Default for LiveScreen {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveScreen {
    /// Nothing drawn yet.
    pub fn new() -> Self {
        Self {
            drawn: None,
            width: 0,
        }
    }

    /// Draw `lines` then `status`, over the last drawing (or below it after
    /// a resize, which may have rewrapped it).
    pub fn draw(
        &mut self,
        out: &mut dyn Write,
        lines: &[String],
        status: &str,
        width: usize,
    ) -> Result<(), OutputError> {
        match self.drawn {
            Some(drawn) if width == self.width => {
                out.write_all(b"\r")?;
                if drawn > 0 {
                    out.queue(cursor::MoveUp(u16::try_from(drawn).unwrap_or(u16::MAX)))?;
                }
                out.queue(terminal::Clear(terminal::ClearType::FromCursorDown))?;
            }
            Some(_) => out.write_all(b"\r\n")?,
            None => {}
        }
        for line in lines {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\r\n")?;
        }
        out.write_all(cut_status(status, width).as_bytes())?;
        out.flush()?;
        self.drawn = Some(lines.len());
        self.width = width;
        Ok(())
    }

    /// Draw only the status line again (the rows did not change).
    pub fn status(&mut self, out: &mut dyn Write, status: &str, width: usize) -> Result<(), OutputError> {
        if self.drawn.is_none() || width != self.width {
            return self.draw(out, &[], status, width);
        }
        out.write_all(b"\r")?;
        out.queue(terminal::Clear(terminal::ClearType::CurrentLine))?;
        out.write_all(cut_status(status, width).as_bytes())?;
        out.flush()?;
        Ok(())
    }

    /// Leave the drawing on screen and print `summary` (if any) under it.
    pub fn finish(&mut self, out: &mut dyn Write, summary: &str) -> Result<(), OutputError> {
        if self.drawn.is_some() {
            out.write_all(b"\r\n")?;
        }
        if !summary.is_empty() {
            out.write_all(summary.as_bytes())?;
            out.write_all(b"\r\n")?;
        }
        out.flush()?;
        self.drawn = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn changes(ops: &[&str], keys: &[&str], counts: &[i64]) -> RecordBatch {
        let schema = Arc::new(crate::stream::changelog_schema(&Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ])));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(ops.to_vec())),
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(counts.to_vec())),
            ],
        )
        .expect("valid batch")
    }

    /// The rows' cells, as text, in the order they are shown.
    fn rows(table: &LiveTable) -> Vec<String> {
        table.slots.iter().flatten().map(|r| r.cells.join(" ")).collect()
    }

    #[test]
    fn a_changelog_is_folded_in_place() {
        let batch = changes(&["+I"], &["a"], &[1]);
        let mut table = LiveTable::new(&batch.schema(), true, 10);
        let start = Instant::now();
        table.apply(&batch, start).expect("apply");
        table
            .apply(&changes(&["+I", "-U", "+U"], &["b", "a", "a"], &[1, 1, 2]), start)
            .expect("apply");
        // a's update stays first, where a was.
        assert_eq!(rows(&table), vec!["a 2", "b 1"]);
        table
            .apply(&changes(&["-D", "+I"], &["b", "c"], &[1, 7]), start)
            .expect("apply");
        assert_eq!(rows(&table), vec!["a 2", "c 7"]);
        assert_eq!(table.live, 2);
        // A retraction of a row never shown is said, not hidden.
        table
            .apply(&changes(&["-D"], &["zz"], &[9]), start)
            .expect("apply");
        let text = table.render(80, 24, start, false).join("\n");
        assert!(text.contains("1 retractions matched no row"), "{text}");
        // The header has no op column, and changed rows are marked for a moment.
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|h| h.contains("| k ") && !h.contains("op")),
            "{text}"
        );
        assert!(text.contains("\x1b[7m"), "{text}");
        let later = table.render(80, 24, start + HIGHLIGHT, false).join("\n");
        assert!(!later.contains("\x1b[7m"), "{later}");
        assert!(!table.has_marked_rows(start + HIGHLIGHT));
    }

    #[test]
    fn a_changelog_with_a_key_is_folded_by_it() {
        let batch = changes(&["+I", "+I"], &["a", "b"], &[1, 1]);
        let key = vec!["k".to_string()];
        let mut keyed = LiveTable::new(&batch.schema(), true, 10).with_key(Some(&key));
        let mut whole = LiveTable::new(&batch.schema(), true, 10);
        let now = Instant::now();
        // A retraction whose other columns differ from the row shown (a
        // changelog read from elsewhere), then a +I of a shown key.
        let next = changes(&["-U", "+U", "+I"], &["a", "a", "b"], &[5, 6, 2]);
        for table in [&mut keyed, &mut whole] {
            table.apply(&batch, now).expect("apply");
            table.apply(&next, now).expect("apply");
        }
        assert_eq!(rows(&keyed), vec!["a 6", "b 2"], "each key once, in its place");
        assert_eq!(keyed.unmatched, 0);
        assert_eq!(
            rows(&whole),
            vec!["a 1", "b 1", "a 6", "b 2"],
            "by whole row nothing matched"
        );
        assert_eq!(whole.unmatched, 1);
        // A key not shown (left out of the SELECT) folds by the whole row.
        let missing = vec!["nope".to_string()];
        assert!(
            LiveTable::new(&batch.schema(), true, 10)
                .with_key(Some(&missing))
                .key
                .is_none()
        );
    }

    #[test]
    fn a_querys_own_column_named_op_is_not_folded() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("op", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let table = LiveTable::new(&schema, true, 5);
        assert!(!table.fold);
        assert_eq!(table.header, ["op", "n"]);
    }

    #[test]
    fn appended_rows_keep_the_last_that_fit() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let mut table = LiveTable::new(&schema, true, 5);
        let now = Instant::now();
        for chunk in (0..40).collect::<Vec<i64>>().chunks(7) {
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from(chunk.to_vec()))],
            )
            .expect("valid batch");
            table.apply(&batch, now).expect("apply");
        }
        assert!(table.live < 10, "{}", table.live);
        // 24 lines high: 24 - CHROME_LINES rows, the last ones.
        let lines = table.render(80, 10, now, false);
        let text = lines.join("\n");
        assert!(text.contains("| 39 |"), "{text}");
        assert!(!text.contains("| 35 |"), "{text}");
        assert!(text.contains("more rows above"), "{text}");
        // Cut to a narrow terminal: no line is wider than it.
        for line in table.render(6, 10, now + HIGHLIGHT, true) {
            assert!(line.chars().count() <= 5, "{line:?}");
        }
    }

    #[test]
    fn the_screen_draws_over_its_last_drawing() {
        let mut screen = LiveScreen::new();
        let mut out = Vec::new();
        let lines = vec!["one".to_string(), "two".to_string()];
        screen.draw(&mut out, &lines, "status 1", 80).expect("draw");
        screen.draw(&mut out, &lines, "status 2", 80).expect("draw");
        screen.status(&mut out, "status 3", 80).expect("status");
        screen.finish(&mut out, "done").expect("finish");
        let size = |n| std::num::NonZeroU16::new(n).expect("above zero");
        let mut parser = vt100::Parser::new(size(10), size(80), 0);
        parser.process(&out);
        let screen = parser.screen().contents();
        assert_eq!(screen.trim_end(), "one\ntwo\nstatus 3\ndone");
    }
}

//! A scripted test harness for operators: feed one operator (single- or
//! multi-input) events written compactly, and compare a text rendering of
//! what it emits with the expected text.
//!
//! Multi-input operators get their events through
//! [`crate::stream::graph::WatermarkMerge`], as in the graph, so rows arrive
//! with merged watermarks and the operator sees the merged watermark only
//! when it advances.
//!
//! A script has one command a line (`#` starts a comment):
//!
//! ```text
//! L rows (1, 10) (2, null)   rows of the left input (port 0): one tuple a row,
//!                            values in column order; each row's watermark is
//!                            the last `wm` given on that port
//! R rows@7 (1, 'a')          rows of the right input (port 1) under watermark 7
//! L wm 10                    a watermark on port 0
//! R end                      port 1 ended
//! changes +I (1, 10) -D (1, 10)  rows with their changes (an updating input)
//! state                      print the operator's state_rows()
//! late                       print the late rows counted so far
//! checkpoint                 snapshot the operator and go on with a new one
//!                            restored from it (see [`check_restores`])
//! ```
//!
//! Ports are `L`/`R` or a number (a single-input operator takes none). Times
//! (TIMESTAMP values, watermarks) are written in seconds, whatever the
//! column's unit, and printed the same way. The output has a line an event:
//! `(1, 10, 1, 12) @10` for an appended row with its watermark, `+I (...)
//! @10` / `-D (...) @10` for a row with a change, `wm 10`, `end`, and the
//! `state` and `late` lines asked for.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::util::display::array_value_to_string;

use crate::stream::StreamMetrics;
use crate::stream::checkpoint::StateSnapshot;
use crate::stream::graph::WatermarkMerge;
use crate::stream::late::LateRows;
use crate::stream::operator::{
    END_OF_INPUT, Event, MultiInputOperator, NO_WATERMARK, Nanos, Operator, RowWatermarks, StreamBatch,
    nanos_values, to_nanos,
};

/// One second, the unit of times in scripts.
pub const S: Nanos = 1_000_000_000;

enum Subject {
    Single(Box<dyn Operator>),
    Multi {
        operator: Box<dyn MultiInputOperator>,
        merge: WatermarkMerge,
    },
}

/// An operator under test, with its inputs' schemas.
pub struct Harness {
    subject: Subject,
    schemas: Vec<SchemaRef>,
    /// The last watermark given on each port: rows' default watermark.
    current: Vec<Nanos>,
    metrics: Arc<StreamMetrics>,
    /// Builds the same harness afresh, for `checkpoint` (restore into a new
    /// operator).
    factory: Option<std::rc::Rc<dyn Fn() -> Harness>>,
    /// The memory pool it was opened with ([`Harness::with_memory_limit`]).
    pool: Option<Arc<dyn datafusion::execution::memory_pool::MemoryPool>>,
    /// The checkpoints taken so far, decoded from their bytes, by number:
    /// a later one reads its unchanged state pieces from them.
    checkpoints: Vec<StateSnapshot>,
    /// Which checkpoint holds each state piece as last snapshot.
    pieces: std::collections::BTreeMap<String, u64>,
}

/// Metrics for a harness and the operators' late rows.
pub fn metrics() -> Arc<StreamMetrics> {
    Arc::new(StreamMetrics::default())
}

/// Late rows counted into `metrics`, with no side output.
pub fn late(metrics: &Arc<StreamMetrics>) -> LateRows {
    LateRows::new(Arc::clone(metrics), None)
}

impl Harness {
    /// A single-input operator over rows of `schema`.
    pub fn single(operator: Box<dyn Operator>, schema: SchemaRef, metrics: &Arc<StreamMetrics>) -> Self {
        Self {
            subject: Subject::Single(operator),
            schemas: vec![schema],
            current: vec![NO_WATERMARK],
            metrics: Arc::clone(metrics),
            factory: None,
            pool: None,
            checkpoints: Vec::new(),
            pieces: std::collections::BTreeMap::new(),
        }
    }

    /// A multi-input operator over inputs of `schemas`, in port order.
    pub fn multi(
        operator: Box<dyn MultiInputOperator>,
        schemas: Vec<SchemaRef>,
        metrics: &Arc<StreamMetrics>,
    ) -> Self {
        let merge = WatermarkMerge::new(schemas.len());
        Self {
            subject: Subject::Multi { operator, merge },
            current: vec![NO_WATERMARK; schemas.len()],
            schemas,
            metrics: Arc::clone(metrics),
            factory: None,
            pool: None,
            checkpoints: Vec::new(),
            pieces: std::collections::BTreeMap::new(),
        }
    }

    /// The operator opened with a task whose memory pool holds `bytes`
    /// (`datafusion.runtime.memory_limit`).
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_limit(bytes, 1.0)
            .build_arc()
            .expect("a runtime");
        self.pool = Some(Arc::clone(&runtime.memory_pool));
        let task = Arc::new(datafusion::execution::TaskContext::default().with_runtime(runtime));
        let opened = match &mut self.subject {
            Subject::Single(operator) => futures::executor::block_on(operator.open(task)),
            Subject::Multi { operator, .. } => futures::executor::block_on(operator.open(task)),
        };
        opened.expect("the operator opens");
        self
    }

    /// The bytes reserved in the memory pool it was opened with.
    pub fn reserved(&self) -> usize {
        self.pool.as_ref().map_or(0, |pool| pool.reserved())
    }

    /// The bytes the operator says it holds in state.
    pub fn state_bytes(&self) -> usize {
        match &self.subject {
            Subject::Multi { operator, .. } => operator.state_bytes(),
            Subject::Single(operator) => operator.state_bytes(),
        }
    }

    /// Run `script`; what the operator emitted, a line an event.
    pub fn run(&mut self, script: &str) -> String {
        let mut lines = Vec::new();
        for line in script.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match line {
                "state" => {
                    let rows = match &self.subject {
                        Subject::Multi { operator, .. } => operator.state_rows(),
                        Subject::Single(operator) => operator.state_rows(),
                    };
                    lines.push(format!("state {rows}"));
                    continue;
                }
                "checkpoint" => {
                    if let Err(e) = self.checkpoint() {
                        lines.push(format!("error {e}"));
                    }
                    continue;
                }
                "late" => {
                    lines.push(format!("late {}", self.metrics.late_rows.load(Ordering::Relaxed)));
                    continue;
                }
                _ => {}
            }
            let (port, command) = self.port(line);
            let event = self.event(port, command);
            let mut out = Vec::new();
            let result = match &mut self.subject {
                Subject::Single(operator) => match event {
                    Event::Data(batch) => operator.process(batch, &mut out),
                    Event::Watermark(w) => operator.on_watermark(w, &mut out),
                    Event::End => operator.on_end(&mut out),
                },
                Subject::Multi { operator, merge } => merge.push(port, event, operator.as_mut(), &mut out),
            };
            if let Err(e) = result {
                lines.push(format!("error {e}"));
            }
            for event in &out {
                render(event, &mut lines);
            }
        }
        lines.join("\n")
    }

    /// Snapshot the operator (through the bytes a checkpoint holds) and go on
    /// with a new one restored from it, as a restarted query does.
    fn checkpoint(&mut self) -> datafusion::error::Result<()> {
        let Some(factory) = self.factory.clone() else {
            panic!("checkpoint in a script needs a harness made by check_restores");
        };
        let mut state = StateSnapshot::default();
        match &mut self.subject {
            Subject::Single(operator) => operator.snapshot(&mut state)?,
            Subject::Multi { operator, merge } => {
                operator.snapshot(&mut state)?;
                merge.snapshot(&mut state);
            }
        }
        // As the checkpointer does: unchanged pieces refer to the checkpoint
        // that holds them, and read back from it.
        let id = self.checkpoints.len() as u64;
        self.pieces = state.locate(id, &self.pieces)?;
        let mut state = StateSnapshot::decode(&state.encode()?)?;
        self.checkpoints.push(state.clone());
        let earlier = &self.checkpoints;
        state.resolve(|id, name| match earlier.get(id as usize) {
            Some(held) => held.piece(name).cloned(),
            None => datafusion::common::internal_err!("no checkpoint {id}"),
        })?;
        let mut fresh = factory();
        match &mut fresh.subject {
            Subject::Single(operator) => operator.restore(&state)?,
            Subject::Multi { operator, merge } => {
                operator.restore(&state)?;
                merge.restore(&state)?;
            }
        }
        // Late rows counted before carry over, as the manifest carries them.
        let late = self.metrics.late_rows.load(Ordering::Relaxed);
        fresh.metrics.late_rows.store(late, Ordering::Relaxed);
        self.subject = fresh.subject;
        self.metrics = fresh.metrics;
        Ok(())
    }

    /// The port a line is for, and the rest of it.
    fn port<'a>(&self, line: &'a str) -> (usize, &'a str) {
        let (first, rest) = line.split_once(' ').unwrap_or((line, ""));
        match first {
            "L" => (0, rest),
            "R" => (1, rest),
            _ => match first.parse::<usize>() {
                Ok(port) => (port, rest),
                Err(_) => (0, line),
            },
        }
    }

    fn event(&mut self, port: usize, command: &str) -> Event {
        let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
        match verb {
            "end" => Event::End,
            "wm" => {
                let w = time(rest.trim());
                self.current[port] = w;
                Event::Watermark(w)
            }
            "changes" => {
                // `changes +I (1, 10) -U (1, 10) +U (1, 12)`: rows with their changes.
                let pattern = regex::Regex::new(r"([+-][IUD])\s*(\([^)]*\))").expect("a pattern");
                let (ops, tuples): (Vec<_>, Vec<_>) = pattern
                    .captures_iter(rest)
                    .map(|c| (c[1].to_string(), c[2].to_string()))
                    .unzip();
                let batch = batch(&self.schemas[port], &tuples.join(" "));
                let mut rows = StreamBatch::new(batch, RowWatermarks::Constant(self.current[port]));
                rows.changes = Some(crate::stream::Changes::from_changes(
                    ops.iter()
                        .map(|op| crate::stream::Change::parse(op).expect("a change")),
                ));
                Event::Data(rows)
            }
            _ if verb.starts_with("rows") => {
                let watermark = match verb.strip_prefix("rows@") {
                    Some(w) => time(w),
                    None => self.current[port],
                };
                let batch = batch(&self.schemas[port], rest);
                Event::Data(StreamBatch::new(batch, RowWatermarks::Constant(watermark)))
            }
            _ => panic!("not a harness command: {command}"),
        }
    }
}

/// Run `script` on `harness` and compare what it emitted with `expected`
/// (both trimmed line by line).
pub fn check(harness: &mut Harness, script: &str, expected: &str) {
    let got = harness.run(script);
    let expected: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let got_lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        got_lines,
        expected,
        "\n--- got ---\n{got}\n--- expected ---\n{}\n",
        expected.join("\n")
    );
}

/// `script` (which ends holding state) run by `make()`'s operator under a
/// memory limit too small for its state: an error naming `operator` and
/// `state` (its name and what it holds: `sort_rows: 2 rows`); under a large
/// limit, no error.
pub fn check_memory_limit(make: impl Fn() -> Harness, script: &str, operator: &str, state: &str) {
    check_memory_limit_of(make, script, operator, state, 64);
}

/// [`check_memory_limit`] with a limit of `small` bytes, for an operator
/// that holds some before any row.
pub fn check_memory_limit_of(
    make: impl Fn() -> Harness,
    script: &str,
    operator: &str,
    state: &str,
    small: usize,
) {
    let mut fits = make().with_memory_limit(1 << 30);
    let out = fits.run(script);
    assert!(!out.contains("error"), "{out}");
    assert!(fits.reserved() > 0, "the state is reserved");
    assert_eq!(
        fits.reserved(),
        fits.state_bytes(),
        "the reservation follows the state"
    );
    let out = make().with_memory_limit(small).run(script);
    let expected = format!("error Resources exhausted: the continuous {operator}'s state ({state}, ");
    let limit = format!("does not fit in datafusion.runtime.memory_limit ({small} bytes)");
    assert!(out.contains(&expected) && out.contains(&limit), "{out}");
}

/// Run `script` on a harness from `make` once straight through, then once
/// with a `checkpoint` (snapshot, restore into a new operator) after each of
/// its commands, and once with one after every command: every run must emit
/// the same, so a restarted operator carries on exactly where it stopped.
pub fn check_restores(make: impl Fn() -> Harness + 'static, script: &str) {
    let straight = make().run(script);
    assert!(
        !straight.contains("error"),
        "the script fails without checkpoints:\n{straight}"
    );
    let make: std::rc::Rc<dyn Fn() -> Harness> = std::rc::Rc::new(make);
    let lines: Vec<&str> = script.lines().collect();
    for at in 0..lines.len() {
        let command = lines[at].split('#').next().unwrap_or("").trim();
        if command.is_empty() {
            continue;
        }
        let mut with = lines.clone();
        with.insert(at + 1, "checkpoint");
        let mut harness = make();
        harness.factory = Some(std::rc::Rc::clone(&make));
        let got = harness.run(&with.join("\n"));
        assert_eq!(
            got, straight,
            "a checkpoint after '{command}' changed the output\n--- with it ---\n{got}\n--- without ---\n{straight}"
        );
    }
    // A chain: a checkpoint after every command, each restored into a new
    // operator, whose state pieces unchanged since an earlier checkpoint are
    // read from it (incremental checkpoints).
    let every: Vec<&str> = lines
        .iter()
        .flat_map(|line| match line.split('#').next().unwrap_or("").trim() {
            "" => vec![*line],
            _ => vec![*line, "checkpoint"],
        })
        .collect();
    let mut harness = make();
    harness.factory = Some(std::rc::Rc::clone(&make));
    let got = harness.run(&every.join("\n"));
    assert_eq!(
        got, straight,
        "a checkpoint after every command changed the output\n--- with them ---\n{got}\n--- without ---\n{straight}"
    );
}

/// A time in seconds (`-inf`/`+inf` for no watermark / the end).
fn time(text: &str) -> Nanos {
    match text {
        "-inf" => NO_WATERMARK,
        "+inf" => END_OF_INPUT,
        _ => text
            .parse::<Nanos>()
            .map(|s| s * S)
            .unwrap_or_else(|_| panic!("not a time: {text}")),
    }
}

fn show_time(t: Nanos) -> String {
    match t {
        NO_WATERMARK => "-inf".into(),
        END_OF_INPUT => "+inf".into(),
        t if t % S == 0 => (t / S).to_string(),
        t => format!("{}", t as f64 / S as f64),
    }
}

/// Rows of `schema` from tuples `(v, v) (v, v)`.
pub fn batch(schema: &SchemaRef, tuples: &str) -> RecordBatch {
    let mut values: Vec<Vec<Option<String>>> = vec![Vec::new(); schema.fields().len()];
    for tuple in tuples.split(')').map(str::trim).filter(|t| !t.is_empty()) {
        let tuple = tuple.trim_start_matches('(');
        let row: Vec<&str> = tuple.split(',').map(str::trim).collect();
        assert_eq!(row.len(), values.len(), "({tuple}) is not a row of {schema:?}");
        for (column, value) in values.iter_mut().zip(row) {
            column.push((value != "null").then(|| value.trim_matches('\'').to_string()));
        }
    }
    let columns = schema
        .fields()
        .iter()
        .zip(values)
        .map(|(field, values)| column(field.data_type(), values))
        .collect();
    RecordBatch::try_new(Arc::clone(schema), columns).expect("rows of the schema")
}

fn column(data_type: &DataType, values: Vec<Option<String>>) -> ArrayRef {
    match data_type {
        DataType::Timestamp(_, tz) => {
            let nanos: TimestampNanosecondArray = values.iter().map(|v| v.as_deref().map(time)).collect();
            let nanos: ArrayRef = Arc::new(nanos.with_timezone_opt(tz.clone()));
            cast(&nanos, data_type).expect("a timestamp")
        }
        _ => cast(&(Arc::new(StringArray::from(values)) as ArrayRef), data_type).expect("values of the type"),
    }
}

/// Rows `0..rows` of `columns` as `(v, v)`, times in seconds.
pub fn rows_text(columns: &[ArrayRef], rows: usize) -> Vec<String> {
    (0..rows).map(|row| row_text(columns, row)).collect()
}

/// Row `row` of `columns` as `(v, v)`, times in seconds.
fn row_text(columns: &[ArrayRef], row: usize) -> String {
    let values: Vec<String> = columns
        .iter()
        .map(|c| {
            if c.is_null(row) {
                "null".to_string()
            } else if matches!(c.data_type(), DataType::Timestamp(_, _)) {
                let nanos = to_nanos(c, "time").expect("a timestamp");
                show_time(nanos_values(&nanos).expect("nanoseconds").value(row))
            } else {
                array_value_to_string(c, row).expect("printable")
            }
        })
        .collect();
    format!("({})", values.join(", "))
}

fn render(event: &Event, lines: &mut Vec<String>) {
    match event {
        Event::Data(batch) => {
            let changes = batch.changes.as_ref();
            for row in 0..batch.batch.num_rows() {
                let change = changes
                    .as_ref()
                    .map(|c| format!("{} ", c.get(row).text()))
                    .unwrap_or_default();
                lines.push(format!(
                    "{change}{} @{}",
                    row_text(batch.batch.columns(), row),
                    show_time(batch.watermarks.get(row))
                ));
            }
        }
        Event::Watermark(w) => lines.push(format!("wm {}", show_time(*w))),
        Event::End => lines.push("end".to_string()),
    }
}

/// The inputs of the join tests: left `(lk, lt, lv)` with `lt` in
/// milliseconds, right `(rk, rt, rv)` with `rt` in seconds, every column
/// nullable.
pub fn join_inputs() -> (SchemaRef, SchemaRef) {
    use arrow::datatypes::{Field, Schema, TimeUnit};
    let side = |k: &str, t: &str, v: &str, unit: TimeUnit| {
        Arc::new(Schema::new(vec![
            Field::new(k, DataType::Int64, true),
            Field::new(t, DataType::Timestamp(unit, None), true),
            Field::new(v, DataType::Utf8, true),
        ]))
    };
    (
        side("lk", "lt", "lv", TimeUnit::Millisecond),
        side("rk", "rt", "rv", TimeUnit::Second),
    )
}

/// A join of [`join_inputs`] on `lk = rk` (no keys when `keyed` is false)
/// with `filter`.
pub fn join_spec(
    join_type: datafusion::common::JoinType,
    keyed: bool,
    filter: Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
) -> super::join::JoinSpec {
    let (left, right) = join_inputs();
    let keys: &[(usize, usize)] = if keyed { &[(0, 0)] } else { &[] };
    spec(join_type, left, right, keys, filter)
}

/// A join of `left` and `right` on columns `keys` (left index, right index)
/// with `filter`, its output schema as DataFusion's `Join::schema` gives it.
pub fn spec(
    join_type: datafusion::common::JoinType,
    left: SchemaRef,
    right: SchemaRef,
    keys: &[(usize, usize)],
    filter: Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
) -> super::join::JoinSpec {
    use datafusion::common::JoinType;
    use datafusion::physical_expr::PhysicalExpr;
    use datafusion::physical_expr::expressions::Column;
    let both = Arc::new(arrow::datatypes::Schema::new(
        left.fields()
            .iter()
            .chain(right.fields())
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let schema = match join_type {
        JoinType::LeftSemi | JoinType::LeftAnti => Arc::clone(&left),
        JoinType::RightSemi | JoinType::RightAnti => Arc::clone(&right),
        _ => both,
    };
    let key = |schema: &SchemaRef, i: usize| -> Arc<dyn PhysicalExpr> {
        Arc::new(Column::new(schema.field(i).name(), i))
    };
    super::join::JoinSpec {
        join_type,
        left_keys: keys.iter().map(|(l, _)| key(&left, *l)).collect(),
        right_keys: keys.iter().map(|(_, r)| key(&right, *r)).collect(),
        filter,
        left_schema: left,
        right_schema: right,
        schema,
    }
}

/// The condition `lt - rt BETWEEN lower AND upper` (seconds) over the
/// pairs of [`join_inputs`], as the planner would pass it.
pub fn time_between(lower: Nanos, upper: Nanos) -> Arc<dyn datafusion::physical_expr::PhysicalExpr> {
    use arrow::datatypes::TimeUnit;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, lit};
    type Expr = Arc<dyn datafusion::physical_expr::PhysicalExpr>;
    let nanos = |name: &str, index: usize| -> Expr {
        let ts: Expr = Arc::new(CastExpr::new(
            Arc::new(Column::new(name, index)),
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            None,
        ));
        Arc::new(CastExpr::new(ts, DataType::Int64, None))
    };
    let op = |l: Expr, o: Operator, r: Expr| -> Expr { Arc::new(BinaryExpr::new(l, o, r)) };
    let difference = op(nanos("lt", 1), Operator::Minus, nanos("rt", 4));
    op(
        op(Arc::clone(&difference), Operator::GtEq, lit(lower * S)),
        Operator::And,
        op(difference, Operator::LtEq, lit(upper * S)),
    )
}

/// `count(*)` grouped by the Int64 column `key` of `input`.
pub fn count_by(input: &SchemaRef, key: &str) -> crate::stream::groups::Aggregates {
    use arrow::datatypes::Field;
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::{col, lit};
    let count = AggregateExprBuilder::new(count_udaf(), vec![lit(1i64)])
        .schema(Arc::clone(input))
        .alias("n")
        .build()
        .expect("count(*)");
    crate::stream::groups::Aggregates::try_new(
        vec![col(key, input).expect("the key column")],
        vec![Arc::new(Field::new(key, DataType::Int64, true))],
        vec![(Arc::new(count), None)],
    )
    .expect("aggregates")
}

/// `(window_start, window_end, k, n)`, bounds in `unit`.
pub fn window_counts(unit: arrow::datatypes::TimeUnit) -> SchemaRef {
    use arrow::datatypes::{Field, Schema};
    Arc::new(Schema::new(vec![
        Field::new("window_start", DataType::Timestamp(unit, None), false),
        Field::new("window_end", DataType::Timestamp(unit, None), false),
        Field::new("k", DataType::Int64, true),
        Field::new("n", DataType::Int64, false),
    ]))
}

/// The physical window function of `expr` (a `WindowFunction`, aliased) over
/// rows of `input`, with its output field named `name`.
pub fn window_function(
    expr: datafusion::logical_expr::Expr,
    input: &SchemaRef,
    name: &str,
) -> (
    Arc<dyn datafusion::physical_expr::window::WindowExpr>,
    arrow::datatypes::FieldRef,
) {
    let schema = datafusion::common::DFSchema::try_from(input.as_ref().clone()).expect("a schema");
    let function = datafusion::physical_planner::create_window_expr(
        &expr.alias(name),
        &schema,
        &datafusion::execution::context::ExecutionProps::new(),
        &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default(),
    )
    .expect("a physical window function");
    let field = function.field().expect("a field");
    let field = Arc::new(field.as_ref().clone().with_name(name));
    (function, field)
}

/// [`window_function`], with the schema of its output: `input`'s columns,
/// then the function's.
pub fn window_function_out(
    expr: datafusion::logical_expr::Expr,
    input: &SchemaRef,
    name: &str,
) -> (Arc<dyn datafusion::physical_expr::window::WindowExpr>, SchemaRef) {
    let (function, field) = window_function(expr, input, name);
    let mut fields = input.fields().to_vec();
    fields.push(field);
    (function, Arc::new(arrow::datatypes::Schema::new(fields)))
}

/// The rows of `out`'s batches as `+I (v, v)`, a line a row (each must have
/// changes).
pub fn changes_text(out: &[Event]) -> Vec<String> {
    let mut lines = Vec::new();
    for event in out {
        if let Event::Data(b) = event {
            let changes = b.changes.as_ref().expect("an updating result has changes");
            for (i, text) in rows_text(b.batch.columns(), b.batch.num_rows())
                .into_iter()
                .enumerate()
            {
                lines.push(format!("{} {text}", changes.get(i).text()));
            }
        }
    }
    lines
}

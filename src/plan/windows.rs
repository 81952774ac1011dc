//! Window table functions (`TUMBLE`, `HOP`, `CUMULATE`, `SESSION`) planned as
//! plain relational plans, so DataFusion optimizes and runs them in batch and
//! the stream planner later recognizes the same shapes.
//!
//! Each window function keeps its input's columns and adds `window_start`,
//! `window_end` (exclusive) and `window_time` (`window_end` - 1 ms, Flink's
//! rowtime of the window). Rows whose time column is NULL belong to no window
//! and are not in the output (as in Flink); a time that nanoseconds cannot
//! hold (year 1, year 9999) is an error (see [`super::event_time`]).
//!
//! - `TUMBLE(t, ts, size[, offset])`: `window_start = date_bin(size, ts, epoch + offset)`.
//! - `HOP(t, ts, slide, size[, offset])`: each row once per window it falls in,
//!   `size / slide` of them: the input crossed with the `k * slide` offsets,
//!   `window_start = date_bin(slide, ts, origin) - k * slide`.
//! - `CUMULATE(t, ts, step, size[, offset])`: windows `[start, start + j*step)`
//!   of the `size`-aligned start, each row in those whose end is past it.
//! - `SESSION(t, ts, gap[, PARTITION BY keys])`: per key, rows sorted by time
//!   start a new session when they come more than `gap` after the previous
//!   row (Flink's: each row opens `[ts, ts + gap)`, and intervals that overlap
//!   or touch merge); a session spans `[first ts, last ts + gap)`. Planned with window functions.

use std::sync::Arc;

use arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit};
use datafusion::common::{DFSchema, ScalarValue, plan_datafusion_err, plan_err};
use datafusion::error::Result;
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::functions_window::expr_fn::lag;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, LogicalPlanBuilder, WindowFunctionDefinition, col,
    lit, when,
};
use sqlparser::ast::{FunctionArg, FunctionArgExpr, TableFactor};

use super::event_time::{NullEventTimes, event_time_check};
use crate::sql::windows::{PARTITION_KEY_ARG, is_window_function};

/// One nanosecond-precision duration, as written in an INTERVAL.
type Nanos = i64;

/// Which window, with its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows.
    Tumble {
        /// Window length.
        size: Nanos,
        /// Shift of window starts from the epoch.
        offset: Nanos,
    },
    /// Fixed windows that start every `slide`.
    Hop {
        /// Distance between window starts.
        slide: Nanos,
        /// Window length (a multiple of `slide`).
        size: Nanos,
        /// Shift of window starts from the epoch.
        offset: Nanos,
    },
    /// Windows that grow by `step` from a `size`-aligned start up to `size`.
    Cumulate {
        /// Growth step.
        step: Nanos,
        /// Largest window (a multiple of `step`).
        size: Nanos,
        /// Shift of window starts from the epoch.
        offset: Nanos,
    },
    /// Activity sessions closed by a gap.
    Session {
        /// Inactivity that ends a session.
        gap: Nanos,
    },
}

/// Plans window table functions; registered on every Sluice session.
///
/// It keeps a line per window it lowered since [`WindowRelationPlanner::take_lowered`]
/// was last called, which EXPLAIN shows.
#[derive(Debug, Default)]
pub struct WindowRelationPlanner {
    lowered: std::sync::Mutex<Vec<String>>,
}

impl WindowRelationPlanner {
    /// How each window planned since the last call was lowered, in plan order.
    pub fn take_lowered(&self) -> Vec<String> {
        self.lowered
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

impl WindowKind {
    /// One line for EXPLAIN: the window and the relational form it became.
    fn lowering(&self, time: &Expr) -> String {
        match *self {
            WindowKind::Tumble { size, offset } => format!(
                "TUMBLE({time}, size {}, offset {}): window_start = date_bin(size, {time}, epoch + offset)",
                show(size),
                show(offset)
            ),
            WindowKind::Hop { slide, size, offset } => format!(
                "HOP({time}, slide {}, size {}, offset {}): input x {} window shifts, window_start = date_bin(slide, {time}) - shift",
                show(slide),
                show(size),
                show(offset),
                size / slide
            ),
            WindowKind::Cumulate { step, size, offset } => format!(
                "CUMULATE({time}, step {}, size {}, offset {}): input x {} window lengths, kept where window_end > {time}",
                show(step),
                show(size),
                show(offset),
                size / step
            ),
            WindowKind::Session { gap } => format!(
                "SESSION({time}, gap {}): lag({time}) starts a session when {time} > previous + gap; sum() numbers sessions; min/max bound them",
                show(gap)
            ),
        }
    }
}

impl RelationPlanner for WindowRelationPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = &relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let function = match name.0.as_slice() {
            [part] => match part.as_ident() {
                Some(ident) if ident.quote_style.is_none() && is_window_function(&ident.value) => {
                    ident.value.to_uppercase()
                }
                _ => return Ok(RelationPlanning::Original(Box::new(relation))),
            },
            _ => return Ok(RelationPlanning::Original(Box::new(relation))),
        };
        let args = Arguments::bind(&function, args.args.clone())?;
        let (plan, lowering) = plan_window(&function, args, context)?;
        if let Ok(mut lowered) = self.lowered.lock() {
            lowered.push(lowering);
        }
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}

/// The arguments of a window call, bound to Flink's parameter names.
struct Arguments {
    function: String,
    values: Vec<(String, sqlparser::ast::Expr)>,
    partition_keys: Vec<sqlparser::ast::Expr>,
}

impl Arguments {
    fn parameters(function: &str) -> &'static [&'static str] {
        match function {
            "TUMBLE" => &["data", "timecol", "size", "offset"],
            "HOP" => &["data", "timecol", "slide", "size", "offset"],
            "CUMULATE" => &["data", "timecol", "step", "size", "offset"],
            _ => &["data", "timecol", "gap"],
        }
    }

    fn bind(function: &str, args: Vec<FunctionArg>) -> Result<Self> {
        let parameters = Self::parameters(function);
        let usage = usage(function);
        let mut values: Vec<(String, sqlparser::ast::Expr)> = Vec::new();
        let mut partition_keys = Vec::new();
        let mut positional = 0;
        for arg in args {
            let (name, expr) = match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                    let Some(name) = parameters.get(positional) else {
                        return plan_err!("{function} takes at most {} arguments: {usage}", parameters.len());
                    };
                    positional += 1;
                    (name.to_string(), e)
                }
                FunctionArg::Named {
                    name,
                    arg: FunctionArgExpr::Expr(e),
                    ..
                }
                | FunctionArg::ExprNamed {
                    name: sqlparser::ast::Expr::Identifier(name),
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => {
                    let key = name.value.to_lowercase();
                    if key == PARTITION_KEY_ARG && function == "SESSION" {
                        partition_keys.push(e);
                        continue;
                    }
                    if !parameters.contains(&key.as_str()) {
                        return plan_err!(
                            "{function} has no parameter '{}'; its parameters are {}",
                            name.value,
                            parameters.join(", ").to_uppercase()
                        );
                    }
                    (key, e)
                }
                other => return plan_err!("unexpected argument '{other}' to {function}: {usage}"),
            };
            if values.iter().any(|(n, _)| *n == name) {
                return plan_err!("{function}: {} is given twice", name.to_uppercase());
            }
            values.push((name, expr));
        }
        Ok(Self {
            function: function.to_string(),
            values,
            partition_keys,
        })
    }

    fn take(&mut self, name: &str) -> Option<sqlparser::ast::Expr> {
        let i = self.values.iter().position(|(n, _)| n == name)?;
        Some(self.values.remove(i).1)
    }

    fn require(&mut self, name: &str) -> Result<sqlparser::ast::Expr> {
        self.take(name).ok_or_else(|| {
            plan_datafusion_err!(
                "{} needs {}: {}",
                self.function,
                name.to_uppercase(),
                usage(&self.function)
            )
        })
    }
}

fn usage(function: &str) -> &'static str {
    match function {
        "TUMBLE" => "TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND [, offset])",
        "HOP" => "HOP(TABLE t, DESCRIPTOR(ts), slide, size [, offset])",
        "CUMULATE" => "CUMULATE(TABLE t, DESCRIPTOR(ts), step, size [, offset])",
        _ => "SESSION(TABLE t [PARTITION BY key], DESCRIPTOR(ts), gap)",
    }
}

fn plan_window(
    function: &str,
    mut args: Arguments,
    context: &mut dyn RelationPlannerContext,
) -> Result<(LogicalPlan, String)> {
    let data = args.require("data")?;
    let input = match data {
        sqlparser::ast::Expr::Subquery(query) => context.plan(TableFactor::Derived {
            lateral: false,
            subquery: query,
            alias: None,
            sample: None,
        })?,
        other => {
            return plan_err!(
                "the first argument of {function} must be a table, as in {}; '{other}' is not one",
                usage(function)
            );
        }
    };
    let timecol = args.require("timecol")?;
    let time = context.sql_to_expr(timecol.clone(), input.schema())?;
    let time_type = time.get_type(input.schema())?;
    let DataType::Timestamp(unit, _) = time_type else {
        return plan_err!(
            "{function} needs a time column, but '{timecol}' is {time_type}: use a TIMESTAMP column (or CAST it)"
        );
    };
    let timecol_name = match &time {
        Expr::Column(c) => c.name.clone(),
        other => other.to_string(),
    };
    let mut argument = |name: &str, args: &mut Arguments| -> Result<Option<Nanos>> {
        match args.take(name) {
            None => Ok(None),
            Some(e) => Ok(Some(interval_nanos(function, name, &e, context)?)),
        }
    };
    let positive = |name: &str, value: Option<Nanos>| -> Result<Nanos> {
        match value {
            Some(v) if v > 0 => Ok(v),
            Some(_) => plan_err!("{function}: {} must be a positive interval", name.to_uppercase()),
            None => plan_err!("{function} needs {}: {}", name.to_uppercase(), usage(function)),
        }
    };
    let kind = match function {
        "TUMBLE" => {
            let size = positive("size", argument("size", &mut args)?)?;
            check_precision(function, "size", size, &timecol_name, unit)?;
            WindowKind::Tumble {
                size,
                offset: argument("offset", &mut args)?.unwrap_or(0),
            }
        }
        "HOP" => {
            let slide = positive("slide", argument("slide", &mut args)?)?;
            let size = positive("size", argument("size", &mut args)?)?;
            if slide > size {
                return plan_err!(
                    "HOP: the slide ({}) is larger than the size ({}); windows would leave gaps",
                    show(slide),
                    show(size)
                );
            }
            if size % slide != 0 {
                return plan_err!(
                    "HOP: the size ({}) must be a whole multiple of the slide ({})",
                    show(size),
                    show(slide)
                );
            }
            check_precision(function, "slide", slide, &timecol_name, unit)?;
            check_windows_per_row(function, "slide", slide, size)?;
            WindowKind::Hop {
                slide,
                size,
                offset: argument("offset", &mut args)?.unwrap_or(0),
            }
        }
        "CUMULATE" => {
            let step = positive("step", argument("step", &mut args)?)?;
            let size = positive("size", argument("size", &mut args)?)?;
            if step > size || size % step != 0 {
                return plan_err!(
                    "CUMULATE: the size ({}) must be a whole multiple of the step ({})",
                    show(size),
                    show(step)
                );
            }
            check_precision(function, "step", step, &timecol_name, unit)?;
            check_windows_per_row(function, "step", step, size)?;
            WindowKind::Cumulate {
                step,
                size,
                offset: argument("offset", &mut args)?.unwrap_or(0),
            }
        }
        _ => {
            let gap = positive("gap", argument("gap", &mut args)?)?;
            check_precision(function, "gap", gap, &timecol_name, unit)?;
            WindowKind::Session { gap }
        }
    };
    let keys = std::mem::take(&mut args.partition_keys)
        .into_iter()
        .map(|k| context.sql_to_expr(k, input.schema()))
        .collect::<Result<Vec<_>>>()?;
    let lowering = kind.lowering(&time);
    let node = super::window_node::WindowTvf::try_new(Arc::new(input), time, kind, keys)?;
    Ok((node.into_plan(), lowering))
}

/// A constant INTERVAL argument in nanoseconds (months have no fixed length).
fn interval_nanos(
    function: &str,
    name: &str,
    expr: &sqlparser::ast::Expr,
    context: &mut dyn RelationPlannerContext,
) -> Result<Nanos> {
    // A column or any non-constant fails to plan without a schema: that is
    // the same mistake as a non-literal, so it gets the same message.
    let planned = context.sql_to_expr(expr.clone(), &DFSchema::empty()).ok();
    let value = match &planned {
        Some(Expr::Literal(v, _)) => Some(v.clone()),
        Some(Expr::Negative(inner)) => match inner.as_ref() {
            Expr::Literal(v, _) => v.arithmetic_negate().ok(),
            _ => None,
        },
        _ => None,
    };
    let nanos = match value {
        Some(ScalarValue::IntervalMonthDayNano(Some(v))) if v.months == 0 => {
            Some(days_and_nanos(v.days, Some(v.nanoseconds)).ok_or_else(|| too_long(function, name, expr))?)
        }
        Some(ScalarValue::IntervalDayTime(Some(v))) => Some(
            days_and_nanos(v.days, i64::from(v.milliseconds).checked_mul(1_000_000))
                .ok_or_else(|| too_long(function, name, expr))?,
        ),
        Some(ScalarValue::IntervalMonthDayNano(Some(_)) | ScalarValue::IntervalYearMonth(Some(_))) => {
            return plan_err!(
                "{function}: {} '{expr}' counts months, which have no fixed length; use days",
                name.to_uppercase()
            );
        }
        _ => None,
    };
    nanos.ok_or_else(|| {
        plan_datafusion_err!(
            "{function}: {} must be a constant INTERVAL such as INTERVAL '10' SECOND, not '{expr}'",
            name.to_uppercase()
        )
    })
}

/// `days` plus `nanos` in nanoseconds, if 64 bits hold it.
fn days_and_nanos(days: i32, nanos: Option<i64>) -> Option<Nanos> {
    i64::from(days)
        .checked_mul(86_400_000_000_000)?
        .checked_add(nanos?)
}

fn too_long(function: &str, name: &str, expr: &sqlparser::ast::Expr) -> datafusion::error::DataFusionError {
    plan_datafusion_err!(
        "{function}: {} '{expr}' is longer than the longest window Sluice computes, about 106751 days \
         (nanoseconds in 64 bits); use a shorter interval",
        name.to_uppercase()
    )
}

/// The most windows a HOP or CUMULATE row may be in (size / slide, size /
/// step): each row is copied (batch) or its panes combined (continuous) once
/// per window, so a 1 ms slide of a 1 day HOP (86.4 M windows a row) would
/// grow memory without bound from a few rows.
pub const MAX_WINDOWS_PER_ROW: i64 = 10_000;

/// Refuse a HOP or CUMULATE whose rows would each be in more than
/// [`MAX_WINDOWS_PER_ROW`] windows.
fn check_windows_per_row(function: &str, stride_name: &str, stride: Nanos, size: Nanos) -> Result<()> {
    let windows = size / stride;
    if windows <= MAX_WINDOWS_PER_ROW {
        return Ok(());
    }
    let smallest = size / MAX_WINDOWS_PER_ROW + i64::from(size % MAX_WINDOWS_PER_ROW != 0);
    plan_err!(
        "{function}: a size of {} with a {stride_name} of {} puts every row in {windows} windows, more than the \
         limit of {MAX_WINDOWS_PER_ROW} windows per row; use a {stride_name} of at least {} (that divides the size) or a smaller size",
        show(size),
        show(stride),
        show(smallest)
    )
}

/// Refuse a window length under one unit of the time column (a microsecond
/// over TIMESTAMP(3)): its windows would all be empty (`window_end =
/// window_start` once rounded to the column).
fn check_precision(function: &str, name: &str, nanos: Nanos, timecol: &str, unit: TimeUnit) -> Result<()> {
    let (per_unit, precision, word) = match unit {
        TimeUnit::Second => (1_000_000_000, 0, "SECOND"),
        TimeUnit::Millisecond => (1_000_000, 3, "MILLISECOND"),
        TimeUnit::Microsecond => (1_000, 6, "MICROSECOND"),
        TimeUnit::Nanosecond => return Ok(()),
    };
    if nanos >= per_unit {
        return Ok(());
    }
    plan_err!(
        "{function}: {} ({}) is shorter than the precision of '{timecol}', a TIMESTAMP({precision}) column, so \
         every window would be empty; use at least INTERVAL '1' {word} (or CAST the column to a finer TIMESTAMP)",
        name.to_uppercase(),
        show(nanos)
    )
}

fn interval(nanos: Nanos) -> Expr {
    lit(ScalarValue::IntervalMonthDayNano(Some(
        IntervalMonthDayNano::new(0, 0, nanos),
    )))
}

/// `nanos` as a duration literal in `unit`, or an INTERVAL when `unit` cannot
/// hold it exactly (a sub-second step over a TIMESTAMP(0) column).
pub(crate) fn duration(nanos: Nanos, unit: TimeUnit) -> Expr {
    let per_unit = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    if nanos % per_unit != 0 {
        return interval(nanos);
    }
    let value = Some(nanos / per_unit);
    lit(match unit {
        TimeUnit::Second => ScalarValue::DurationSecond(value),
        TimeUnit::Millisecond => ScalarValue::DurationMillisecond(value),
        TimeUnit::Microsecond => ScalarValue::DurationMicrosecond(value),
        TimeUnit::Nanosecond => ScalarValue::DurationNanosecond(value),
    })
}

fn show(nanos: Nanos) -> String {
    format!("{:?}", std::time::Duration::from_nanos(nanos.unsigned_abs()))
}

/// Build the relational plan of a window over `input`.
pub fn lower(
    input: LogicalPlan,
    time: Expr,
    unit: TimeUnit,
    tz: Option<Arc<str>>,
    kind: &WindowKind,
    partition_keys: Vec<Expr>,
    nulls: &NullEventTimes,
) -> Result<LogicalPlan> {
    // Window bounds move by durations in the time column's own unit: arrow adds
    // those to timestamps as plain integers, while an INTERVAL goes through
    // calendar arithmetic row by row (several times slower on big inputs).
    let shift = |nanos: Nanos| duration(nanos, unit);
    let origin = |offset: Nanos| lit(ScalarValue::TimestampNanosecond(Some(offset), tz.clone()));
    let date_bin = |stride: Nanos, offset: Nanos| {
        datafusion::functions::datetime::date_bin().call(vec![interval(stride), time.clone(), origin(offset)])
    };
    let input_columns: Vec<Expr> = input.schema().columns().into_iter().map(Expr::Column).collect();
    let with = |extra: Vec<Expr>| input_columns.iter().cloned().chain(extra).collect::<Vec<_>>();
    // A window as long as the longest one around each time must fit in
    // nanoseconds, where continuous mode computes bounds.
    let length = match *kind {
        WindowKind::Tumble { size, .. }
        | WindowKind::Hop { size, .. }
        | WindowKind::Cumulate { size, .. } => size,
        WindowKind::Session { gap } => gap,
    };
    let builder = LogicalPlanBuilder::from(input.clone()).filter(event_time_check(
        time.clone(),
        unit,
        length,
        nulls,
    ))?;
    let window_end_cols = |builder: LogicalPlanBuilder, end: Expr| -> Result<LogicalPlanBuilder> {
        builder
            .project(with(vec![col(WINDOW_START), end.alias(WINDOW_END)]))?
            .project(with(vec![
                col(WINDOW_START),
                col(WINDOW_END),
                (col(WINDOW_END) - shift(1_000_000)).alias(WINDOW_TIME),
            ]))
    };
    let plan = match *kind {
        WindowKind::Tumble { size, offset } => {
            let builder = builder.project(with(vec![date_bin(size, offset).alias(WINDOW_START)]))?;
            window_end_cols(builder, col(WINDOW_START) + shift(size))?
        }
        WindowKind::Hop { slide, size, offset } => {
            let shifts = (0..size / slide).map(|k| vec![shift(k * slide)]).collect();
            let builder = shifts_then(shifts, builder)?.project(with(vec![
                (date_bin(slide, offset) - col(HOP_SHIFT)).alias(WINDOW_START),
            ]))?;
            window_end_cols(builder, col(WINDOW_START) + shift(size))?
        }
        WindowKind::Cumulate { step, size, offset } => {
            let lengths = (1..=size / step).map(|j| vec![shift(j * step)]).collect();
            let builder = shifts_then(lengths, builder)?
                .project(with(vec![
                    date_bin(size, offset).alias(WINDOW_START),
                    col(HOP_SHIFT),
                ]))?
                .filter((col(WINDOW_START) + col(HOP_SHIFT)).gt(time.clone()))?;
            window_end_cols(builder, col(WINDOW_START) + col(HOP_SHIFT))?
        }
        WindowKind::Session { gap } => {
            let by_time = vec![time.clone().sort(true, false)];
            let previous = lag(time.clone(), Some(1), None)
                .partition_by(partition_keys.clone())
                .order_by(by_time.clone())
                .build()?
                .alias(SESSION_PREVIOUS);
            let is_new = when(
                col(SESSION_PREVIOUS)
                    .is_null()
                    .or(time.clone().gt(col(SESSION_PREVIOUS) + shift(gap))),
                lit(1i64),
            )
            .otherwise(lit(0i64))?;
            let session_number = window_aggregate(sum_udaf(), col(SESSION_NEW))
                .partition_by(partition_keys.clone())
                .order_by(by_time)
                .build()?
                .alias(SESSION_NUMBER);
            let in_session: Vec<Expr> = partition_keys
                .iter()
                .cloned()
                .chain([col(SESSION_NUMBER)])
                .collect();
            let first = window_aggregate(min_udaf(), time.clone())
                .partition_by(in_session.clone())
                .build()?;
            let last = window_aggregate(max_udaf(), time.clone())
                .partition_by(in_session)
                .build()?;
            let builder = builder
                .window(vec![previous])?
                .project(with(vec![is_new.alias(SESSION_NEW)]))?
                .window(vec![session_number])?
                .window(vec![first.alias(WINDOW_START), last.alias(SESSION_LAST)])?;
            window_end_cols(builder, col(SESSION_LAST) + shift(gap))?
        }
    };
    plan.build()
}

/// The few window shifts (or lengths) crossed with the input. The small side
/// goes first: DataFusion's cross join buffers its left input, and buffering
/// the whole input instead made HOP several times slower.
fn shifts_then(shifts: Vec<Vec<Expr>>, input: LogicalPlanBuilder) -> Result<LogicalPlanBuilder> {
    LogicalPlanBuilder::values(shifts)?
        .project(vec![col("column1").alias(HOP_SHIFT)])?
        .cross_join(input.build()?)
}

fn window_aggregate(udaf: Arc<datafusion::logical_expr::AggregateUDF>, arg: Expr) -> Expr {
    Expr::WindowFunction(Box::new(WindowFunction::new(
        WindowFunctionDefinition::AggregateUDF(udaf),
        vec![arg],
    )))
}

/// The columns a window adds.
pub const WINDOW_START: &str = "window_start";
/// Exclusive end of the window.
pub const WINDOW_END: &str = "window_end";
/// The window's rowtime: its end minus one millisecond.
pub const WINDOW_TIME: &str = "window_time";
const HOP_SHIFT: &str = "__sluice_window_shift";
const SESSION_PREVIOUS: &str = "__sluice_session_previous";
const SESSION_NEW: &str = "__sluice_session_new";
const SESSION_NUMBER: &str = "__sluice_session_number";
const SESSION_LAST: &str = "__sluice_session_last";

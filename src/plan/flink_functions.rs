//! Flink built-ins that DataFusion lacks, as scalar UDFs registered on every
//! session, so Flink queries (Nexmark's among them) run unchanged:
//!
//! | function | Flink semantics kept |
//! |---|---|
//! | `DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm')` | Java pattern letters; a pattern with `%` is chrono's, as DataFusion's own `date_format` (an alias of `to_char`) reads it |
//! | `TO_CHAR(ts, 'YYYY-MM-DD HH24:MI')` | not Flink's but PostgreSQL's (RisingWave's Nexmark writes it): its pattern fields (see [`super::postgres_patterns`]); a pattern with `%` is chrono's, as DataFusion's `to_char` reads it |
//! | `SPLIT_INDEX(s, sep, i)` | the `i`-th (0-based) piece of `s` split at `sep`; NULL when `i` is negative or out of range |
//! | `REGEXP_EXTRACT(s, re[, group])` | group `group` (0 = the whole match) of the first match; NULL if none |
//! | `MOD(a, b)` | remainder with the sign of `a`; BIGINT for integers, DOUBLE otherwise |
//! | `YEAR`, `QUARTER`, `MONTH`, `WEEK`, `DAYOFYEAR`, `DAYOFMONTH`, `DAYOFWEEK`, `HOUR`, `MINUTE`, `SECOND` | a BIGINT field of a timestamp or date (`DAYOFWEEK`: 1 = Sunday) |
//! | `PROCTIME()` | processing time; in batch (and a bounded replay), the query's start time; over a stream, each row's wall-clock time (see [`crate::plan::proctime`]) |
//! | `count_char(s, c)` | Nexmark's UDF (q14): how many bytes of `s` equal the first byte of `c`; 0 for a NULL `s` |
//!
//! Each works on whole Arrow arrays; a NULL argument gives NULL (except where
//! said). `CHAR_LENGTH` and `CHARACTER_LENGTH` are DataFusion's own.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, Int64Builder, StringArray, StringBuilder};
use arrow::compute::kernels::numeric::rem;
use arrow::compute::{DatePart, cast, date_part};
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use regex::Regex;

/// Register the Flink functions on a session.
pub fn register_flink_functions(ctx: &SessionContext) {
    let functions = [
        Function::SplitIndex,
        Function::RegexpExtract,
        Function::Mod,
        Function::ProcTime,
        Function::CountChar,
    ]
    .into_iter()
    .chain(TimeField::ALL.map(Function::Time))
    .map(|function| ScalarUDF::from(FlinkFunction::new(function)))
    .chain([
        ScalarUDF::from(DateFormat::new(Patterns::Java)),
        ScalarUDF::from(DateFormat::new(Patterns::Postgres)),
    ]);
    for function in functions {
        ctx.register_udf(function);
    }
}

// ---------------------------------------------------------------------------
// Arguments

/// A text argument: a column, or one value for every row.
enum Text<'a> {
    Column(&'a StringArray),
    Value(Option<&'a str>),
}

impl<'a> Text<'a> {
    /// Argument `index` of `function`, coerced to Utf8 by the signature.
    fn of(function: &str, args: &'a [ColumnarValue], index: usize) -> Result<Self> {
        match args.get(index) {
            Some(ColumnarValue::Array(array)) => match array.as_string_opt::<i32>() {
                Some(strings) => Ok(Text::Column(strings)),
                None => exec_err!(
                    "{function}: argument {} is {}, not text",
                    index + 1,
                    array.data_type()
                ),
            },
            Some(ColumnarValue::Scalar(ScalarValue::Utf8(value))) => Ok(Text::Value(value.as_deref())),
            Some(ColumnarValue::Scalar(ScalarValue::Null)) => Ok(Text::Value(None)),
            Some(ColumnarValue::Scalar(other)) => {
                exec_err!(
                    "{function}: argument {} is {}, not text",
                    index + 1,
                    other.data_type()
                )
            }
            None => exec_err!("{function}: missing argument {}", index + 1),
        }
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Text::Column(strings) => {
                let strings: &'a StringArray = strings;
                strings.is_valid(row).then(|| strings.value(row))
            }
            Text::Value(value) => *value,
        }
    }
}

/// An integer argument: a column, or one value for every row.
enum Integer<'a> {
    Column(&'a Int64Array),
    Value(Option<i64>),
}

impl<'a> Integer<'a> {
    /// Argument `index` of `function`, coerced to Int64 by the signature.
    fn of(function: &str, args: &'a [ColumnarValue], index: usize) -> Result<Self> {
        match args.get(index) {
            Some(ColumnarValue::Array(array)) => match array.as_primitive_opt() {
                Some(values) => Ok(Integer::Column(values)),
                None => exec_err!(
                    "{function}: argument {} is {}, not BIGINT",
                    index + 1,
                    array.data_type()
                ),
            },
            Some(ColumnarValue::Scalar(ScalarValue::Int64(value))) => Ok(Integer::Value(*value)),
            Some(ColumnarValue::Scalar(ScalarValue::Null)) => Ok(Integer::Value(None)),
            Some(ColumnarValue::Scalar(other)) => {
                exec_err!(
                    "{function}: argument {} is {}, not BIGINT",
                    index + 1,
                    other.data_type()
                )
            }
            None => exec_err!("{function}: missing argument {}", index + 1),
        }
    }

    fn get(&self, row: usize) -> Option<i64> {
        match self {
            Integer::Column(values) => values.is_valid(row).then(|| values.value(row)),
            Integer::Value(value) => *value,
        }
    }
}

/// The rows to compute: the length of the column arguments, or `None` when
/// every argument is a single value (the result is then a single value too).
fn column_rows(args: &[ColumnarValue]) -> Option<usize> {
    args.iter().find_map(|arg| match arg {
        ColumnarValue::Array(array) => Some(array.len()),
        ColumnarValue::Scalar(_) => None,
    })
}

/// `array` as the function's result: itself over columns, its one value over values.
fn result(array: ArrayRef, columns: Option<usize>) -> Result<ColumnarValue> {
    match columns {
        Some(_) => Ok(ColumnarValue::Array(array)),
        None => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)),
    }
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

fn is_integer(data_type: &DataType) -> bool {
    data_type.is_integer() || *data_type == DataType::Null
}

/// Check that `arg_types` are text and integers as `kinds` says (`'t'`/`'i'`)
/// and give the types to cast them to (Utf8, Int64).
fn coerce_text_and_integers(function: &str, kinds: &[char], arg_types: &[DataType]) -> Result<Vec<DataType>> {
    arg_types
        .iter()
        .zip(kinds)
        .enumerate()
        .map(|(i, (data_type, kind))| match kind {
            't' if is_text(data_type) => Ok(DataType::Utf8),
            'i' if is_integer(data_type) => Ok(DataType::Int64),
            't' => plan_err!("{function}: argument {} must be text, not {data_type}", i + 1),
            _ => plan_err!(
                "{function}: argument {} must be an integer, not {data_type}",
                i + 1
            ),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// DATE_FORMAT

/// `DATE_FORMAT(ts, pattern)`: `ts` formatted with a Java `DateTimeFormatter`
/// pattern, translated to chrono's and run by DataFusion's `to_char`; and
/// `TO_CHAR(ts, pattern)` with a PostgreSQL pattern, alike.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateFormat {
    signature: Signature,
    /// Whose pattern letters it reads.
    patterns: Patterns,
    /// DataFusion's `to_char`, which does the formatting.
    to_char: Arc<ScalarUDF>,
}

/// The pattern letters of a formatting function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Patterns {
    /// Java's `DateTimeFormatter` (Flink's `DATE_FORMAT`).
    Java,
    /// PostgreSQL's `to_char`.
    Postgres,
}

impl Patterns {
    /// `pattern` as a chrono format.
    fn to_chrono(self, pattern: &str) -> Result<String> {
        match self {
            Patterns::Java => java_to_chrono(pattern),
            Patterns::Postgres => super::postgres_patterns::postgres_to_chrono(pattern),
        }
    }
}

impl DateFormat {
    fn new(patterns: Patterns) -> Self {
        let to_char = datafusion::functions::datetime::to_char();
        let mut variants = match &to_char.signature().type_signature {
            TypeSignature::OneOf(variants) => variants.clone(),
            other => vec![other.clone()],
        };
        // Flink also formats a timestamp written as text.
        variants.push(TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]));
        Self {
            signature: Signature::one_of(variants, Volatility::Immutable),
            patterns,
            to_char,
        }
    }
}

impl ScalarUDFImpl for DateFormat {
    fn name(&self) -> &str {
        match self.patterns {
            Patterns::Java => "date_format",
            Patterns::Postgres => "to_char",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [time, pattern] = args.args.as_mut_slice() else {
            return exec_err!("{} takes 2 arguments, not {}", self.name(), args.args.len());
        };
        if time.data_type() == DataType::Utf8 {
            let millis = DataType::Timestamp(TimeUnit::Millisecond, None);
            *time = time.cast_to(&millis, None)?;
            if let Some(field) = args.arg_fields.first_mut() {
                *field = Arc::new(field.as_ref().clone().with_data_type(millis));
            }
        }
        // A duration's format is DataFusion's own ('iso8601', 'pretty').
        if matches!(time.data_type(), DataType::Duration(_)) {
            return self.to_char.invoke_with_args(args);
        }
        *pattern = match &*pattern {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(p))) => {
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(self.patterns.to_chrono(p)?)))
            }
            ColumnarValue::Array(patterns) => {
                let patterns = patterns.as_string::<i32>();
                let translated = patterns
                    .iter()
                    .map(|p| p.map(|p| self.patterns.to_chrono(p)).transpose())
                    .collect::<Result<StringArray>>()?;
                ColumnarValue::Array(Arc::new(translated))
            }
            other => other.clone(),
        };
        if let (ColumnarValue::Array(times), ColumnarValue::Scalar(ScalarValue::Utf8(Some(pattern)))) =
            (&*time, &*pattern)
            && let Some(formatted) = super::timestamp_format::format_timestamps(times, pattern)
        {
            return Ok(ColumnarValue::Array(formatted));
        }
        self.to_char.invoke_with_args(args)
    }
}

/// A Java `DateTimeFormatter` pattern (`yyyy-MM-dd HH:mm:ss.SSS`) as a chrono
/// format (`%Y-%m-%d %H:%M:%S%.3f`). A pattern with `%` in it is chrono's
/// already and is kept (DataFusion's `date_format` takes those).
fn java_to_chrono(pattern: &str) -> Result<String> {
    if pattern.contains('%') {
        return Ok(pattern.to_string());
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        i += run;
        if c == '\'' {
            // '' is a quote; 'text' is literal text ('' inside it a quote).
            let mut quotes = run;
            while quotes >= 2 {
                out.push('\'');
                quotes -= 2;
            }
            if quotes == 1 {
                loop {
                    match chars.get(i) {
                        None => return exec_err!("date_format: unclosed quote in pattern '{pattern}'"),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            out.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&literal) => {
                            out.push(literal);
                            i += 1;
                        }
                    }
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.extend(std::iter::repeat_n(c, run));
            continue;
        }
        let padded = |short: &str, long: &str| {
            if run == 1 {
                short.to_string()
            } else {
                long.to_string()
            }
        };
        let spec = match c {
            'y' | 'u' => {
                if run == 2 {
                    "%y".into()
                } else {
                    "%Y".into()
                }
            }
            'M' | 'L' => match run {
                1 => "%-m".into(),
                2 => "%m".into(),
                3 => "%b".into(),
                _ => "%B".into(),
            },
            'd' => padded("%-d", "%d"),
            'D' => padded("%-j", "%j"),
            'E' => {
                if run <= 3 {
                    "%a".into()
                } else {
                    "%A".into()
                }
            }
            'a' => "%p".into(),
            'H' => padded("%-H", "%H"),
            'h' => padded("%-I", "%I"),
            'm' => padded("%-M", "%M"),
            's' => padded("%-S", "%S"),
            'S' if matches!(run, 3 | 6 | 9) => format!("%{run}f"),
            'S' => {
                return exec_err!(
                    "date_format: pattern '{pattern}' asks for {run} fraction digits; use S 3, 6 or 9 times"
                );
            }
            'z' => "%Z".into(),
            'Z' => "%z".into(),
            'X' | 'x' => "%:z".into(),
            other => {
                return exec_err!(
                    "date_format: pattern letter '{other}' in '{pattern}' is not supported; \
                     use y M d D E a H h m s S z Z X, or quote literal text ('T')"
                );
            }
        };
        out.push_str(&spec);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// The others: one UDF type, told apart by `Function`

/// Which Flink function a [`FlinkFunction`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    /// `SPLIT_INDEX(s, sep, i)`: piece `i` (0-based) of `s` split at every
    /// `sep` (empty pieces kept); NULL when `i` is negative or past the last
    /// piece. An empty `sep` splits at whitespace, an empty `s` has no pieces
    /// (as Flink's `StringUtils.splitByWholeSeparatorPreserveAllTokens`).
    SplitIndex,
    /// `REGEXP_EXTRACT(s, re[, group])`: capture group `group` (default 0, the
    /// whole match) of the first match of `re` in `s`. NULL when nothing
    /// matches, the group took no part in the match, or there is no such group.
    RegexpExtract,
    /// `MOD(a, b)`: the remainder of `a / b`, negative only when `a` is.
    /// BIGINT for two integers, DOUBLE otherwise; `MOD(a, 0)` of integers is
    /// an error.
    Mod,
    /// `HOUR(ts)` and its kin: one field of a timestamp or date, as BIGINT.
    Time(TimeField),
    /// `PROCTIME()`: processing time. In batch every row of a query gets the
    /// query's start time (as DataFusion's `now()`), a TIMESTAMP(3).
    ProcTime,
    /// Nexmark's `count_char(s, c)` (its `CountChar` UDF, used by q14): the
    /// number of bytes of `s` equal to the first byte of `c`. A NULL `s`
    /// counts 0, as in Nexmark; a NULL `c` gives NULL and an empty one is an
    /// error.
    CountChar,
}

/// A Flink function as a DataFusion scalar UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlinkFunction {
    function: Function,
    signature: Signature,
    /// `PROCTIME()` over a stream: each call reads the clock (volatile),
    /// never folded to the query's start time.
    live: bool,
}

impl FlinkFunction {
    fn new(function: Function) -> Self {
        let signature = match function {
            Function::ProcTime => Signature::nullary(Volatility::Stable),
            _ => Signature::user_defined(Volatility::Immutable),
        };
        Self {
            function,
            signature,
            live: false,
        }
    }

    /// `PROCTIME()` as a continuous query over a stream evaluates it: the
    /// wall-clock time of each batch of rows.
    pub(crate) fn live_proctime() -> Self {
        Self {
            function: Function::ProcTime,
            signature: Signature::nullary(Volatility::Volatile),
            live: true,
        }
    }

    /// Whether this is `PROCTIME()`, folded or live.
    pub(crate) fn is_proctime(&self) -> bool {
        self.function == Function::ProcTime
    }

    /// Whether this is the live `PROCTIME()` of [`FlinkFunction::live_proctime`].
    pub(crate) fn is_live(&self) -> bool {
        self.live
    }
}

impl ScalarUDFImpl for FlinkFunction {
    fn name(&self) -> &str {
        match self.function {
            Function::SplitIndex => "split_index",
            Function::RegexpExtract => "regexp_extract",
            Function::Mod => "mod",
            Function::Time(field) => field.name(),
            Function::ProcTime => "proctime",
            Function::CountChar => "count_char",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        let text_and_integers = |kinds: &[char], optional: usize, usage: &str| {
            if arg_types.len() > kinds.len() || arg_types.len() + optional < kinds.len() {
                return plan_err!("{name} takes {usage}, not {} arguments", arg_types.len());
            }
            coerce_text_and_integers(name, kinds, arg_types)
        };
        match self.function {
            Function::SplitIndex => text_and_integers(&['t', 't', 'i'], 0, "(text, separator, index)"),
            Function::RegexpExtract => text_and_integers(&['t', 't', 'i'], 1, "(text, pattern[, group])"),
            Function::CountChar => text_and_integers(&['t', 't'], 0, "(text, character)"),
            Function::Mod => coerce_mod(arg_types),
            Function::Time(_) => match arg_types {
                [t @ (DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64)] => {
                    Ok(vec![t.clone()])
                }
                [t] if is_text(t) => Ok(vec![DataType::Timestamp(TimeUnit::Millisecond, None)]),
                [t] => plan_err!("{name} takes a timestamp or a date, not {t}"),
                _ => plan_err!("{name} takes 1 argument, not {}", arg_types.len()),
            },
            Function::ProcTime => Ok(vec![]),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.function {
            Function::SplitIndex | Function::RegexpExtract => DataType::Utf8,
            Function::Time(_) | Function::CountChar => DataType::Int64,
            Function::Mod if arg_types.first() == Some(&DataType::Int64) => DataType::Int64,
            Function::Mod => DataType::Float64,
            Function::ProcTime => DataType::Timestamp(TimeUnit::Millisecond, None),
        })
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        match (self.function, info.query_execution_start_time()) {
            (Function::ProcTime, Some(start)) if !self.live => {
                Ok(ExprSimplifyResult::Simplified(Expr::Literal(
                    ScalarValue::TimestampMillisecond(Some(start.timestamp_millis()), None),
                    None,
                )))
            }
            _ => Ok(ExprSimplifyResult::Original(args)),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let columns = column_rows(&args.args);
        let rows = columns.unwrap_or(1);
        let array = match self.function {
            Function::SplitIndex => split_index_rows(name, &args.args, rows)?,
            Function::RegexpExtract => regexp_extract_rows(name, &args.args, rows)?,
            Function::CountChar => count_char_rows(name, &args.args, rows)?,
            Function::Mod => mod_rows(&args.args, args.return_type())?,
            Function::Time(field) => match args.args.as_slice() {
                [time] => cast(
                    &date_part(time.to_array(1)?.as_ref(), field.part())?,
                    &DataType::Int64,
                )?,
                _ => return exec_err!("{name} takes 1 argument, not {}", args.args.len()),
            },
            Function::ProcTime => {
                let now =
                    ScalarValue::TimestampMillisecond(Some(chrono::Utc::now().timestamp_millis()), None);
                return Ok(ColumnarValue::Scalar(now));
            }
        };
        result(array, columns)
    }
}

fn split_index_rows(name: &str, args: &[ColumnarValue], rows: usize) -> Result<ArrayRef> {
    let text = Text::of(name, args, 0)?;
    let separator = Text::of(name, args, 1)?;
    let index = Integer::of(name, args, 2)?;
    let mut out = StringBuilder::with_capacity(rows, rows * 8);
    for row in 0..rows {
        let piece = match (text.get(row), separator.get(row), index.get(row)) {
            (Some(text), Some(separator), Some(index)) => split_index(text, separator, index),
            _ => None,
        };
        out.append_option(piece);
    }
    Ok(Arc::new(out.finish()))
}

fn split_index<'a>(text: &'a str, separator: &str, index: i64) -> Option<&'a str> {
    let index = usize::try_from(index).ok()?;
    if text.is_empty() {
        return None;
    }
    if separator.is_empty() {
        text.split(char::is_whitespace).nth(index)
    } else {
        text.split(separator).nth(index)
    }
}

fn regexp_extract_rows(name: &str, args: &[ColumnarValue], rows: usize) -> Result<ArrayRef> {
    let text = Text::of(name, args, 0)?;
    let pattern = Text::of(name, args, 1)?;
    let group = match args.len() {
        2 => Integer::Value(Some(0)),
        _ => Integer::of(name, args, 2)?,
    };
    let mut out = StringBuilder::with_capacity(rows, rows * 8);
    // Compiled once for a constant pattern, again only when a pattern column changes.
    let mut compiled: Option<(&str, Regex)> = None;
    for row in 0..rows {
        let (Some(text), Some(pattern), Some(group)) = (text.get(row), pattern.get(row), group.get(row))
        else {
            out.append_null();
            continue;
        };
        let (source, regex) = match compiled.take() {
            Some((source, regex)) if source == pattern => (source, regex),
            _ => (pattern, compile(pattern)?),
        };
        let piece = usize::try_from(group)
            .ok()
            .and_then(|group| regex.captures(text)?.get(group))
            .map(|m| m.as_str());
        out.append_option(piece);
        compiled = Some((source, regex));
    }
    Ok(Arc::new(out.finish()))
}

fn compile(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| {
        datafusion::error::DataFusionError::Execution(format!(
            "regexp_extract: '{pattern}' is not a valid regular expression: {e}"
        ))
    })
}

fn count_char_rows(name: &str, args: &[ColumnarValue], rows: usize) -> Result<ArrayRef> {
    let text = Text::of(name, args, 0)?;
    let character = Text::of(name, args, 1)?;
    let mut out = Int64Builder::with_capacity(rows);
    for row in 0..rows {
        let Some(character) = character.get(row) else {
            out.append_null();
            continue;
        };
        let Some(&byte) = character.as_bytes().first() else {
            return exec_err!("count_char: the character to count is empty");
        };
        let count = text
            .get(row)
            .map_or(0, |text| text.bytes().filter(|&b| b == byte).count());
        out.append_value(i64::try_from(count).unwrap_or(i64::MAX));
    }
    Ok(Arc::new(out.finish()))
}

/// MOD's operands: BIGINT for two integers, DOUBLE for other numbers.
fn coerce_mod(arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let [a, b] = arg_types else {
        return plan_err!("mod takes 2 arguments, not {}", arg_types.len());
    };
    let numeric = |t: &DataType| t.is_numeric() || *t == DataType::Null;
    if !numeric(a) || !numeric(b) {
        return plan_err!("mod takes numbers, not {a} and {b}");
    }
    let common = if is_integer(a) && is_integer(b) {
        DataType::Int64
    } else {
        DataType::Float64
    };
    Ok(vec![common.clone(), common])
}

fn mod_rows(args: &[ColumnarValue], return_type: &DataType) -> Result<ArrayRef> {
    let [a, b] = args else {
        return exec_err!("mod takes 2 arguments, not {}", args.len());
    };
    let datum = |arg: &ColumnarValue| -> Result<Box<dyn arrow::array::Datum>> {
        Ok(match arg {
            ColumnarValue::Array(array) => Box::new(Arc::clone(array)),
            ColumnarValue::Scalar(value) => Box::new(value.cast_to(return_type)?.to_scalar()?),
        })
    };
    Ok(rem(datum(a)?.as_ref(), datum(b)?.as_ref())?)
}

/// Which field of a timestamp a [`Function::Time`] extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TimeField {
    Year,
    Quarter,
    Month,
    Week,
    DayOfYear,
    DayOfMonth,
    DayOfWeek,
    Hour,
    Minute,
    Second,
}

impl TimeField {
    const ALL: [TimeField; 10] = [
        TimeField::Year,
        TimeField::Quarter,
        TimeField::Month,
        TimeField::Week,
        TimeField::DayOfYear,
        TimeField::DayOfMonth,
        TimeField::DayOfWeek,
        TimeField::Hour,
        TimeField::Minute,
        TimeField::Second,
    ];

    fn name(self) -> &'static str {
        match self {
            TimeField::Year => "year",
            TimeField::Quarter => "quarter",
            TimeField::Month => "month",
            TimeField::Week => "week",
            TimeField::DayOfYear => "dayofyear",
            TimeField::DayOfMonth => "dayofmonth",
            TimeField::DayOfWeek => "dayofweek",
            TimeField::Hour => "hour",
            TimeField::Minute => "minute",
            TimeField::Second => "second",
        }
    }

    fn part(self) -> DatePart {
        match self {
            TimeField::Year => DatePart::Year,
            TimeField::Quarter => DatePart::Quarter,
            TimeField::Month => DatePart::Month,
            TimeField::Week => DatePart::WeekISO,
            TimeField::DayOfYear => DatePart::DayOfYear,
            TimeField::DayOfMonth => DatePart::Day,
            TimeField::DayOfWeek => DatePart::DayOfWeekSunday1,
            TimeField::Hour => DatePart::Hour,
            TimeField::Minute => DatePart::Minute,
            TimeField::Second => DatePart::Second,
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::RecordBatch;
    use arrow::util::pretty::pretty_format_batches;

    use super::*;

    /// The rows of `sql` (one query) on a session with the functions.
    async fn query(sql: &str) -> String {
        let ctx = SessionContext::new();
        register_flink_functions(&ctx);
        let batches: Vec<RecordBatch> = ctx
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pretty_format_batches(&batches).expect("printable").to_string()
    }

    async fn query_error(sql: &str) -> String {
        let ctx = SessionContext::new();
        register_flink_functions(&ctx);
        match ctx.sql(sql).await {
            Err(e) => e.to_string(),
            Ok(df) => match df.collect().await {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{sql}: should fail"),
            },
        }
    }

    fn lines(table: &str) -> Vec<String> {
        table
            .lines()
            .filter(|l| l.starts_with('|'))
            .skip(1)
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                cells[1..cells.len() - 1].join(",")
            })
            .collect()
    }

    #[test]
    fn java_patterns_become_chrono_formats() {
        let cases = [
            ("yyyy-MM-dd", "%Y-%m-%d"),
            ("HH:mm", "%H:%M"),
            ("yyyy-MM-dd HH:mm:ss.SSS", "%Y-%m-%d %H:%M:%S.%3f"),
            ("yy/M/d h:m:s a", "%y/%-m/%-d %-I:%-M:%-S %p"),
            ("EEE, d MMM yyyy", "%a, %-d %b %Y"),
            ("yyyy-MM-dd'T'HH 'o''clock'''", "%Y-%m-%dT%H o'clock'"),
            ("%d:%m:%Y", "%d:%m:%Y"),
        ];
        for (java, chrono) in cases {
            assert_eq!(java_to_chrono(java).expect(java), chrono, "{java}");
        }
        assert!(java_to_chrono("yyyy-QQ").is_err());
        assert!(java_to_chrono("'open").is_err());
        assert!(java_to_chrono("ss.SS").is_err());
    }

    #[tokio::test]
    async fn date_format_takes_java_and_chrono_patterns() {
        let out = query(
            "SELECT date_format(TIMESTAMP '2015-07-15 08:05:09.123', 'yyyy-MM-dd') AS d,
                    date_format(TIMESTAMP '2015-07-15 08:05:09.123', 'HH:mm:ss.SSS') AS t,
                    date_format('2015-07-15 18:30:00', 'HH:mm') AS from_text,
                    date_format(DATE '2000-01-02', '%d:%m:%Y') AS chrono,
                    date_format(CAST(NULL AS TIMESTAMP), 'yyyy') AS null_time",
        )
        .await;
        assert_eq!(
            lines(&out),
            ["2015-07-15,08:05:09.123,18:30,02:01:2000,"],
            "{out}"
        );
        let out = query(
            "SELECT date_format(ts, 'yyyy/MM') AS m FROM (VALUES (TIMESTAMP '2020-03-04 00:00:00'), (NULL)) AS t(ts)",
        )
        .await;
        assert_eq!(lines(&out), ["2020/03", ""], "{out}");
        let err = query_error("SELECT date_format(TIMESTAMP '2020-01-01 00:00:00', 'yyyy QQ')").await;
        assert!(err.contains("pattern letter 'Q'"), "{err}");
    }

    #[test]
    fn split_index_follows_flink() {
        let url = "https://www.nexmark.com/abc/def/item.htm?query=1";
        assert_eq!(split_index(url, "/", 0), Some("https:"));
        assert_eq!(split_index(url, "/", 1), Some(""));
        assert_eq!(split_index(url, "/", 3), Some("abc"));
        assert_eq!(split_index(url, "/", 5), Some("item.htm?query=1"));
        assert_eq!(split_index(url, "/", 6), None);
        assert_eq!(split_index(url, "/", -1), None);
        assert_eq!(split_index("a::b", "::", 1), Some("b"));
        assert_eq!(split_index("a b", "", 1), Some("b"));
        assert_eq!(split_index("", ",", 0), None);
    }

    #[tokio::test]
    async fn split_index_over_columns_and_values() {
        let out = query(
            "SELECT split_index(s, '/', i) AS piece FROM (VALUES ('a/b/c', 1), ('x/y', 5), (NULL, 0), ('p/q', NULL)) AS t(s, i)",
        )
        .await;
        assert_eq!(lines(&out), ["b", "", "", ""], "{out}");
        assert_eq!(
            lines(&query("SELECT split_index('a,b', ',', 1) AS p").await),
            ["b"]
        );
        let err = query_error("SELECT split_index('a', 1, 1)").await;
        assert!(err.contains("argument 2 must be text"), "{err}");
    }

    #[tokio::test]
    async fn regexp_extract_takes_a_group() {
        let out = query(
            "SELECT regexp_extract(url, '(&|^)channel_id=([^&]*)', 2) AS id,
                    regexp_extract(url, 'channel_id=[0-9]+') AS whole,
                    regexp_extract(url, '(x)?channel', 1) AS absent,
                    regexp_extract(url, '(a)', 9) AS no_group
             FROM (VALUES ('a=1&channel_id=42&b=2'), ('nothing'), (NULL)) AS t(url)",
        )
        .await;
        assert_eq!(lines(&out), ["42,channel_id=42,,", ",,,", ",,,"], "{out}");
        let err = query_error("SELECT regexp_extract('a', '(', 0)").await;
        assert!(err.contains("'(' is not a valid regular expression"), "{err}");
    }

    #[tokio::test]
    async fn mod_keeps_the_dividends_sign() {
        let out = query(
            "SELECT mod(a, 123) AS m, mod(-7, 3) AS neg, mod(7.5, 2) AS f, mod(CAST(NULL AS BIGINT), 2) AS n
             FROM (VALUES (CAST(246 AS BIGINT)), (250)) AS t(a)",
        )
        .await;
        assert_eq!(lines(&out), ["0,-1,1.5,", "4,-1,1.5,"], "{out}");
        let err = query_error("SELECT mod(a, 0) FROM (VALUES (1)) AS t(a)").await;
        assert!(err.to_lowercase().contains("divide by zero"), "{err}");
    }

    #[tokio::test]
    async fn time_fields_are_bigints() {
        let out = query(
            "SELECT hour(ts) AS h, minute(ts) AS m, second(ts) AS s, year(ts) AS y, month(ts) AS mo,
                    dayofmonth(ts) AS d, dayofweek(ts) AS dow, dayofyear(ts) AS doy, quarter(ts) AS q,
                    week(ts) AS w, arrow_typeof(hour(ts)) AS t
             FROM (VALUES (TIMESTAMP '2015-07-15 21:04:05'), (NULL)) AS v(ts)",
        )
        .await;
        assert_eq!(
            lines(&out),
            ["21,4,5,2015,7,15,4,196,3,29,Int64", ",,,,,,,,,,Int64"],
            "{out}"
        );
        assert_eq!(
            lines(&query("SELECT hour('2015-07-15 08:00:00') AS h").await),
            ["8"]
        );
    }

    #[tokio::test]
    async fn proctime_is_a_millisecond_timestamp() {
        let out = query(
            "SELECT arrow_typeof(proctime()) AS t, proctime() > TIMESTAMP '2020-01-01 00:00:00' AS now",
        )
        .await;
        assert_eq!(lines(&out), ["Timestamp(ms),true"], "{out}");
    }

    #[tokio::test]
    async fn count_char_counts_bytes() {
        let out =
            query("SELECT count_char(s, 'c') AS n FROM (VALUES ('abcabcc'), (''), (NULL)) AS t(s)").await;
        assert_eq!(lines(&out), ["3", "0", "0"], "{out}");
        assert_eq!(
            lines(&query("SELECT count_char('cc', CAST(NULL AS VARCHAR)) AS n").await),
            [""]
        );
        let err = query_error("SELECT count_char('abc', '')").await;
        assert!(err.contains("the character to count is empty"), "{err}");
    }
}

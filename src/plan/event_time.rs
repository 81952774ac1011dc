//! Event times that windows can compute with.
//!
//! Window bounds and watermarks are nanoseconds since the epoch (an `i64`),
//! so a `TIMESTAMP(3)` column can hold times no window can: before
//! 1677-09-21T00:12:43.145224192 or after 2262-04-11T23:47:16.854775807
//! (year 1, year 9999). Such a row must not land in a NULL or 1970 window,
//! nor vanish: both executors refuse it with one error that names the value
//! and the column. Batch checks in the window's lowering (the first filter,
//! [`event_time_check`]); continuous checks there too, and where a source
//! turns event times into watermarks ([`check_nanos_range`]).
//!
//! A row whose event time is NULL is in no window: the same filter leaves it
//! out, as Flink's window operators do (they count it in
//! `numNullRowTimeRecordsDropped`), and counts it ([`NullEventTimes`]), so
//! that both executors can say how many rows were left out and why.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ScalarValue, exec_datafusion_err, exec_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
    lit,
};

/// Fails on the first value of timestamp `array` that nanoseconds since the
/// epoch cannot hold, or that is within `margin` nanoseconds of their limits
/// (a window that long around it would not fit), naming it and `column`;
/// NULLs pass.
pub fn check_nanos_range(array: &dyn Array, column: &str, margin: i64) -> Result<()> {
    let per_unit: i64 = match array.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => return Ok(()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        other => return exec_err!("event time column '{column}' must be a TIMESTAMP, not {other}"),
    };
    let (low, high) = (
        i64::MIN.saturating_add(margin) / per_unit,
        i64::MAX.saturating_sub(margin) / per_unit,
    );
    let values = arrow::compute::cast(array, &DataType::Int64)?;
    let values = values.as_primitive::<Int64Type>();
    let in_range = match (arrow::compute::min(values), arrow::compute::max(values)) {
        (Some(min), Some(max)) => min >= low && max <= high,
        _ => true,
    };
    if in_range {
        return Ok(());
    }
    let outside = (0..values.len()).find(|&i| values.is_valid(i) && !(low..=high).contains(&values.value(i)));
    match outside {
        Some(i) => Err(out_of_range(array, i, column, margin)),
        None => Ok(()),
    }
}

fn out_of_range(array: &dyn Array, row: usize, column: &str, margin: i64) -> DataFusionError {
    let value = arrow::util::display::array_value_to_string(array, row).unwrap_or_else(|_| "?".to_string());
    let less = match margin {
        0 => String::new(),
        m => format!(
            ", less the window's {:?} at either end",
            std::time::Duration::from_nanos(m.unsigned_abs())
        ),
    };
    exec_datafusion_err!(
        "event time {value} in column '{column}' is outside the range windows and watermarks compute in \
         (1677-09-21T00:12:43.145224192 to 2262-04-11T23:47:16.854775807, nanoseconds since 1970{less}): \
         leave such rows out of the window's input, e.g. TABLE (SELECT * FROM t WHERE {column} >= TIMESTAMP '1678-01-01')"
    )
}

/// `time IS NOT NULL`, failing on a time that windows `length` long cannot
/// compute with, and counting the NULLs it leaves out into `nulls`: the first
/// filter of every window's lowering. (A nanosecond column holds only times
/// that fit: `unit` is kept for callers that know it.)
pub fn event_time_check(time: Expr, _unit: TimeUnit, length: i64, nulls: &NullEventTimes) -> Expr {
    let column = match &time {
        Expr::Column(c) => c.name.clone(),
        other => other.to_string(),
    };
    ScalarUDF::from(EventTimeCheck::new(nulls.clone())).call(vec![time, lit(column), lit(length)])
}

/// The rows a window left out because their event time is NULL: a count
/// that the window's node and every lowering of it share (equal by identity,
/// so plans holding it still compare and hash).
#[derive(Debug, Clone, Default)]
pub struct NullEventTimes(Arc<AtomicU64>);

impl NullEventTimes {
    /// Rows left out so far.
    pub fn rows(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, rows: usize) {
        if rows > 0 {
            self.0.fetch_add(rows as u64, Ordering::Relaxed);
        }
    }

    /// Whether `other` is the same count.
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for NullEventTimes {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

impl Eq for NullEventTimes {}

impl std::hash::Hash for NullEventTimes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

/// The windows of `plan` (its window nodes, before lowering) with their
/// event-time columns and NULL counts, each once.
pub fn null_event_times(plan: &LogicalPlan) -> Vec<(String, NullEventTimes)> {
    let mut found: Vec<(String, NullEventTimes)> = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let Some(window) = super::WindowTvf::from_plan(node)
            && !found.iter().any(|(_, n)| n.same(window.null_times()))
        {
            let column = match &window.time {
                Expr::Column(c) => c.name.clone(),
                other => other.to_string(),
            };
            found.push((column, window.null_times().clone()));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// `sluice_event_time(ts, 'ts')`: whether `ts` is not NULL (counting the
/// NULLs); an error for a value out of the nanosecond range.
#[derive(Debug, PartialEq, Eq, Hash)]
struct EventTimeCheck {
    signature: Signature,
    /// Where the NULLs are counted: the window's count.
    nulls: NullEventTimes,
}

impl EventTimeCheck {
    fn new(nulls: NullEventTimes) -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
            nulls,
        }
    }
}

impl ScalarUDFImpl for EventTimeCheck {
    fn name(&self) -> &str {
        "sluice_event_time"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [time, column, length] = args.args.as_slice() else {
            return exec_err!("sluice_event_time takes 3 arguments, not {}", args.args.len());
        };
        let length = match length {
            ColumnarValue::Scalar(ScalarValue::Int64(Some(l))) => *l,
            _ => 0,
        };
        let column = match column {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(c))) => c.as_str(),
            _ => "?",
        };
        match time {
            ColumnarValue::Array(array) => {
                check_nanos_range(array.as_ref(), column, length)?;
                self.nulls.add(array.logical_null_count());
                let valid = arrow::compute::is_not_null(array.as_ref())?;
                Ok(ColumnarValue::Array(Arc::new(valid) as ArrayRef))
            }
            ColumnarValue::Scalar(value) => {
                check_nanos_range(value.to_array()?.as_ref(), column, length)?;
                if value.is_null() {
                    self.nulls.add(args.number_rows);
                }
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(
                    !value.is_null(),
                ))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMillisecondArray;

    #[test]
    fn times_nanoseconds_cannot_hold_are_named() {
        let year_one = -62_135_596_800_000;
        let array = TimestampMillisecondArray::from(vec![Some(0), None, Some(year_one)]);
        let error = check_nanos_range(&array, "ts", 0).map_err(|e| e.to_string());
        let message = error.err().unwrap_or_default();
        assert!(
            message.contains("event time 0001-01-01T00:00:00 in column 'ts'"),
            "{message}"
        );
        let fine = TimestampMillisecondArray::from(vec![Some(0), None, Some(9_223_372_036_854)]);
        assert!(check_nanos_range(&fine, "ts", 0).is_ok());
        let over = TimestampMillisecondArray::from(vec![Some(9_223_372_036_855)]);
        assert!(check_nanos_range(&over, "ts", 0).is_err());
        // A 5 s window ending past 2262-04-11T23:47:16.854775807.
        let close = TimestampMillisecondArray::from(vec![Some(9_223_372_033_000)]);
        assert!(check_nanos_range(&close, "ts", 0).is_ok());
        assert!(check_nanos_range(&close, "ts", 5_000_000_000).is_err());
    }
}

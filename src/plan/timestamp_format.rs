//! Formatting a column of timestamps with one chrono pattern, as DataFusion's
//! `to_char` does, but with the pattern parsed once per batch (arrow's
//! formatter hands chrono the pattern text, which parses it again for every
//! row) and, when the pattern shows nothing finer than minutes, each minute's
//! text made once: consecutive rows of one minute (`DATE_FORMAT(ts,
//! 'yyyy-MM-dd')`, Nexmark q16's) reuse it.
//!
//! Only what it can do exactly as `to_char` does is done here: timestamps
//! without a time zone and a pattern chrono parses. Anything else, and any
//! value it cannot format (out of chrono's range, a time-zone field of a
//! zoneless timestamp), returns `None`, and the caller runs `to_char`, which
//! gives the result or its error.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, StringBuilder};
use arrow::datatypes::{
    ArrowTimestampType, DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow::temporal_conversions::as_datetime;
use chrono::format::{Fixed, Item, Numeric, StrftimeItems};

/// `times` formatted with chrono pattern `pattern`, or `None` where
/// `to_char` must do it (see the module's doc).
pub fn format_timestamps(times: &ArrayRef, pattern: &str) -> Option<ArrayRef> {
    let DataType::Timestamp(unit, None) = times.data_type() else {
        return None;
    };
    let items = StrftimeItems::new(pattern).parse().ok()?;
    match unit {
        TimeUnit::Second => format::<TimestampSecondType>(times.as_primitive(), &items, 60),
        TimeUnit::Millisecond => format::<TimestampMillisecondType>(times.as_primitive(), &items, 60_000),
        TimeUnit::Microsecond => format::<TimestampMicrosecondType>(times.as_primitive(), &items, 60_000_000),
        TimeUnit::Nanosecond => {
            format::<TimestampNanosecondType>(times.as_primitive(), &items, 60_000_000_000)
        }
    }
}

/// Each value of `times` (of `per_minute` units a minute) through `items`.
fn format<T: ArrowTimestampType>(
    times: &PrimitiveArray<T>,
    items: &[Item<'_>],
    per_minute: i64,
) -> Option<ArrayRef> {
    let by_minute = shows_whole_minutes(items);
    let mut out = StringBuilder::with_capacity(times.len(), times.len() * 16);
    // The last minute formatted and its text.
    let mut last: Option<(i64, String)> = None;
    for i in 0..times.len() {
        if times.is_null(i) {
            out.append_null();
            continue;
        }
        let value = times.value(i);
        let minute = value.div_euclid(per_minute);
        if by_minute
            && let Some((at, text)) = &last
            && *at == minute
        {
            out.append_value(text);
            continue;
        }
        let naive = as_datetime::<T>(value)?;
        let mut text = String::new();
        write!(text, "{}", naive.format_with_items(items.iter())).ok()?;
        out.append_value(&text);
        last = Some((minute, text));
    }
    Some(Arc::new(out.finish()))
}

/// Whether `items` show nothing finer than a minute (so every time in one
/// minute reads alike): no seconds, fractions, epoch seconds, or items
/// chrono keeps to itself.
fn shows_whole_minutes(items: &[Item<'_>]) -> bool {
    items.iter().all(|item| match item {
        Item::Literal(_) | Item::OwnedLiteral(_) | Item::Space(_) | Item::OwnedSpace(_) => true,
        Item::Numeric(numeric, _) => matches!(
            numeric,
            Numeric::Year
                | Numeric::YearDiv100
                | Numeric::YearMod100
                | Numeric::IsoYear
                | Numeric::IsoYearDiv100
                | Numeric::IsoYearMod100
                | Numeric::Quarter
                | Numeric::Month
                | Numeric::Day
                | Numeric::WeekFromSun
                | Numeric::WeekFromMon
                | Numeric::IsoWeek
                | Numeric::NumDaysFromSun
                | Numeric::WeekdayFromMon
                | Numeric::Ordinal
                | Numeric::Hour
                | Numeric::Hour12
                | Numeric::Minute
        ),
        Item::Fixed(fixed) => matches!(
            fixed,
            Fixed::ShortMonthName
                | Fixed::LongMonthName
                | Fixed::ShortWeekdayName
                | Fixed::LongWeekdayName
                | Fixed::LowerAmPm
                | Fixed::UpperAmPm
        ),
        Item::Error => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, TimestampMillisecondArray};
    use arrow::util::display::{ArrayFormatter, FormatOptions};

    /// What arrow's formatter (DataFusion's `to_char`) makes of `times`.
    fn to_char(times: &ArrayRef, pattern: &str) -> Vec<Option<String>> {
        let options = FormatOptions::new().with_timestamp_format(Some(pattern));
        let formatter = ArrayFormatter::try_new(times.as_ref(), &options).expect("formats");
        (0..times.len())
            .map(|i| times.is_valid(i).then(|| formatter.value(i).to_string()))
            .collect()
    }

    fn strings(array: &ArrayRef) -> Vec<Option<String>> {
        let array: &StringArray = array.as_string();
        array.iter().map(|s| s.map(str::to_string)).collect()
    }

    #[test]
    fn formats_as_to_char_does_minute_by_minute_and_finer() {
        // Times within one minute, across minutes, days, before 1970, NULLs.
        let millis = [
            Some(0),
            Some(59_999),
            Some(60_000),
            None,
            Some(86_399_999),
            Some(86_400_000),
            Some(-1),
            Some(-60_001),
            Some(1_436_947_509_123),
            Some(1_436_947_509_999),
        ];
        let times: ArrayRef = Arc::new(TimestampMillisecondArray::from(millis.to_vec()));
        for pattern in [
            "%Y-%m-%d",
            "%H:%M",
            "%Y-%m-%d %H:%M:%S%.3f",
            "%-d %b %Y, %a %I %p",
            "%s",
            "%3f",
            "literal text",
        ] {
            let fast = format_timestamps(&times, pattern).expect("a zoneless timestamp");
            assert_eq!(strings(&fast), to_char(&times, pattern), "{pattern}");
        }
    }

    #[test]
    fn leaves_to_char_what_it_cannot_do_alike() {
        let times: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![Some(0)]));
        // A time zone of a zoneless time, a pattern chrono refuses.
        assert!(format_timestamps(&times, "%Y %z").is_none());
        assert!(format_timestamps(&times, "%Q").is_none());
        let zoned: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![Some(0)]).with_timezone("+01:00"));
        assert!(format_timestamps(&zoned, "%Y").is_none());
    }

    #[test]
    fn only_patterns_without_seconds_are_formatted_once_a_minute() {
        let items = |p| StrftimeItems::new(p).parse().expect("parses");
        assert!(shows_whole_minutes(&items("%Y-%m-%d %H:%M %p %A")));
        for finer in ["%S", "%.3f", "%s", "%T", "%3f"] {
            assert!(!shows_whole_minutes(&items(finer)), "{finer}");
        }
    }
}

//! Finding an interval join's time bound in a join condition: among the
//! AND-ed conjuncts, a lower and an upper bound on `left.ts - right.ts`
//! between one left time column and one right time column.
//!
//! The condition is taken as DataFusion's optimizer and type coercion leave
//! it: `BETWEEN` rewritten to `>= AND <=`, time columns of different units
//! cast to one (`CAST(a.ts AS Timestamp(ns))`), intervals as
//! `IntervalMonthDayNano` or `IntervalDayTime` literals, either side of a
//! comparison holding either column, and `a.ts - b.ts BETWEEN INTERVAL ..
//! AND ..` cast to an interval. Each side of a comparison is read as a sum
//! of signed columns plus constant intervals; a comparison bounds the
//! difference when, moved to one side, it is exactly `left.ts - right.ts`
//! against a constant. Intervals of months have no fixed length and bound
//! nothing. Pure: no I/O, used while planning.

use arrow::datatypes::{DataType, IntervalDayTime, IntervalMonthDayNano, TimeUnit};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Between, BinaryExpr, Cast, Expr, Operator, TryCast};

use super::operator::Nanos;
use super::operators::interval_join::IntervalBounds;

/// The time columns an interval bound was found between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeColumns {
    /// The left input's time column.
    pub left: Column,
    /// The right input's time column.
    pub right: Column,
}

/// The bound on `left.ts - right.ts` that `filter` (over `left` then
/// `right` columns) implies, with the columns it is between; `None` unless
/// both a lower and an upper bound are found for one pair of columns.
pub fn interval_bounds(
    filter: &Expr,
    left: &DFSchema,
    right: &DFSchema,
) -> Option<(IntervalBounds, TimeColumns)> {
    let mut found: Vec<Found> = Vec::new();
    for conjunct in split_conjunction(filter) {
        for (lhs, op, rhs) in comparisons(conjunct) {
            let Some(bound) = compare(lhs, op, rhs, left, right) else {
                continue;
            };
            let at = match found
                .iter()
                .position(|f| f.left == bound.left && f.right == bound.right)
            {
                Some(at) => at,
                None => {
                    found.push(Found {
                        left: bound.left.clone(),
                        right: bound.right.clone(),
                        lower: None,
                        upper: None,
                    });
                    found.len() - 1
                }
            };
            if let Some(f) = found.get_mut(at) {
                // Every conjunct holds: the bounds are their intersection.
                if let Some(lower) = bound.lower {
                    f.lower = Some(f.lower.map_or(lower, |l| l.max(lower)));
                }
                if let Some(upper) = bound.upper {
                    f.upper = Some(f.upper.map_or(upper, |u| u.min(upper)));
                }
            }
        }
    }
    found.into_iter().find_map(|f| {
        let (lower, upper) = (f.lower?, f.upper?);
        let bounds = IntervalBounds {
            left_time: left.index_of_column(&f.left).ok()?,
            right_time: right.index_of_column(&f.right).ok()?,
            lower: Nanos::try_from(lower).ok()?,
            upper: Nanos::try_from(upper).ok()?,
        };
        Some((
            bounds,
            TimeColumns {
                left: f.left,
                right: f.right,
            },
        ))
    })
}

/// [`interval_bounds`] of a join's whole condition: its equality keys (where
/// DataFusion puts `a.ts = b.ts`) AND its filter.
pub fn join_interval_bounds(join: &datafusion::logical_expr::Join) -> Option<(IntervalBounds, TimeColumns)> {
    let keys = join.on.iter().map(|(l, r)| {
        Expr::BinaryExpr(BinaryExpr::new(
            Box::new(l.clone()),
            Operator::Eq,
            Box::new(r.clone()),
        ))
    });
    let condition = conjunction(keys.chain(join.filter.clone()))?;
    interval_bounds(&condition, join.left.schema(), join.right.schema())
}

/// Bounds found so far for one pair of columns, nanoseconds.
struct Found {
    left: Column,
    right: Column,
    lower: Option<i128>,
    upper: Option<i128>,
}

/// The comparisons a conjunct makes: itself, or the two of a `BETWEEN`.
fn comparisons(conjunct: &Expr) -> Vec<(&Expr, Operator, &Expr)> {
    match conjunct {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
            ) =>
        {
            vec![(left.as_ref(), *op, right.as_ref())]
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => vec![
            (expr.as_ref(), Operator::GtEq, low.as_ref()),
            (expr.as_ref(), Operator::LtEq, high.as_ref()),
        ],
        _ => vec![],
    }
}

/// What one comparison says of `left - right`.
struct Bound {
    left: Column,
    right: Column,
    lower: Option<i128>,
    upper: Option<i128>,
}

/// `lhs op rhs` as a bound on `left.ts - right.ts`, if it is one.
fn compare(lhs: &Expr, op: Operator, rhs: &Expr, left: &DFSchema, right: &DFSchema) -> Option<Bound> {
    // lhs op rhs  <=>  lhs - rhs op 0.
    let mut difference = linear(lhs, left, right)?;
    difference.add(linear(rhs, left, right)?, -1);
    let [(a, sign_a), (b, sign_b)] = difference.terms.as_slice() else {
        return None;
    };
    // `l - r + offset op 0`, or `r - l + offset op 0`.
    let (l, r, flipped) = match (side_of(a, left, right)?, side_of(b, left, right)?, sign_a, sign_b) {
        (Side::Left, Side::Right, 1, -1) => (a, b, false),
        (Side::Right, Side::Left, -1, 1) => (b, a, false),
        (Side::Left, Side::Right, -1, 1) => (a, b, true),
        (Side::Right, Side::Left, 1, -1) => (b, a, true),
        _ => return None,
    };
    // d = l - r: `d op -offset`, or `-d op -offset`, which is `d op' offset`.
    let (op, c) = if flipped {
        (op.swap()?, difference.offset)
    } else {
        (op, -difference.offset)
    };
    let (lower, upper) = match op {
        Operator::Eq => (Some(c), Some(c)),
        Operator::Gt | Operator::GtEq => (Some(c), None),
        Operator::Lt | Operator::LtEq => (None, Some(c)),
        _ => return None,
    };
    Some(Bound {
        left: l.clone(),
        right: r.clone(),
        lower,
        upper,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// Which input a time column is of (a column of both, or of neither, is not
/// a time bound's).
fn side_of(column: &Column, left: &DFSchema, right: &DFSchema) -> Option<Side> {
    let is_time = |schema: &DFSchema| matches!(type_of(column, schema), Some(DataType::Timestamp(_, _)));
    match (is_time(left), is_time(right)) {
        (true, false) => Some(Side::Left),
        (false, true) => Some(Side::Right),
        _ => None,
    }
}

/// The type of `column` in `schema`, if it is there.
fn type_of<'a>(column: &Column, schema: &'a DFSchema) -> Option<&'a DataType> {
    let index = schema.index_of_column(column).ok()?;
    Some(schema.field(index).data_type())
}

/// A sum of signed columns plus a constant, in nanoseconds.
#[derive(Debug, Default)]
struct Linear {
    terms: Vec<(Column, i64)>,
    offset: i128,
}

impl Linear {
    /// `self + sign * other`, like terms collected.
    fn add(&mut self, other: Linear, sign: i64) {
        self.offset += i128::from(sign) * other.offset;
        for (column, s) in other.terms {
            match self.terms.iter_mut().find(|(c, _)| *c == column) {
                Some((_, t)) => *t += sign * s,
                None => self.terms.push((column, sign * s)),
            }
        }
        self.terms.retain(|(_, s)| *s != 0);
    }
}

/// `expr` as a [`Linear`] of time columns and constant intervals, if it is
/// one: columns, interval and duration literals, `+`/`-`, and casts that
/// keep the instant (between timestamp units of one zone, or of a
/// difference of times to an interval or duration).
fn linear(expr: &Expr, left: &DFSchema, right: &DFSchema) -> Option<Linear> {
    match expr {
        Expr::Column(c) => Some(Linear {
            terms: vec![(c.clone(), 1)],
            offset: 0,
        }),
        Expr::Literal(value, _) => Some(Linear {
            terms: vec![],
            offset: fixed_nanos(value)?,
        }),
        Expr::BinaryExpr(BinaryExpr {
            left: l,
            op,
            right: r,
        }) => {
            let sign = match op {
                Operator::Plus => 1,
                Operator::Minus => -1,
                _ => return None,
            };
            let mut sum = linear(l, left, right)?;
            sum.add(linear(r, left, right)?, sign);
            Some(sum)
        }
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            let inner = linear(expr, left, right)?;
            match field.data_type() {
                DataType::Timestamp(_, zone) => {
                    // Casting away or to another zone moves the wall clock.
                    let keeps_zone = inner.terms.iter().all(|(c, _)| {
                        [left, right]
                            .iter()
                            .any(|s| matches!(type_of(c, s), Some(DataType::Timestamp(_, z)) if z == zone))
                    });
                    keeps_zone.then_some(inner)
                }
                DataType::Interval(_) | DataType::Duration(_) => Some(inner),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The fixed length of an interval or duration literal, in nanoseconds
/// (`None` for months and years, whose length varies, and for NULL).
fn fixed_nanos(value: &ScalarValue) -> Option<i128> {
    const DAY: i128 = 86_400 * 1_000_000_000;
    let duration = |v: i64, unit: TimeUnit| {
        let per = match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        };
        i128::from(v) * per
    };
    match value {
        ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano {
            months: 0,
            days,
            nanoseconds,
        })) => Some(i128::from(*days) * DAY + i128::from(*nanoseconds)),
        ScalarValue::IntervalDayTime(Some(IntervalDayTime { days, milliseconds })) => {
            Some(i128::from(*days) * DAY + i128::from(*milliseconds) * 1_000_000)
        }
        ScalarValue::IntervalYearMonth(Some(0)) => Some(0),
        ScalarValue::DurationSecond(Some(v)) => Some(duration(*v, TimeUnit::Second)),
        ScalarValue::DurationMillisecond(Some(v)) => Some(duration(*v, TimeUnit::Millisecond)),
        ScalarValue::DurationMicrosecond(Some(v)) => Some(duration(*v, TimeUnit::Microsecond)),
        ScalarValue::DurationNanosecond(Some(v)) => Some(duration(*v, TimeUnit::Nanosecond)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema};
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::datasource::MemTable;
    use datafusion::logical_expr::{LogicalPlan, cast, col, lit};
    use datafusion::prelude::SessionContext;

    use super::*;

    const S: Nanos = 1_000_000_000;

    /// `(k, ts)` of table `name`, `ts` in `unit`.
    fn schema(name: &str, unit: TimeUnit) -> DFSchema {
        let fields = Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(unit, None), true),
            Field::new("v", DataType::Int64, true),
        ]);
        DFSchema::try_from_qualified_schema(name, &fields).expect("a schema")
    }

    fn minutes(m: i64) -> Expr {
        lit(ScalarValue::new_interval_mdn(0, 0, m * 60 * S))
    }

    fn bounds_of(filter: Expr) -> Option<(Nanos, Nanos)> {
        let (a, b) = (
            schema("a", TimeUnit::Nanosecond),
            schema("b", TimeUnit::Nanosecond),
        );
        interval_bounds(&filter, &a, &b).map(|(bounds, columns)| {
            assert_eq!((bounds.left_time, bounds.right_time), (1, 1));
            assert_eq!(columns.left, Column::from_qualified_name("a.ts"));
            (bounds.lower, bounds.upper)
        })
    }

    #[test]
    fn a_between_bounds_the_difference_both_ways() {
        let filter = col("a.ts").between(col("b.ts") - minutes(5), col("b.ts") + minutes(1));
        assert_eq!(bounds_of(filter), Some((-300 * S, 60 * S)));
    }

    #[test]
    fn sides_in_either_order_and_several_bounds_intersect() {
        let filter = (col("b.ts") - minutes(5))
            .lt_eq(col("a.ts"))
            .and(col("b.ts").gt(col("a.ts")))
            .and(col("a.k").eq(col("b.k")))
            .and(col("a.ts").lt_eq(col("b.ts") + minutes(3)));
        assert_eq!(bounds_of(filter), Some((-300 * S, 0)));
        // The interval on the left's side.
        let filter = (col("a.ts") + minutes(2))
            .gt_eq(col("b.ts"))
            .and((col("a.ts") - minutes(2)).lt_eq(col("b.ts")));
        assert_eq!(bounds_of(filter), Some((-120 * S, 120 * S)));
    }

    #[test]
    fn equal_times_bound_to_zero_and_one_bound_alone_is_none() {
        assert_eq!(bounds_of(col("a.ts").eq(col("b.ts"))), Some((0, 0)));
        assert_eq!(bounds_of(col("a.ts").gt_eq(col("b.ts") - minutes(5))), None);
        // A column against itself, or two columns of one side, bound nothing.
        assert_eq!(
            bounds_of(col("a.ts").between(col("a.ts") - minutes(1), col("a.ts"))),
            None
        );
    }

    #[test]
    fn day_time_intervals_count_and_months_do_not() {
        let day = lit(ScalarValue::new_interval_dt(1, 500));
        let filter = col("a.ts").between(col("b.ts"), col("b.ts") + day);
        assert_eq!(bounds_of(filter), Some((0, 86_400 * S + S / 2)));
        let month = lit(ScalarValue::new_interval_mdn(1, 0, 0));
        assert_eq!(
            bounds_of(col("a.ts").between(col("b.ts"), col("b.ts") + month)),
            None
        );
    }

    #[test]
    fn casts_between_units_keep_the_bound_and_casts_to_numbers_do_not() {
        let ns = DataType::Timestamp(TimeUnit::Nanosecond, None);
        let filter = cast(col("a.ts"), ns.clone()).between(col("b.ts") - minutes(1), col("b.ts"));
        assert_eq!(bounds_of(filter), Some((-60 * S, 0)));
        let filter = cast(col("a.ts"), DataType::Int64).between(col("b.ts") - minutes(1), col("b.ts"));
        assert_eq!(bounds_of(filter), None);
        let zoned = DataType::Timestamp(TimeUnit::Nanosecond, Some("+01:00".into()));
        let filter = cast(col("a.ts"), zoned).between(col("b.ts") - minutes(1), col("b.ts"));
        assert_eq!(bounds_of(filter), None);
    }

    /// The join of `sql` over tables `a` (`ts` in milliseconds) and `b` (in
    /// nanoseconds), as DataFusion optimizes it, and its bounds.
    async fn planned(sql: &str) -> Option<(Nanos, Nanos)> {
        let ctx = SessionContext::new();
        for (name, unit) in [("a", TimeUnit::Millisecond), ("b", TimeUnit::Nanosecond)] {
            let fields = Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, true),
                Field::new("ts", DataType::Timestamp(unit, None), true),
            ]));
            let table = MemTable::try_new(fields, vec![vec![]]).expect("a table");
            ctx.register_table(name, Arc::new(table)).expect("registers");
        }
        let plan = ctx
            .sql(sql)
            .await
            .expect("plans")
            .into_optimized_plan()
            .expect("optimizes");
        let mut bounds = None;
        plan.apply(|node| {
            if let LogicalPlan::Join(join) = node {
                bounds = Some(join_interval_bounds(join).map(|(b, _)| (b.lower, b.upper)));
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .expect("walks");
        bounds.expect("a join")
    }

    #[tokio::test]
    async fn bounds_of_the_plans_datafusion_makes() {
        let cases = [
            (
                "SELECT * FROM a JOIN b ON a.k = b.k AND a.ts BETWEEN b.ts - INTERVAL '5' MINUTE AND b.ts + INTERVAL '1' MINUTE",
                Some((-300 * S, 60 * S)),
            ),
            (
                "SELECT * FROM a JOIN b ON a.k = b.k AND a.ts >= b.ts - INTERVAL '5' MINUTE AND a.ts <= b.ts + INTERVAL '1' MINUTE",
                Some((-300 * S, 60 * S)),
            ),
            (
                "SELECT * FROM a JOIN b ON a.k = b.k WHERE b.ts - INTERVAL '5' SECOND <= a.ts AND b.ts > a.ts",
                Some((-5 * S, 0)),
            ),
            (
                "SELECT * FROM a JOIN b ON a.k = b.k AND a.ts = b.ts",
                Some((0, 0)),
            ),
            (
                "SELECT * FROM b, a WHERE a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '1' DAY",
                Some((0, 86_400 * S)),
            ),
            (
                "SELECT * FROM a LEFT JOIN b ON a.k = b.k AND a.ts - b.ts BETWEEN INTERVAL '0' SECOND AND INTERVAL '10' SECOND",
                Some((0, 10 * S)),
            ),
            (
                "SELECT * FROM a JOIN b ON a.k = b.k AND a.ts >= b.ts - INTERVAL '5' MINUTE",
                None,
            ),
            ("SELECT * FROM a JOIN b ON a.k = b.k", None),
        ];
        for (sql, expected) in cases {
            assert_eq!(planned(sql).await, expected, "{sql}");
        }
    }
}

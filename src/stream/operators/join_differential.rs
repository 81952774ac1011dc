//! The stream-stream joins against DataFusion's batch join: the same rows,
//! replayed as two streams in time order (no row late), must give exactly
//! the batch result as a multiset once both inputs ended, for every join
//! type each operator runs. The operators get what the planner would give
//! them: keys, filter and schemas from DataFusion's optimized `Join`, the
//! interval bound from [`crate::stream::interval_bounds`].

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::array::{AsArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::JoinType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Join, LogicalPlan};
use datafusion::prelude::SessionContext;

use super::interval_join::IntervalJoinOperator;
use super::join::JoinSpec;
use super::stream_join::StreamJoinOperator;
use super::testing::{S, late, metrics, rows_text};
use super::window_join::{WindowBound, WindowJoinOperator};
use crate::stream::changelog::Change;
use crate::stream::graph::WatermarkMerge;
use crate::stream::interval_bounds::join_interval_bounds;
use crate::stream::operator::{Event, MultiInputOperator, NO_WATERMARK, Nanos, RowWatermarks, StreamBatch};

const ROWS: usize = 60;

/// `(k, ts, window_start, window_end, n, v)`: keys 0..4 or NULL, times over
/// a minute, 10 s tumbling windows; `a` in milliseconds, `b` in nanoseconds.
fn table(name: &str, seed: u64) -> (SchemaRef, RecordBatch) {
    let unit = if name == "a" {
        TimeUnit::Millisecond
    } else {
        TimeUnit::Nanosecond
    };
    let ts = DataType::Timestamp(unit, None);
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("ts", ts.clone(), true),
        Field::new("window_start", ts.clone(), false),
        Field::new("window_end", ts, false),
        Field::new("n", DataType::Int64, true),
        Field::new("v", DataType::Utf8, true),
    ]));
    let mut state = seed;
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    let mut rows: Vec<(Option<i64>, Nanos, i64)> = (0..ROWS)
        .map(|_| {
            let k = next(5) as i64;
            let ms = next(60_000) as i64 / 250 * 250;
            (
                if k == 4 { None } else { Some(k) },
                ms * 1_000_000,
                next(10) as i64,
            )
        })
        .collect();
    rows.sort_by_key(|r| r.1);
    let times: Vec<Nanos> = rows.iter().map(|r| r.1).collect();
    let starts: Vec<Nanos> = times.iter().map(|t| t - t.rem_euclid(10 * S)).collect();
    let ends: Vec<Nanos> = starts.iter().map(|s| s + 10 * S).collect();
    let column = |values: &[Nanos]| -> ArrayRef {
        match unit {
            TimeUnit::Millisecond => Arc::new(TimestampMillisecondArray::from(
                values.iter().map(|v| v / 1_000_000).collect::<Vec<_>>(),
            )),
            _ => Arc::new(TimestampNanosecondArray::from(values.to_vec())),
        }
    };
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            column(&times),
            column(&starts),
            column(&ends),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                (0..ROWS).map(|i| format!("{name}{i}")).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("a batch");
    (schema, batch)
}

/// The batch result of `sql` over `a` and `b`, sorted, and its optimized join.
async fn batch_join(ctx: &SessionContext, sql: &str) -> (Vec<String>, Join) {
    let frame = ctx.sql(sql).await.expect("plans");
    let plan = frame.clone().into_optimized_plan().expect("optimizes");
    let mut join = None;
    plan.apply(|node| {
        if let LogicalPlan::Join(j) = node {
            join = Some(j.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("walks");
    let batches = frame.collect().await.expect("runs");
    let mut rows: Vec<String> = batches
        .iter()
        .flat_map(|b| rows_text(b.columns(), b.num_rows()))
        .collect();
    rows.sort();
    (rows, join.expect("a join node"))
}

/// What the planner would hand an operator for `join`.
fn spec_of(ctx: &SessionContext, join: &Join) -> JoinSpec {
    let state = ctx.state();
    let physical = |e: &datafusion::logical_expr::Expr, s: &datafusion::common::DFSchema| {
        state.create_physical_expr(e.clone(), s).expect("a physical expr")
    };
    let pairs = join.left.schema().join(join.right.schema()).expect("pairs");
    JoinSpec {
        join_type: join.join_type,
        left_keys: join
            .on
            .iter()
            .map(|(l, _)| physical(l, join.left.schema()))
            .collect(),
        right_keys: join
            .on
            .iter()
            .map(|(_, r)| physical(r, join.right.schema()))
            .collect(),
        filter: join.filter.as_ref().map(|f| physical(f, &pairs)),
        left_schema: Arc::new(join.left.schema().as_arrow().clone()),
        right_schema: Arc::new(join.right.schema().as_arrow().clone()),
        schema: Arc::new(join.schema.as_arrow().clone()),
    }
}

/// Both tables as two streams through `operator`, in time order (`times`
/// of each side's rows: the side whose next rows are earlier goes first), a
/// watermark after each batch at its last time; what it emitted, with
/// changes applied, sorted, and the most rows it held at once.
fn stream(
    operator: &mut dyn MultiInputOperator,
    inputs: [&RecordBatch; 2],
    times: [&[Nanos]; 2],
    chunk: usize,
) -> (Vec<String>, usize) {
    let mut merge = WatermarkMerge::new(2);
    let mut at = [0usize; 2];
    let mut watermark = [NO_WATERMARK; 2];
    let time = |port: usize, row: usize| -> Nanos { times[port][row] };
    let mut out = Vec::new();
    let mut most = 0;
    loop {
        let next = (0..2)
            .filter(|&p| at[p] < inputs[p].num_rows())
            .min_by_key(|&p| time(p, at[p]));
        let Some(port) = next else { break };
        let len = chunk.min(inputs[port].num_rows() - at[port]);
        let rows = inputs[port].slice(at[port], len);
        let last = time(port, at[port] + len - 1);
        let batch = StreamBatch::new(rows, RowWatermarks::Constant(watermark[port]));
        merge
            .push(port, Event::Data(batch), operator, &mut out)
            .expect("joins");
        watermark[port] = last;
        merge
            .push(port, Event::Watermark(last), operator, &mut out)
            .expect("advances");
        at[port] += len;
        most = most.max(operator.state_rows());
    }
    for port in 0..2 {
        merge.push(port, Event::End, operator, &mut out).expect("ends");
    }
    assert_eq!(
        operator.state_rows(),
        0,
        "{} kept rows after the end",
        operator.name()
    );
    let mut rows: Vec<String> = Vec::new();
    for event in out {
        let Event::Data(batch) = event else { continue };
        let texts = rows_text(batch.batch.columns(), batch.batch.num_rows());
        let changes = batch.changes.as_ref();
        for (i, text) in texts.into_iter().enumerate() {
            match changes.map(|c| c.get(i)) {
                None | Some(Change::Insert) => rows.push(text),
                Some(Change::Delete) => match rows.iter().position(|r| *r == text) {
                    Some(at) => {
                        rows.swap_remove(at);
                    }
                    None => panic!("-D of a row never inserted: {text}"),
                },
                Some(other) => panic!("a join emitted {}", other.text()),
            }
        }
    }
    rows.sort();
    (rows, most)
}

fn context() -> (SessionContext, [RecordBatch; 2]) {
    let ctx = SessionContext::new();
    let mut batches = Vec::new();
    for (name, seed) in [("a", 7), ("b", 11)] {
        let (schema, batch) = table(name, seed);
        let provider = MemTable::try_new(schema, vec![vec![batch.clone()]]).expect("a table");
        ctx.register_table(name, Arc::new(provider)).expect("registers");
        batches.push(batch);
    }
    let [a, b]: [RecordBatch; 2] = batches.try_into().expect("two tables");
    (ctx, [a, b])
}

const JOIN_TYPES: [(&str, JoinType); 8] = [
    ("JOIN", JoinType::Inner),
    ("LEFT JOIN", JoinType::Left),
    ("RIGHT JOIN", JoinType::Right),
    ("FULL JOIN", JoinType::Full),
    ("LEFT SEMI JOIN", JoinType::LeftSemi),
    ("LEFT ANTI JOIN", JoinType::LeftAnti),
    ("RIGHT SEMI JOIN", JoinType::RightSemi),
    ("RIGHT ANTI JOIN", JoinType::RightAnti),
];

/// Run every join type of `condition` through the operator `build` makes,
/// in batches of 1, 4 and 16 rows, against DataFusion's batch join.
async fn differential(
    condition: &str,
    bounded: bool,
    build: impl Fn(&SessionContext, &Join) -> Box<dyn MultiInputOperator>,
) {
    let (ctx, [a, b]) = context();
    for (sql_join, join_type) in JOIN_TYPES {
        let sql = format!("SELECT * FROM a {sql_join} b ON {condition}");
        let (expected, join) = batch_join(&ctx, &sql).await;
        assert_eq!(join.join_type, join_type, "{sql}");
        assert!(
            !expected.is_empty(),
            "{sql} joins nothing: the test data should make it"
        );
        // The columns each side's scan reads.
        let project = |batch: &RecordBatch, input: &LogicalPlan| {
            let columns: Vec<usize> = (input.schema().fields().iter())
                .map(|f| batch.schema().index_of(f.name()).expect("a column of the table"))
                .collect();
            batch.project(&columns).expect("projects")
        };
        let (left, right) = (project(&a, &join.left), project(&b, &join.right));
        let times = [&a, &b].map(|t| {
            let ts = crate::stream::operator::to_nanos(t.column(1), "ts").expect("nanos");
            ts.as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                .values()
                .to_vec()
        });
        for chunk in [1, 4, 16] {
            let mut operator = build(&ctx, &join);
            let (got, most) = stream(operator.as_mut(), [&left, &right], [&times[0], &times[1]], chunk);
            assert_eq!(got, expected, "{sql} in batches of {chunk}");
            // State falls behind the watermark: never every row at once.
            assert!(
                !bounded || most < (left.num_rows() + right.num_rows()) / 2,
                "{sql} in batches of {chunk} held {most} rows"
            );
        }
    }
}

#[tokio::test]
async fn interval_joins_give_the_batch_result() {
    let build = |ctx: &SessionContext, join: &Join| -> Box<dyn MultiInputOperator> {
        let (bounds, _) = join_interval_bounds(join).expect("a time bound");
        let metrics = metrics();
        let late = [late(&metrics), late(&metrics)];
        Box::new(IntervalJoinOperator::try_new(spec_of(ctx, join), bounds, late).expect("plans"))
    };
    differential(
        "a.k = b.k AND a.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts + INTERVAL '2' SECOND AND a.n <= b.n + 4",
        true,
        build,
    )
    .await;
    // No keys: every pair within the bound is a candidate.
    differential("b.ts >= a.ts AND b.ts - INTERVAL '1' SECOND <= a.ts", true, build).await;
}

#[tokio::test]
async fn window_joins_give_the_batch_result() {
    differential(
        "a.k = b.k AND a.window_start = b.window_start AND a.window_end = b.window_end AND a.n < b.n + 3",
        true,
        |ctx, join| {
            let metrics = metrics();
            let late = [late(&metrics), late(&metrics)];
            let end = |input: &LogicalPlan| {
                (input.schema().index_of_column_by_name(None, "window_end")).expect("window_end")
            };
            let (left_end, right_end) = (
                WindowBound::end(end(&join.left)),
                WindowBound::end(end(&join.right)),
            );
            Box::new(
                WindowJoinOperator::try_new(spec_of(ctx, join), left_end, right_end, late).expect("plans"),
            )
        },
    )
    .await;
}

#[tokio::test]
async fn stream_joins_give_the_batch_result() {
    differential("a.k = b.k AND a.n < b.n", false, |ctx, join| {
        Box::new(StreamJoinOperator::try_new(spec_of(ctx, join), None).expect("plans"))
    })
    .await;
}

//! The `nexmark` and `datagen` connectors end to end: `CREATE TABLE ... WITH
//! ('connector' = ...)` through the engine, queried in batch.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionConfig;
use sluice::Engine;

/// Run a script and return the last statement's rows, pretty-printed.
async fn run(engine: &Engine, sql: &str) -> String {
    let results = engine
        .run_script(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let last: Vec<RecordBatch> = results.into_iter().last().unwrap_or_default();
    pretty_format_batches(&last).expect("printable").to_string()
}

/// The error a script fails with.
async fn error(engine: &Engine, sql: &str) -> String {
    match engine.run_script(sql).await {
        Ok(_) => panic!("{sql}: should fail"),
        Err(e) => e.to_string(),
    }
}

/// The single integer a script's last query returns.
async fn scalar(engine: &Engine, sql: &str) -> i64 {
    let results = engine
        .run_script(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batch = results
        .into_iter()
        .last()
        .and_then(|b| b.into_iter().find(|b| b.num_rows() > 0))
        .expect("a row");
    batch.column(0).as_primitive::<Int64Type>().value(0)
}

const STREAMS: &str = "
CREATE TABLE person WITH ('connector' = 'nexmark', 'events' = '100000', 'seed' = '42');
CREATE TABLE auction WITH ('connector' = 'nexmark', 'events' = '100000', 'seed' = '42');
CREATE TABLE bid WITH ('connector' = 'nexmark', 'table' = 'bid', 'events' = '100000', 'seed' = '42');
";

#[tokio::test]
async fn nexmark_counts_are_exact() {
    let engine = Engine::new();
    let sql = "CREATE TABLE bid WITH ('connector' = 'nexmark', 'table' = 'bid', 'events' = '10000');
               SELECT count(*) FROM bid";
    assert_eq!(scalar(&engine, sql).await, 9_200);
    let sql = format!("{STREAMS} SELECT count(*) FROM person");
    assert_eq!(scalar(&Engine::new(), &sql).await, 2_000);
    let sql = format!("{STREAMS} SELECT count(*) FROM auction");
    assert_eq!(scalar(&Engine::new(), &sql).await, 6_000);
}

#[tokio::test]
async fn results_do_not_depend_on_partitions_or_batch_size() {
    let query = format!(
        "{STREAMS} SELECT count(*) AS n, sum(price) AS total, count(DISTINCT auction) AS auctions,
                          min(date_time) AS first, max(date_time) AS last,
                          count(DISTINCT channel) AS channels, count(DISTINCT url) AS urls,
                          sum(length(extra)) AS extra
                   FROM bid"
    );
    let one = Engine::with_config(SessionConfig::new().with_target_partitions(1));
    let many = Engine::with_config(
        SessionConfig::new()
            .with_target_partitions(4)
            .with_batch_size(1000),
    );
    let a = run(&one, &query).await;
    assert_eq!(a, run(&many, &query).await);
    assert!(a.contains("| 92000 |"), "{a}");
    assert!(a.contains("2015-07-15T00:00:00 "), "{a}");
    assert!(a.contains("2015-07-15T00:00:09.999"), "{a}");
}

#[tokio::test]
async fn streams_join_on_consistent_ids() {
    let engine = Engine::new();
    // Nearly every bid's auction and bidder exist (ids may lead by up to 10).
    let sql = format!(
        "{STREAMS} SELECT count(*) FROM bid b JOIN auction a ON b.auction = a.id JOIN person p ON b.bidder = p.id"
    );
    let joined = scalar(&engine, &sql).await;
    assert!(joined > 91_000, "{joined}");
    // Nexmark q3-style: auctions by sellers in some states, in category 10.
    let sql = format!(
        "{STREAMS} SELECT count(*) FROM auction a JOIN person p ON a.seller = p.id
                   WHERE a.category = 10 AND p.state IN ('OR', 'ID', 'CA')"
    );
    let q3 = scalar(&Engine::new(), &sql).await;
    assert!((300..900).contains(&q3), "{q3}");
}

#[tokio::test]
async fn declared_columns_and_watermarks_work() {
    let engine = Engine::new();
    let sql = "
        CREATE TABLE bids (auction BIGINT, price BIGINT, date_time TIMESTAMP(3),
                           WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
        WITH ('connector' = 'nexmark', 'table' = 'bid', 'events' = '5000', 'out.of.orderness' = '2 s',
              'base.time' = '2024-01-01 00:00:00');
        SELECT count(*) AS n, min(date_time) AS first FROM bids";
    let out = run(&engine, sql).await;
    assert!(out.contains("| 4600 | 2023-12-31T23:59:58"), "{out}");
    let err = engine
        .run_script(
            "CREATE TABLE b2 (auction BIGINT, cost BIGINT) WITH ('connector' = 'nexmark', 'table' = 'bid')",
        )
        .await
        .expect_err("unknown column")
        .to_string();
    assert!(
        err.contains("column 'cost' is not in the Nexmark bid stream"),
        "{err}"
    );
}

#[tokio::test]
async fn unbounded_generators_run_continuously() {
    let engine = Engine::new();
    let results = engine
        .run_script("CREATE TABLE bid WITH ('connector' = 'nexmark'); SELECT auction, price FROM bid LIMIT 5")
        .await
        .expect("an unbounded generator with LIMIT ends");
    let rows: usize = results[1].iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 5);
    // An aggregate without a window over a stream that never ends updates as
    // rows come: a changelog whose count rises, read for two batches.
    engine
        .run_script("CREATE TABLE t (id BIGINT) WITH ('connector' = 'datagen')")
        .await
        .expect("a table");
    let tokens = engine.split("SELECT count(*) AS n FROM t").expect("splits");
    let statement = engine.parse(&tokens[0]).expect("parses");
    let mut output = engine.execute(&statement).await.expect("runs continuously");
    let mut counts = Vec::new();
    while counts.len() < 3 {
        use futures::StreamExt;
        let batch = output
            .stream
            .next()
            .await
            .expect("more changes")
            .expect("a batch");
        assert_eq!(batch.schema().field(0).name(), "op", "a changelog");
        let ops = batch.column(0).as_string::<i32>();
        let n = batch.column(1).as_primitive::<Int64Type>();
        counts.extend(
            (0..batch.num_rows())
                .filter(|&i| ops.value(i) != "-U")
                .map(|i| n.value(i)),
        );
    }
    assert!(
        counts.windows(2).all(|w| w[0] < w[1]),
        "the count rises: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limits_an_unbounded_generator() {
    let engine = Engine::new();
    let started = std::time::Instant::now();
    let results = engine
        .run_script(
            "CREATE TABLE t (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '2000', 'fields.id.kind' = 'sequence');
             SELECT id FROM t LIMIT 3000",
        )
        .await
        .expect("runs");
    let rows: usize = results[1].iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3000);
    // 3000 rows at 2000 per second: the last batch is due after 1 s.
    let elapsed = started.elapsed();
    assert!(elapsed >= std::time::Duration::from_millis(900), "{elapsed:?}");
}

#[tokio::test]
async fn datagen_fills_a_declared_schema() {
    let engine = Engine::new();
    let sql = "
        CREATE TABLE orders (id BIGINT, amount DECIMAL(10, 2), note VARCHAR, ts TIMESTAMP(3), ok BOOLEAN)
        WITH ('connector' = 'datagen', 'rows' = '5000', 'seed' = '7',
              'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
              'fields.amount.min' = '1', 'fields.amount.max' = '500',
              'fields.note.length' = '12',
              'fields.ts.kind' = 'sequence', 'fields.ts.start' = '2024-01-01 00:00:00', 'fields.ts.step' = '1 s',
              'fields.ok.null-rate' = '0.5');
        SELECT count(*) AS n, sum(id) AS ids, min(amount) >= 1 AND max(amount) <= 500 AS in_range,
               max(length(note)) AS len, max(ts) AS last, count(ok) < 3000 AS some_null
        FROM orders";
    let out = run(&engine, sql).await;
    assert!(
        out.contains("| 5000 | 12502500 | true     | 12  | 2024-01-01T01:23:19 | true      |"),
        "{out}"
    );
    let err = error(
        &engine,
        "CREATE TABLE bad (id INT) WITH ('connector' = 'datagen', 'fields.id.kind' = 'seq')",
    )
    .await;
    assert!(err.contains("must be 'random' or 'sequence', not 'seq'"), "{err}");
    let err = error(&engine, "CREATE TABLE bad WITH ('connector' = 'nosuch')").await;
    assert!(
        err.contains("available: 'file', 'stdin', 'nexmark', 'datagen'"),
        "{err}"
    );
}

#[tokio::test]
async fn limit_and_projection_generate_only_what_is_read() {
    let engine = Engine::new();
    let sql = "CREATE TABLE bid WITH ('connector' = 'nexmark', 'events' = '1000000');
               SELECT auction, price FROM bid LIMIT 3";
    let out = run(&engine, sql).await;
    assert_eq!(out.lines().count(), 7, "{out}");
    let batches = engine
        .run_script("SELECT * FROM bid LIMIT 5")
        .await
        .expect("runs")
        .pop()
        .unwrap_or_default();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 5);
    assert_eq!(batches[0].num_columns(), 7);
    assert_eq!(batches[0].column(3).null_count(), 0);
}

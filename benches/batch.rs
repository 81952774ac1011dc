//! Batch speed: the same queries over the same CSV file through Sluice (its
//! dialect: a connector table and a TUMBLE window), plain DataFusion (the
//! equivalent `date_bin` query on a bare SessionContext) and DuckDB (the
//! `duckdb` Python package, if installed: `pip install duckdb`).
//!
//! `cargo bench --bench batch` (release). Rows: `SLUICE_BENCH_ROWS`
//! (default 5,000,000). Each figure is the best of three runs, wall clock,
//! reading the file every time. The file is generated once into the temp dir.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use datafusion::prelude::{CsvReadOptions, SessionContext};
use futures::TryStreamExt;

struct Query {
    name: &'static str,
    sluice: &'static str,
    datafusion: &'static str,
    duckdb: &'static str,
}

const QUERIES: &[Query] = &[
    Query {
        name: "10 s tumbling count/sum/max per auction",
        sluice: "SELECT window_start, auction, count(*) AS n, sum(price) AS total, max(price) AS top
                 FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
                 GROUP BY window_start, window_end, auction",
        datafusion:
            "SELECT date_bin(INTERVAL '10 seconds', date_time, TIMESTAMP '1970-01-01') AS window_start,
                            auction, count(*) AS n, sum(price) AS total, max(price) AS top
                     FROM bids WHERE date_time IS NOT NULL GROUP BY 1, 2",
        duckdb: "SELECT time_bucket(INTERVAL '10 seconds', date_time) AS window_start, auction,
                        count(*) AS n, sum(price) AS total, max(price) AS top
                 FROM bids GROUP BY ALL",
    },
    Query {
        name: "filter + group by auction",
        sluice: "SELECT auction, count(*) AS n, avg(price) AS mean FROM bids WHERE price > 5000 GROUP BY auction",
        datafusion: "SELECT auction, count(*) AS n, avg(price) AS mean FROM bids WHERE price > 5000 GROUP BY auction",
        duckdb: "SELECT auction, count(*) AS n, avg(price) AS mean FROM bids WHERE price > 5000 GROUP BY auction",
    },
];

fn main() {
    let rows: usize = std::env::var("SLUICE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let path = std::env::temp_dir().join(format!("sluice-bench-bids-{rows}.csv"));
    if !path.exists() {
        write_csv(&path, rows).expect("write the bench file");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("{rows} rows, {}", path.display());
    println!("| query | Sluice s | DataFusion s | DuckDB s | Sluice / DataFusion | Sluice / DuckDB |");
    println!("|---|---|---|---|---|---|");
    for q in QUERIES {
        let sluice = runtime.block_on(best_of_3(|| run_sluice(&path, q.sluice)));
        let datafusion = runtime.block_on(best_of_3(|| run_datafusion(&path, q.datafusion)));
        let duckdb = run_duckdb(&path, q.duckdb);
        let duck = duckdb.map_or("n/a".to_string(), |d| format!("{d:.3}"));
        let vs_duck = duckdb.map_or("n/a".to_string(), |d| format!("{:.2}", sluice / d));
        println!(
            "| {} | {sluice:.3} | {datafusion:.3} | {duck} | {:.2} | {vs_duck} |",
            q.name,
            sluice / datafusion
        );
    }
}

async fn best_of_3<F, Fut>(run: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (f64, usize)>,
{
    let mut best = f64::MAX;
    let mut rows = None;
    for _ in 0..3 {
        let (secs, n) = run().await;
        assert!(rows.is_none_or(|r| r == n), "result size changed between runs");
        rows = Some(n);
        best = best.min(secs);
    }
    best
}

async fn run_sluice(path: &Path, sql: &str) -> (f64, usize) {
    let engine = sluice::Engine::new();
    engine
        .run_script(&format!(
            "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP(3))
             WITH ('connector' = 'file', 'path' = '{}', 'format' = 'csv')",
            path.display()
        ))
        .await
        .expect("create");
    let started = Instant::now();
    let batches = engine.run_script(sql).await.expect("query");
    let rows = batches.iter().flatten().map(|b| b.num_rows()).sum();
    (started.elapsed().as_secs_f64(), rows)
}

async fn run_datafusion(path: &Path, sql: &str) -> (f64, usize) {
    let ctx = SessionContext::new();
    let schema = arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("auction", arrow::datatypes::DataType::Int64, true),
        arrow::datatypes::Field::new("bidder", arrow::datatypes::DataType::Int64, true),
        arrow::datatypes::Field::new("price", arrow::datatypes::DataType::Int64, true),
        arrow::datatypes::Field::new("channel", arrow::datatypes::DataType::Utf8, true),
        arrow::datatypes::Field::new(
            "date_time",
            arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
            true,
        ),
    ]);
    let path = path.display().to_string();
    ctx.register_csv("bids", &path, CsvReadOptions::new().schema(&schema))
        .await
        .expect("register");
    let started = Instant::now();
    let batches: Vec<_> = ctx
        .sql(sql)
        .await
        .expect("plan")
        .execute_stream()
        .await
        .expect("run")
        .try_collect()
        .await
        .expect("rows");
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    (started.elapsed().as_secs_f64(), rows)
}

/// DuckDB through its Python package; `None` when it is not installed.
fn run_duckdb(path: &Path, sql: &str) -> Option<f64> {
    let script = format!(
        "import duckdb, time\n\
         con = duckdb.connect()\n\
         best = 1e9\n\
         for _ in range(3):\n    \
             t = time.time()\n    \
             con.execute(\"CREATE OR REPLACE VIEW bids AS SELECT * FROM read_csv('{}', header=true, \
             columns={{'auction':'BIGINT','bidder':'BIGINT','price':'BIGINT','channel':'VARCHAR','date_time':'TIMESTAMP'}})\")\n    \
             con.execute('''{}''').fetchall()\n    \
             best = min(best, time.time() - t)\n\
         print(best)\n",
        path.display(),
        sql
    );
    let out = Command::new("python3").args(["-c", &script]).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "duckdb: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Bids over about 14 hours of event time, deterministic.
fn write_csv(path: &PathBuf, rows: usize) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "auction,bidder,price,channel,date_time")?;
    let channels = ["Google", "Facebook", "Baidu", "Apple"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let start = chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date");
    for i in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let auction = 1000 + state % 1000;
        let bidder = 2000 + (state >> 10) % 10_000;
        let price = 100 + (state >> 20) % 100_000;
        let channel = channels[((state >> 40) % 4) as usize];
        let millis = i as i64 * 10 + ((state >> 50) % 2000) as i64 - 1000;
        let ts = start + chrono::Duration::milliseconds(millis.max(0));
        writeln!(
            out,
            "{auction},{bidder},{price},{channel},{}",
            ts.format("%Y-%m-%dT%H:%M:%S%.3f")
        )?;
    }
    out.flush()
}

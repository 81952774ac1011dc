//! Generation speed of the `nexmark` connector: 10 M bids (all seven columns)
//! generated and counted, on one partition (one core) and on every core.
//!
//! `cargo bench --bench generators` (release). `SLUICE_BENCH_BIDS` sets the
//! number of bids; `cargo test --bench generators` runs it unoptimized.

use std::time::Instant;

use datafusion::error::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use sluice::connectors::Options;
use sluice::connectors::generator;

/// Events holding at least `bids` bids (46 in every 50 events).
fn events_for(bids: u64) -> u64 {
    bids.div_ceil(46) * 50
}

/// Generate every row of `SELECT <columns> FROM bid` and return (rows, seconds).
async fn run(events: u64, partitions: usize, columns: &str) -> Result<(u64, f64)> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    let options = Options::try_new([
        ("table".to_string(), "bid".to_string()),
        ("events".to_string(), events.to_string()),
    ])?;
    let table = generator::create_table("nexmark", "bid", None, options)?;
    ctx.register_table("bid", table.provider)?;
    let started = Instant::now();
    let mut stream = ctx
        .sql(&format!("SELECT {columns} FROM bid"))
        .await?
        .execute_stream()
        .await?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        rows += batch?.num_rows() as u64;
    }
    Ok((rows, started.elapsed().as_secs_f64()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let bids: u64 = std::env::var("SLUICE_BENCH_BIDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let events = events_for(bids);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cases = [
        ("all columns, 1 partition", 1, "*"),
        (
            "auction, bidder, price, date_time, 1 partition",
            1,
            "auction, bidder, price, date_time",
        ),
        ("all columns, all cores", cores, "*"),
    ];
    for (name, partitions, columns) in cases {
        let (rows, seconds) = run(events, partitions, columns).await?;
        println!(
            "nexmark bid, {name}: {rows} bids in {seconds:.3} s = {:.2} M bids/s ({:.2} M events/s of the mixed stream)",
            rows as f64 / seconds / 1e6,
            rows as f64 * 50.0 / 46.0 / seconds / 1e6,
        );
    }
    Ok(())
}

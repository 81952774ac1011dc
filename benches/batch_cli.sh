#!/usr/bin/env bash
# Batch speed through the release CLI (what a user runs), against DuckDB on the same CSV file.
#
#   benches/batch_cli.sh [path/to/sluice]     (default: $CARGO_TARGET_DIR/release/sluice)
#
# Needs `pip install duckdb` for the DuckDB column. Each figure: best of 3 wall-clock runs, reading
# the file each time (Sluice: the whole process, start-up included; DuckDB: the query inside Python); results are reduced to one row so that printing
# them costs nothing. "DataFusion" is the same binary given DataFusion's own DDL and a plain
# date_bin query, so Sluice / DataFusion is what the dialect layer costs.
set -euo pipefail
SLUICE=${1:-${CARGO_TARGET_DIR:-target}/release/sluice}
ROWS=${SLUICE_BENCH_ROWS:-5000000}
DIR=${TMPDIR:-/tmp}/sluice-bench
CSV=$DIR/bids-$ROWS.csv
mkdir -p "$DIR"

if [ ! -f "$CSV" ]; then
  "$SLUICE" -e "COPY (
      SELECT 1000 + (i * 7919) % 1000 AS auction, 2000 + (i * 104729) % 10000 AS bidder,
             100 + (i * 15485863) % 100000 AS price,
             CASE i % 4 WHEN 0 THEN 'Google' WHEN 1 THEN 'Facebook' WHEN 2 THEN 'Baidu' ELSE 'Apple' END AS channel,
             to_timestamp_millis(1772323200000 + i * 10) AS date_time
      FROM generate_series(0, $ROWS - 1) AS t(i)
    ) TO '$CSV' STORED AS CSV OPTIONS ('format.has_header' 'true')" > /dev/null
fi

SLUICE_TABLE="CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP(3))
  WITH ('connector' = 'file', 'path' = '$CSV', 'format' = 'csv');"
DF_TABLE="CREATE EXTERNAL TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP(3))
  STORED AS CSV LOCATION '$CSV' OPTIONS ('format.has_header' 'true');"
DUCK_TABLE="CREATE VIEW bids AS SELECT * FROM read_csv('$CSV', header = true, columns = {'auction': 'BIGINT', 'bidder': 'BIGINT', 'price': 'BIGINT', 'channel': 'VARCHAR', 'date_time': 'TIMESTAMP'});"

best() { # best wall-clock seconds of 3 runs of "$@"
  local best=999999
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N)
    best=$(python3 -c "print(min($best, $t1 - $t0))")
  done
  printf '%.3f' "$best"
}
# DuckDB is timed inside Python (best of 3, after the import), so the interpreter's start-up is not counted.
duck_best() {
  python3 -c "
import duckdb, sys, time
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
con.execute(sys.argv[1])
best = 1e9
for _ in range(3):
    t = time.time(); con.execute(sys.argv[2]).fetchall(); best = min(best, time.time() - t)
print(f'{best:.3f}')" "$DUCK_TABLE" "$1"
}

echo "$ROWS rows, $(nproc) cores, $(python3 -c 'import duckdb; print("duckdb", duckdb.__version__)' 2>/dev/null || echo 'no duckdb')"
echo "| query | Sluice s | DataFusion s | DuckDB s | Sluice / DataFusion | Sluice / DuckDB |"
echo "|---|---|---|---|---|---|"
run() { # name, sluice query, datafusion query, duckdb query; SLUICE_BENCH_ONLY=text runs only matching names
  case "$1" in *"${SLUICE_BENCH_ONLY:-}"*) ;; *) return 0 ;; esac
  local s d k
  s=$(best "$SLUICE" -e "$SLUICE_TABLE $2")
  d=$(best "$SLUICE" -e "SET sluice.explain_executor = true; $DF_TABLE $3")
  if python3 -c 'import duckdb' 2>/dev/null; then k=$(duck_best "$4"); else k=nan; fi
  python3 -c "import sys; s, d, k = map(float, sys.argv[2:5]); print(f'| {sys.argv[1]} | {s:.3f} | {d:.3f} | {k:.3f} | {s/d:.2f} | {s/k:.2f} |')" "$1" "$s" "$d" "$k"
}
run "10 s tumbling count/sum/max per auction" \
  "SELECT count(*), sum(n) FROM (SELECT window_start, auction, count(*) AS n, sum(price) AS s, max(price) AS m FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, auction)" \
  "SELECT count(*), sum(n) FROM (SELECT date_bin(INTERVAL '10 seconds', date_time, TIMESTAMP '1970-01-01') AS w, auction, count(*) AS n, sum(price) AS s, max(price) AS m FROM bids GROUP BY 1, 2)" \
  "SELECT count(*), sum(n) FROM (SELECT time_bucket(INTERVAL '10 seconds', date_time) AS w, auction, count(*) AS n, sum(price) AS s, max(price) AS m FROM bids GROUP BY ALL)"
run "filter + group by auction" \
  "SELECT count(*), sum(n) FROM (SELECT auction, count(*) AS n, avg(price) AS a FROM bids WHERE price > 50000 GROUP BY auction)" \
  "SELECT count(*), sum(n) FROM (SELECT auction, count(*) AS n, avg(price) AS a FROM bids WHERE price > 50000 GROUP BY auction)" \
  "SELECT count(*), sum(n) FROM (SELECT auction, count(*) AS n, avg(price) AS a FROM bids WHERE price > 50000 GROUP BY auction)"
run "1 min hop (slide 10 s) count per auction" \
  "SELECT count(*), sum(n) FROM (SELECT window_start, auction, count(*) AS n FROM TABLE(HOP(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND, INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, auction)" \
  "SELECT count(*), sum(n) FROM (SELECT date_bin(INTERVAL '10 seconds', date_time, TIMESTAMP '1970-01-01') - s.shift AS w, auction, count(*) AS n FROM bids CROSS JOIN (SELECT arrow_cast(i * 10000, 'Duration(Millisecond)') AS shift FROM generate_series(0, 5) AS g(i)) s GROUP BY 1, 2)" \
  "SELECT count(*), sum(n) FROM (SELECT time_bucket(INTERVAL '10 seconds', date_time) - s.shift AS w, auction, count(*) AS n FROM bids CROSS JOIN (SELECT to_seconds(i * 10) AS shift FROM range(6) AS g(i)) s GROUP BY ALL)"
start=$(best "$SLUICE" -e "SELECT 1")
echo "start-up: sluice -e 'SELECT 1' best of 3: ${start} s"

#!/usr/bin/env bash
# Speed and memory of the continuous executor through the release CLI, against the bars of
# ../shared/DESIGN.md ("Bars"). Builds nothing: build the binary first with
#
#   CARGO_TARGET_DIR=$HOME/.cache/sluice-release cargo build --release --bin sluice
#   benches/streaming.sh
#
# Environment: SLUICE (the binary; default $HOME/.cache/sluice-release/release/sluice),
# SLUICE_STREAM_EVENTS (Nexmark events for the throughput figures, default 30,000,000),
# SLUICE_STREAM_NDJSON_ROWS (rows piped through stdin, default 5,000,000),
# SLUICE_STREAM_MEMORY_EVENTS (the long memory run, default 100,000,000),
# SLUICE_BENCH_ONLY=text (run only the figures whose name contains text).
#
# One line per figure. Throughput is the best of 3 wall-clock runs of the whole process (start-up
# and planning included, about 0.04 s), pinned to one core with `taskset -c 0` where the bar says
# one core. Nexmark rates count the rows the query reads: the bid stream is 46 of every 50 events
# of 'events', the other 4 are never generated. Queries are selective (a filter, or HAVING on
# the windowed aggregate keeping the ~60 hot auctions of each window) so that printing costs
# nothing; their output goes to /dev/null. Needs python3; `pip install duckdb` for figure 5.
set -euo pipefail
SLUICE=${SLUICE:-$HOME/.cache/sluice-release/release/sluice}
EVENTS=${SLUICE_STREAM_EVENTS:-30000000}
NDJSON_ROWS=${SLUICE_STREAM_NDJSON_ROWS:-5000000}
MEMORY_EVENTS=${SLUICE_STREAM_MEMORY_EVENTS:-100000000}
CSV_ROWS=5000000
DIR=${TMPDIR:-/tmp}/sluice-bench
mkdir -p "$DIR"
ONE_CORE=(taskset -c 0)
[ -x "$SLUICE" ] || { echo "no sluice binary at $SLUICE (build it, or set SLUICE)" >&2; exit 1; }

only() { case "$1" in *"${SLUICE_BENCH_ONLY:-}"*) return 0 ;; *) return 1 ;; esac; }
# Rows of the bid stream among the first $1 Nexmark events (46 of every 50, after 4 others).
bids() { local e=$1 r=$(($1 % 50 - 4)); [ $r -lt 0 ] && r=0; [ $r -gt 46 ] && r=46; echo $((e / 50 * 46 + r)); }
best() { # best wall-clock seconds of 3 runs of "$@", stdout to /dev/null
  local best=999999
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N)
    best=$(python3 -c "print(min($best, $t1 - $t0))")
  done
  echo "$best"
}
# name, rows, seconds, bar in M rows/s (or '-'), extra text: one result line.
line() {
  python3 -c "
import sys
name, rows, s, bar, extra = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
rate = rows / s / 1e6
text = f'{name}: {rows / 1e6:.1f} M rows in {s:.2f} s = {rate:.2f} M rows/s'
if bar != '-':
    text += f', {rate / float(bar):.2f} x the bar ({bar} M/s)'
print(text + extra)" "$@"
}

# Nexmark bids with Flink's usual 4 s watermark delay; 10,000 events/s of event time (the default).
bid_table() {
  echo "CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
      date_time TIMESTAMP(3), extra VARCHAR, WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
    WITH ('connector' = 'nexmark', 'events' = '$1');"
}
STATELESS="SELECT auction, bidder, price * 908 / 1000 AS price_eur, date_time FROM bid WHERE price > 99000000"
window_query() { # the window TVF call
  echo "SELECT window_start, window_end, auction, count(*) AS n, sum(price) AS total, max(price) AS top
    FROM TABLE($1) GROUP BY window_start, window_end, auction HAVING count(*) >= 500"
}
TUMBLE_BID="TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '10' SECOND)"
HOP_BID="HOP(TABLE bid, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND)"
COUNT_QUERY="SELECT window_start, window_end, count(*) AS n FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) GROUP BY window_start, window_end"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB; binary: $SLUICE ($(date -r "$SLUICE" '+%F %T')); load average before: $(load)"
N=$(bids "$EVENTS")

# 1. Stateless filter + projection, continuous, one core.
if only "stateless"; then
  s=$(best "${ONE_CORE[@]}" "$SLUICE" --mode continuous -e "$(bid_table "$EVENTS") $STATELESS")
  line "1 stateless filter/projection, continuous, 1 core" "$N" "$s" 10 ""
fi

# 2. Tumbling and hopping window aggregates per auction, continuous and (for comparison) batch, one core.
if only "window"; then
  for w in "tumble 10 s|$TUMBLE_BID" "hop 10 s/2 s|$HOP_BID"; do
    name=${w%%|*} tvf=${w#*|}
    s=$(best "${ONE_CORE[@]}" "$SLUICE" --mode continuous -e "$(bid_table "$EVENTS") $(window_query "$tvf")")
    b=$(best "${ONE_CORE[@]}" "$SLUICE" -e "$(bid_table "$EVENTS") $(window_query "$tvf")")
    line "2 $name count/sum/max per auction, continuous, 1 core" "$N" "$s" 3 \
      "; batch (auto) $(python3 -c "print(f'{$N / $b / 1e6:.2f} M rows/s in {$b:.2f} s, continuous / batch time {$s / $b:.2f}')")"
  done
fi

# 3. NDJSON through stdin (a pipe from cat), continuous 10 s tumbling count, one core for sluice.
if only "stdin"; then
  NDJSON=$DIR/bids-$NDJSON_ROWS.ndjson
  if [ ! -f "$NDJSON" ]; then
    # $NDJSON_ROWS bids in time order (without ORDER BY, COPY interleaves its partitions' batches).
    "$SLUICE" -e "$(bid_table $(( (NDJSON_ROWS + 45) / 46 * 50 ))) COPY (SELECT auction, bidder, price, channel, date_time
      FROM bid ORDER BY date_time LIMIT $NDJSON_ROWS) TO '$NDJSON.tmp' STORED AS JSON" > /dev/null
    mv "$NDJSON.tmp" "$NDJSON"
  fi
  STDIN_TABLE="CREATE TABLE t (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP(3),
      WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND) WITH ('connector' = 'stdin', 'format' = 'json');"
  stdin_run() {
    taskset -c 1 cat "$NDJSON" | "${ONE_CORE[@]}" "$SLUICE" -e "$STDIN_TABLE
      SELECT window_start, window_end, count(*) AS n, sum(price) AS total FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) GROUP BY window_start, window_end"
  }
  s=$(best stdin_run)
  line "3 NDJSON from stdin ($(($(stat -c %s "$NDJSON") / 1000000)) MB), 10 s tumbling count, continuous, 1 core" \
    "$NDJSON_ROWS" "$s" 1 ""
fi

# 4. Peak RSS of a continuous 10 s tumbling count: short and long run, one core.
if only "memory"; then
  rss() { # events -> "peak_kB seconds"
    /usr/bin/time -v -o "$DIR/time.txt" "${ONE_CORE[@]}" "$SLUICE" --mode continuous \
      -e "$(bid_table "$1") $COUNT_QUERY" > /dev/null
    awk -F': ' '/Maximum resident set size/ {kb=$2} /Elapsed \(wall clock\)/ {t=$2} END {print kb, t}' "$DIR/time.txt"
  }
  /usr/bin/time -v -o "$DIR/time.txt" "${ONE_CORE[@]}" "$SLUICE" -e "SELECT 1" > /dev/null
  kb_base=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/time.txt")
  short=$((MEMORY_EVENTS / 10))
  read -r kb_short t_short < <(rss "$short")
  read -r kb_long t_long < <(rss "$MEMORY_EVENTS")
  secs=$(python3 -c "import sys; p = sys.argv[1].split(':'); print(sum(float(x) * 60 ** i for i, x in enumerate(reversed(p))))" "$t_long")
  line "4 memory: 10 s tumbling count over $((MEMORY_EVENTS / 1000000)) M events, continuous, 1 core" "$(bids "$MEMORY_EVENTS")" "$secs" 3 \
    "; peak RSS $((kb_long / 1024)) MB ($(python3 -c "print(f'{200 * 1024 / $kb_long:.2f}')") x under the 200 MB bar), $((short / 1000000)) M events: $((kb_short / 1024)) MB in $t_short; SELECT 1: $((kb_base / 1024)) MB"
fi

# 5. Continuous 10 s tumbling aggregate over batch_cli.sh's CSV, against DuckDB's batch query (2 cores each).
if only "csv"; then
  CSV=$DIR/bids-$CSV_ROWS.csv
  if [ ! -f "$CSV" ]; then # the same file as benches/batch_cli.sh
    "$SLUICE" -e "COPY (
        SELECT 1000 + (i * 7919) % 1000 AS auction, 2000 + (i * 104729) % 10000 AS bidder,
               100 + (i * 15485863) % 100000 AS price,
               CASE i % 4 WHEN 0 THEN 'Google' WHEN 1 THEN 'Facebook' WHEN 2 THEN 'Baidu' ELSE 'Apple' END AS channel,
               to_timestamp_millis(1772323200000 + i * 10) AS date_time
        FROM generate_series(0, $CSV_ROWS - 1) AS t(i)
      ) TO '$CSV' STORED AS CSV OPTIONS ('format.has_header' 'true')" > /dev/null
  fi
  # Every (window, auction) group of this file holds one row, so the full result is as large as the
  # input: HAVING count(*) > 1 keeps none (the same query in DuckDB and in batch). The file is not in
  # time order (COPY interleaves the 8192-row batches of two partitions; a row is up to 491.5 s
  # behind an earlier one), so the watermark trails by 10 minutes and no row is late.
  CSV_TABLE="CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP(3),
      WATERMARK FOR date_time AS date_time - INTERVAL '10' MINUTE) WITH ('connector' = 'file', 'path' = '$CSV', 'format' = 'csv');"
  CSV_QUERY="SELECT window_start, auction, count(*) AS n, sum(price) AS s, max(price) AS m
    FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, auction HAVING count(*) > 1"
  s=$(best "$SLUICE" --mode continuous -e "$CSV_TABLE $CSV_QUERY")
  a=$(best "$SLUICE" --mode continuous --format csv -e "$CSV_TABLE $(echo "$CSV_QUERY" | sed 's/ HAVING count(\*) > 1//')")
  b=$(best "$SLUICE" -e "$CSV_TABLE $CSV_QUERY")
  s1=$(best "${ONE_CORE[@]}" "$SLUICE" --mode continuous -e "$CSV_TABLE $CSV_QUERY")
  duck() { python3 -c "
import duckdb, sys, time
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
con.execute('SET threads = ' + sys.argv[1])
con.execute(\"CREATE VIEW bids AS SELECT * FROM read_csv('$CSV', header = true, columns = {'auction': 'BIGINT', 'bidder': 'BIGINT', 'price': 'BIGINT', 'channel': 'VARCHAR', 'date_time': 'TIMESTAMP'})\")
q = 'SELECT time_bucket(INTERVAL 10 seconds, date_time) AS w, auction, count(*) AS n, sum(price) AS s, max(price) AS m FROM bids GROUP BY ALL HAVING count(*) > 1'
best = 1e9
for _ in range(3):
    t = time.time(); con.execute(q).fetchall(); best = min(best, time.time() - t)
print(best)" "$1" 2>/dev/null || echo nan; }
  k=$(duck "$(nproc)")
  k1=$(duck 1)
  line "5 CSV file ($CSV_ROWS rows), 10 s tumbling count/sum/max per auction, continuous, 2 cores" "$CSV_ROWS" "$s" - \
    "$(python3 -c "print(f'; DuckDB {$k:.2f} s (Sluice / DuckDB time {$s / $k:.2f}); Sluice batch {$b:.2f} s; continuous printing all 5 M groups {$a:.2f} s; on 1 core: Sluice continuous {$s1:.2f} s, DuckDB (threads = 1) {$k1:.2f} s ({$s1 / $k1:.2f})')")"
fi

# 6. Latency: rows written to sluice's stdin through a pipe; one row moves the watermark past a 1 s
# window's end; time until that window's row is read from its stdout.
if only "latency"; then
  python3 - "$SLUICE" <<'EOF'
import json, statistics, subprocess, sys, time
sql = """CREATE TABLE t (k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'stdin', 'format' = 'json');
SELECT window_end, count(*) AS n FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end"""
p = subprocess.Popen(["taskset", "-c", "0", sys.argv[1], "--format", "json", "-e", sql],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
base = 1_700_000_000_000  # ms, a whole second
time.sleep(0.5)  # let the process start and plan: start-up is not window latency (it is timed on its own, ~30 ms)
def row(k, ms):
    return json.dumps({"k": k, "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"}) + "\n"
lat, windows = [], 300
out = p.stdout
for w in range(windows):
    # 100 rows inside window w (not closing it), then a pause so they are processed.
    p.stdin.write("".join(row(i, base + w * 1000 + i * 5) for i in range(100)).encode())
    time.sleep(0.005)
    line = row(0, base + (w + 1) * 1000).encode()  # ts = window end: watermark reaches the end
    t0 = time.perf_counter()
    p.stdin.write(line)
    got = json.loads(out.readline())
    lat.append(time.perf_counter() - t0)
    assert got["n"] == (100 if w == 0 else 101), got  # the closing row of window w - 1 is in window w
p.stdin.close(); p.wait()
first, ms = lat[0] * 1000, sorted(x * 1000 for x in lat[1:])  # the first window runs cold code paths
print(f"6 latency (window end to its row on stdout, 1 core): {windows - 1} windows after the first: median {statistics.median(ms):.2f} ms, "
      f"p99 {ms[int(len(ms) * 0.99) - 1]:.2f} ms, max {ms[-1]:.2f} ms ({10 / ms[-1]:.1f} x under the 10 ms bar at the max); first window {first:.2f} ms")
EOF
fi
echo "load average after: $(load)"

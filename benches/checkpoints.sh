#!/usr/bin/env bash
# Checkpoint overhead: a continuous replay of the Nexmark bid stream (100 M events, generated) through a 10 s
# TUMBLE count per auction, timed without and with --checkpoint-dir at SET 'checkpoint.interval' = '1 s'.
# Release binary, wall clock and peak RSS of the process, best of 2; then what the last checkpoint wrote.
# Usage: benches/checkpoints.sh [events]; SLUICE=path/to/sluice runs that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SLUICE:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-release}"
  cargo build --release --quiet
fi
bin="${SLUICE:-$CARGO_TARGET_DIR/release/sluice}"
events="${1:-100000000}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/q.sql" <<SQL
CREATE TABLE bid WITH ('connector' = 'nexmark', 'table' = 'bid', 'events' = '$events');
SET 'checkpoint.interval' = '1 s';
SELECT count(*) FROM (SELECT auction, window_start, count(*) AS n
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) GROUP BY auction, window_start, window_end);
SQL
best() { # label, args...: best wall time of 2 runs, and its peak RSS
  local label=$1; shift; local out=""
  for _ in 1 2; do
    rm -rf "$work/ck"
    out+=$( { /usr/bin/time -f "%e %M" "$bin" --mode continuous "$@" "$work/q.sql" >/dev/null 2>"$work/err"; } 2>&1; tail -1 "$work/err" | grep -o '[0-9.]* [0-9]*$' )$'\n'
  done
  echo "$out" | grep . | sort -n | head -1 | awk -v l="$label" '{printf "%s: %.2f s, peak RSS %d MB\n", l, $1, $2/1024}'
}
best "no checkpoints" 
best "checkpoints every 1 s" --checkpoint-dir "$work/ck"
grep -o 'Last checkpoint.*' "$work/err"
du -sh "$work/ck" | awk '{print "checkpoint directory at the end: " $1}'

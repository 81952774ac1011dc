#!/usr/bin/env bash
# Checkpoint pause and size of an updating aggregate with many keys: a continuous GROUP BY k over the UNION ALL of
# a sequence of 1 M keys (each key once, read as fast as it goes) and a trickle of updates to random keys among them
# (10,000 rows/s for 10 s), with SET 'checkpoint.interval' = '1 s'. Every checkpoint after the first 1 M rows holds
# 1 M groups of which about 10,000 changed since the one before. Prints, from the run's `Last checkpoint:` line, what
# the last checkpoint wrote and how long it paused the query, the longest pause of the run and what all its
# checkpoints wrote; and the wall time. One run each of the binary in $SLUICE (default: the release build in
# $HOME/.cache/sluice-release; this script builds nothing), after the one in $SLUICE_BEFORE if set (a before/after).
# Usage: benches/checkpoint_updating.sh [keys] [trickle rows]
set -euo pipefail
bin="${SLUICE:-$HOME/.cache/sluice-release/release/sluice}"
keys="${1:-1000000}"
trickle="${2:-100000}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/q.sql" <<SQL
SET 'checkpoint.interval' = '1 s';
CREATE TABLE base (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows' = '$keys',
  'fields.k.kind' = 'sequence', 'fields.k.start' = '1', 'fields.v.min' = '1', 'fields.v.max' = '100');
CREATE TABLE trickle (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows' = '$trickle',
  'rows-per-second' = '10000', 'seed' = '7', 'fields.k.min' = '1', 'fields.k.max' = '$keys',
  'fields.v.min' = '1', 'fields.v.max' = '100');
SELECT k, count(*) AS n, sum(v) AS total FROM (SELECT k, v FROM base UNION ALL SELECT k, v FROM trickle) GROUP BY k;
SQL
run() { # label, binary
  rm -rf "$work/ck"
  local start end
  start=$(date +%s.%N)
  "$2" --mode continuous --format csv --checkpoint-dir "$work/ck" "$work/q.sql" >/dev/null 2>"$work/err"
  end=$(date +%s.%N)
  printf '%s: %.2f s; ' "$1" "$(echo "$end - $start" | bc)"
  grep -o 'Last checkpoint.*' "$work/err" || { echo "no checkpoint:"; cat "$work/err"; }
  du -sb "$work/ck" | awk '{print "  checkpoint directory at the end: " $1 " bytes"}'
}
[ -n "${SLUICE_BEFORE:-}" ] && run before "$SLUICE_BEFORE"
run "$([ -n "${SLUICE_BEFORE:-}" ] && echo after || echo run)" "$bin"

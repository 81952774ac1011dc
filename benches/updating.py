#!/usr/bin/env python3
"""An updating GROUP BY (no window) on the streaming path: events/s, peak RSS and changelog rows out.

Builds nothing: build the release binary first,

    CARGO_TARGET_DIR=$HOME/.cache/sluice-release cargo build --release --bin sluice
    python3 benches/updating.py

A datagen table of SLUICE_UPDATING_ROWS rows (default 10,000,000) with a key drawn from SLUICE_UPDATING_KEYS
keys (default 1,000,000) is aggregated per key (count, sum, max) by an updating aggregate, which emits a
changelog after every input batch (+I for a new key, -U/+U for a changed one); the changelog goes into a
blackhole sink, which counts it. The changelog's size is counted from a second, untimed run of the same query as a
SELECT printed as CSV. --mode continuous, so the stream path runs it (EXPLAIN is checked to show an
UpdatingAggregate, not the end-of-input aggregate a bounded replay can fall back to). One run per shape, pinned
to one core (taskset -c 0), wall clock of the whole process. A second shape has max() over an updating input
(the aggregate of an aggregate, as Nexmark q4), which retracts. The generator's own cost is measured too: the
same table scanned into the blackhole with no aggregate.

Environment: SLUICE (the binary; default $HOME/.cache/sluice-release/release/sluice), SLUICE_UPDATING_ROWS,
SLUICE_UPDATING_KEYS.
"""

import os
import subprocess
import sys
import tempfile
import time

SLUICE = os.environ.get("SLUICE", os.path.expanduser("~/.cache/sluice-release/release/sluice"))
ROWS = int(os.environ.get("SLUICE_UPDATING_ROWS", "10000000"))
KEYS = int(os.environ.get("SLUICE_UPDATING_KEYS", "1000000"))

TABLE = (f"CREATE TABLE events (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'rows' = '{ROWS}', "
         f"'fields.k.min' = '1', 'fields.k.max' = '{KEYS}', 'fields.v.min' = '0', 'fields.v.max' = '1000');\n")

SHAPES = {
    "generator alone (scan into blackhole)": (
        "CREATE TABLE out (k BIGINT, v BIGINT) WITH ('connector' = 'blackhole');\n",
        "INSERT INTO out SELECT k, v FROM events;", None),
    "GROUP BY k: count, sum, max": (
        "CREATE TABLE out (k BIGINT, n BIGINT, total BIGINT, top BIGINT) WITH ('connector' = 'blackhole');\n",
        "INSERT INTO out SELECT k, count(*), sum(v), max(v) FROM events GROUP BY k;", "UpdatingAggregate"),
    "GROUP BY n over GROUP BY k (retracting max)": (
        "CREATE TABLE out (n BIGINT, keys BIGINT, top BIGINT) WITH ('connector' = 'blackhole');\n",
        "INSERT INTO out SELECT n, count(*), max(top) FROM "
        "(SELECT k, count(*) AS n, max(v) AS top FROM events GROUP BY k) GROUP BY n;", "retracting"),
}


def run(script, count_lines=False):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        started = time.monotonic()
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            child = subprocess.Popen(["taskset", "-c", "0", SLUICE, "--mode", "continuous", "--format", "csv", f.name],
                                     stdout=out, stderr=err, text=True)
            # wait4 gives this child's own peak RSS (KiB on Linux).
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.monotonic() - started
            out.seek(0)
            err.seek(0)
            # A changelog of millions of lines is counted, not read whole: this process's size would show in
            # the next child's peak RSS (Linux counts the pages of the forked copy, before its exec).
            stdout = sum(1 for _ in out) if count_lines else out.read()
            stderr = err.read()
    finally:
        os.unlink(f.name)
    if child.returncode != 0:
        sys.exit(f"sluice failed:\n{stderr}")
    return stdout, seconds, usage.ru_maxrss


def main():
    print(f"updating GROUP BY: {ROWS:,} rows, {KEYS:,} keys; {SLUICE}; one core per run (taskset -c 0)")
    print("| shape | seconds | rows/s | changelog rows out | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for name, (sink, insert, expect) in SHAPES.items():
        if expect:
            plan, _, _ = run(TABLE + sink + "EXPLAIN " + insert)
            if expect not in plan:
                sys.exit(f"{name}: the plan has no {expect}:\n{plan}")
        _, seconds, rss = run(TABLE + sink + insert)
        # The changelog's rows: the same query as a SELECT, its CSV lines counted (not timed).
        select = insert[insert.index("SELECT"):]
        lines, _, _ = run(TABLE + select, count_lines=True)
        rows_out = max(lines - 1, 0)
        rss_mb = f"{rss / 1024:.0f}"
        print(f"| {name} | {seconds:.2f} | {ROWS / seconds / 1e6:.2f} M | {rows_out:,} | {rss_mb} |")


if __name__ == "__main__":
    main()

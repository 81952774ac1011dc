#!/usr/bin/env python3
"""Nexmark throughput of the continuous executor, one query at a time, against DESIGN.md's per-core anchors.

Builds nothing: build the release binary first,

    CARGO_TARGET_DIR=$HOME/.cache/sluice-release cargo build --release --bin sluice
    python3 benches/nexmark.py

Each query of ../shared/conformance/nexmark/queries (after the mechanical edits tests/nexmark.rs makes: q14's
CREATE FUNCTION dropped, q10's partitioned sink a blackhole, q23's dateTime quoted) runs as written, its INSERT
into a blackhole sink, over a bounded nexmark generator of SLUICE_NEXMARK_EVENTS events (default 10,000,000),
with --mode continuous, so the streaming path runs it: every join of two streams streams both sides, and nothing
is read in batch. EXPLAIN is read first: a query with a LookupJoin of a table, or with an operator that only a
bounded replay has (one that waits for the end of input: an aggregate without a window, a sort or window
functions at the end), is reported and not timed, since its figure would not be the streaming path's. One run
per query, pinned to one core (taskset -c 0), wall clock of the whole process (start-up and planning included,
about 0.05 s).

Events/s are counted as Nexmark counts them: every event of the span (persons, auctions and bids), whatever the
query reads. Beside it: the rows the query's tables actually generate per second (bids are 46 of every 50
events, auctions 3, persons 1), and the generator's own cost: the rate of a stateless scan of the same tables
(every column of each table it reads, generated and filtered out row by row by a condition on date_time), so a
query that reads only persons is not flattered.

Environment: SLUICE (the binary; default $HOME/.cache/sluice-release/release/sluice), SLUICE_BENCH_ONLY=q5,q7
(a comma-separated list of queries), SLUICE_BENCH_CHECKPOINTS=1s (also time each query again with
--checkpoint-dir and SET 'checkpoint.interval' to that value, the two runs one after the other; the table then
says how much longer the checkpointed run took, how many checkpoints it wrote and what the last one wrote).
"""

import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERIES = os.path.join(ROOT, "..", "shared", "conformance", "nexmark", "queries")
SLUICE = os.environ.get("SLUICE", os.path.expanduser("~/.cache/sluice-release/release/sluice"))
EVENTS = int(os.environ.get("SLUICE_NEXMARK_EVENTS", "10000000"))
ONLY = [q for q in os.environ.get("SLUICE_BENCH_ONLY", "").split(",") if q]
CHECKPOINTS = os.environ.get("SLUICE_BENCH_CHECKPOINTS", "")

# DESIGN.md "Bars": the best published per-core figure (Feldera, 16 workers), events/s.
ANCHORS = {"q0": 436e3, "q4": 265e3, "q5": 412e3, "q7": 196e3, "q9": 57e3, "q16": 51e3, "q18": 85e3,
           "q19": 75e3, "q20": 85e3}
# Rows of each table among 50 events.
SHARE = {"person": 1, "auction": 3, "bid": 46}


def prelude(events):
    """Generator tables with Flink's watermark, and views with the Flink DDL's column names."""
    table = lambda name, columns: (
        f"CREATE TABLE nexmark_{name} ({columns}, WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND) "
        f"WITH ('connector' = 'nexmark', 'table' = '{name}', 'events' = '{events}');\n")
    return (
        table("person", "id BIGINT, name VARCHAR, email_address VARCHAR, credit_card VARCHAR, city VARCHAR, "
                        "state VARCHAR, date_time TIMESTAMP(3), extra VARCHAR")
        + table("auction", "id BIGINT, item_name VARCHAR, description VARCHAR, initial_bid BIGINT, reserve BIGINT, "
                           "date_time TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra VARCHAR")
        + table("bid", "auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, "
                       "date_time TIMESTAMP(3), extra VARCHAR")
        + "CREATE VIEW person AS SELECT id, name, email_address AS emailaddress, credit_card AS creditcard, city, "
          "state, date_time AS \"dateTime\", extra FROM nexmark_person;\n"
        + "CREATE VIEW auction AS SELECT id, item_name AS itemname, description, initial_bid AS initialbid, reserve, "
          "date_time AS \"dateTime\", expires, seller, category, extra FROM nexmark_auction;\n"
        + "CREATE VIEW bid AS SELECT auction, bidder, price, channel, url, date_time AS \"dateTime\", extra "
          "FROM nexmark_bid;\n")


def edited(name, sql):
    """The mechanical edits of tests/nexmark.rs (`edits`)."""
    sql = re.sub(r"CREATE FUNCTION count_char[^;]*;", "", sql)
    sql = re.sub(r"PARTITIONED BY[^;]*", "WITH ('connector' = 'blackhole')", sql, flags=re.S)
    if name == "q23":
        sql = sql.replace("A.dateTime", "A.`dateTime`")
    # q13's side input: the file connector over a generated side_input.txt
    # in place of Flink 1.10's legacy options (keys 0 to 9999, value = key).
    sql = re.sub(r"\(\s*'connector\.type' = 'filesystem'[^)]*\)",
                 lambda _: f"('connector' = 'file', 'path' = '{side_input()}', 'format' = 'csv', "
                           "'csv.header' = 'false')", sql)
    return sql


def side_input():
    """q13's side input file, written once."""
    path = os.path.join(tempfile.gettempdir(), "sluice-bench-side-input.txt")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.writelines(f"{k},{k}\n" for k in range(10_000))
    return path


def tables_read(sql):
    """Which of person, auction and bid the query (and the views it defines) reads."""
    return sorted(t for t in SHARE if re.search(rf"(FROM|JOIN|TABLE|,)\s+{t}\b", sql, re.I))


def run(args, script, stderr=None):
    """Seconds of one run of sluice on a script file, or the error; its stderr into the list `stderr` if given."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        started = time.monotonic()
        done = subprocess.run(["taskset", "-c", "0", SLUICE, *args, f.name], capture_output=True, text=True)
        seconds = time.monotonic() - started
    finally:
        os.unlink(f.name)
    if stderr is not None:
        stderr.append(done.stderr)
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]
    return seconds, done.stdout


def main():
    if not os.access(SLUICE, os.X_OK):
        sys.exit(f"no sluice binary at {SLUICE} (build it, or set SLUICE)")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} cores ({cpu}); binary: {SLUICE} "
          f"({time.strftime('%F %T', time.localtime(os.path.getmtime(SLUICE)))}); one core per run (taskset -c 0)")
    extra = f" with checkpoints every {CHECKPOINTS} |" if CHECKPOINTS else ""
    print("| query | events | seconds | events/s | x anchor | rows generated/s | generator alone, rows/s | path |"
          + extra)
    print("|---|---|---|---|---|---|---|---|" + ("---|" if CHECKPOINTS else ""))
    names = sorted((f[:-4] for f in os.listdir(QUERIES) if re.fullmatch(r"q\d+\.sql", f)), key=lambda n: int(n[1:]))
    generator_rate = {}
    for name in names:
        if ONLY and name not in ONLY:
            continue
        sql = edited(name, open(os.path.join(QUERIES, name + ".sql")).read())
        events = EVENTS
        script = prelude(events) + sql
        insert = sql.find("INSERT INTO")
        explain = prelude(events) + sql[:insert] + "EXPLAIN " + sql[insert:]
        seconds, plan = run(["--mode", "continuous"], explain)
        if seconds is None:
            print(f"| {name} | | | | | | | does not run: {plan} |")
            continue
        if any("LookupJoin" in l and "bounded table nexmark_" in l for l in plan.splitlines()):
            print(f"| {name} | | | | | | | not timed: a join reads a side in batch (LookupJoin) |")
            continue
        if "at end of input" in plan:
            print(f"| {name} | | | | | | | not timed: needs an operator only a bounded replay has (at end of input) |")
            continue
        joins = sorted(set(re.findall(r"(IntervalJoin|WindowJoin|StreamJoin)", plan)))
        seconds, out = run(["--mode", "continuous"], script)
        if seconds is None:
            print(f"| {name} | | | | | | | failed: {out} |")
            continue
        tables = tables_read(sql)
        rows = sum(events * SHARE[t] // 50 for t in tables)
        key = (events, tuple(tables))
        if key not in generator_rate:
            # Every column of each table, generated and filtered out row by row.
            gen_seconds = 0.0
            for t in tables:
                t_seconds, _ = run(["--mode", "continuous"], prelude(events) +
                                   f"SELECT * FROM nexmark_{t} WHERE date_time < TIMESTAMP '1970-01-02 00:00:00';")
                gen_seconds += t_seconds or float("nan")
            generator_rate[key] = rows / gen_seconds if gen_seconds else float("nan")
        rate = events / seconds
        anchor = f"{rate / ANCHORS[name]:.1f}" if name in ANCHORS else ""
        print(f"| {name} | {events / 1e6:.0f} M | {seconds:.2f} | {rate / 1e6:.2f} M | {anchor} | "
              f"{rows / seconds / 1e6:.2f} M ({'+'.join(tables)}) | {generator_rate[key] / 1e6:.2f} M | "
              f"{', '.join(joins) + ' of two streams' if joins else 'one stream'} |"
              + (f" {checkpointed(script, seconds)} |" if CHECKPOINTS else ""))


def checkpointed(script, seconds):
    """The same script run with checkpoints every CHECKPOINTS: its time against `seconds`, and its last checkpoint."""
    with tempfile.TemporaryDirectory() as ck:
        stderr = []
        with_ck, out = run(["--mode", "continuous", "--checkpoint-dir", os.path.join(ck, "ck")],
                           f"SET 'checkpoint.interval' = '{CHECKPOINTS}';\n" + script, stderr)
    if with_ck is None:
        return f"failed: {out}"
    last = next((l for l in reversed(stderr[0].splitlines()) if l.startswith("Last checkpoint")), "no checkpoint")
    return f"{with_ck:.2f} s ({with_ck / seconds:.2f}x); {last}"


if __name__ == "__main__":
    main()

-- Windows over the bundled bids, the same in batch and as a stream:
--   cargo run -- queries/windows.sql                      (batch)
--   cargo run -- --mode continuous queries/windows.sql    (a replay: each window as the watermark passes its end)
-- The file is in arrival order, a little out of order in event time; the
-- watermark trails the largest time seen by 4 seconds.

CREATE TABLE bids (
  auction   BIGINT,
  bidder    BIGINT,
  price     BIGINT,
  channel   VARCHAR,
  url       VARCHAR,
  date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'json');

-- Bids per minute, with the top price and how many bidders.
SELECT window_start, window_end, count(*) AS bids, max(price) AS top, count(DISTINCT bidder) AS bidders
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end
ORDER BY window_start;

-- A 2-minute average price per channel, every 30 seconds (each bid is aggregated once, per slide).
SELECT window_start, window_end, channel, count(*) AS bids, round(avg(price), 1) AS avg_price
FROM TABLE(HOP(TABLE bids, DESCRIPTOR(date_time), INTERVAL '30' SECOND, INTERVAL '2' MINUTE))
WHERE window_start >= TIMESTAMP '2026-03-01 12:00:00'
GROUP BY window_start, window_end, channel
HAVING count(*) > 100
ORDER BY window_start, channel;

-- Running totals within each minute, every 15 seconds.
SELECT window_start, window_end, sum(price) AS volume
FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '15' SECOND, INTERVAL '1' MINUTE))
WHERE window_start < TIMESTAMP '2026-03-01 12:03:00'
GROUP BY window_start, window_end
ORDER BY window_end;

-- Bidders' sessions (a 20 s pause ends one) with at least 5 bids.
SELECT bidder, window_start, window_end, count(*) AS bids, max(price) AS top
FROM TABLE(SESSION(TABLE bids PARTITION BY bidder, DESCRIPTOR(date_time), INTERVAL '20' SECOND))
GROUP BY bidder, window_start, window_end
HAVING count(*) >= 5
ORDER BY window_end, bidder;

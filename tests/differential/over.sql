-- Window functions over the bundled bids, whose rows come out of order (each
-- moved by less than the 4 s watermark delay): no row is late. OVER ordered
-- by event time runs as the streaming OverAggregate (each row out once the
-- watermark passes it); over a window TVF's rows partitioned by the window,
-- as WindowTopN (each window when it closes). Every ORDER BY is total (an
-- auction has one bid per instant; bidder breaks ties elsewhere), so ROWS
-- frames and ROW_NUMBER have one answer.
CREATE TABLE bids (
  auction   BIGINT,
  bidder    BIGINT,
  price     BIGINT,
  channel   VARCHAR,
  url       VARCHAR,
  date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'file', 'path' = '$BIDS_SHUFFLED', 'format' = 'json');

-- Small batches: the watermark moves many times, so rows are released (and
-- windows close) in many steps.
SET datafusion.execution.batch_size = 64;

-- A ROWS frame per auction.
SELECT auction, date_time, price,
  sum(price) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS recent,
  count(*) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS n
FROM bids;

-- A RANGE frame by time, with sliding min and max; ties of time share a frame.
SELECT channel, date_time, bidder, price,
  max(price) OVER (PARTITION BY channel ORDER BY date_time RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS top,
  min(price) OVER (PARTITION BY channel ORDER BY date_time RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS low,
  avg(price) OVER (PARTITION BY channel ORDER BY date_time RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS mean
FROM bids;

-- lag, lead and row_number per auction; a running total (the default frame).
SELECT auction, date_time, price,
  row_number() OVER (PARTITION BY auction ORDER BY date_time) AS rn,
  lag(price) OVER (PARTITION BY auction ORDER BY date_time) AS before,
  lead(price, 2) OVER (PARTITION BY auction ORDER BY date_time) AS after,
  sum(price) OVER (PARTITION BY auction ORDER BY date_time) AS running
FROM bids;

-- A frame reaching later rows waits for them.
SELECT auction, date_time,
  sum(price) OVER (PARTITION BY auction ORDER BY date_time ROWS BETWEEN 1 PRECEDING AND 2 FOLLOWING) AS around
FROM bids;

-- No PARTITION BY: one partition, ordered by time then bidder.
SELECT bidder, date_time, row_number() OVER (ORDER BY date_time, bidder) AS seq
FROM bids;

-- Dedup: each bidder's first bid (append-only).
SELECT bidder, auction, price, date_time FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder ORDER BY date_time) AS rn FROM bids
) WHERE rn = 1;

-- Window Top-N straight over TUMBLE's rows: the three dearest bids per window.
SELECT * FROM (
  SELECT auction, bidder, price, window_start, window_end,
    ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC, bidder) AS rn
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
) WHERE rn <= 3;

-- Window dedup over HOP's rows: each auction's first bid per window.
SELECT auction, bidder, price, window_start, window_end FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, auction ORDER BY date_time) AS rn
  FROM TABLE(HOP(TABLE bids, DESCRIPTOR(date_time), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
) WHERE rn <= 1;

-- A window over OVER's rows: a row that waited for its lead holds the
-- watermark back, so the window does not find it late.
CREATE VIEW next_bids AS
  SELECT auction, date_time, lead(price) OVER (PARTITION BY auction ORDER BY date_time) AS next_price FROM bids;

SELECT window_start, window_end, count(*) AS n, sum(next_price) AS next_total
FROM TABLE(TUMBLE(TABLE next_bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;

-- Top-N per window of a windowed aggregate, its window bound renamed: still
-- ranked per emission (append-only), not as an updating Top-N.
SELECT * FROM (
  SELECT last_end, auction, n, ROW_NUMBER() OVER (PARTITION BY last_end ORDER BY n DESC, auction) AS rn
  FROM (SELECT window_end AS last_end, auction, count(*) AS n
        FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
        GROUP BY window_start, window_end, auction)
) WHERE rn <= 2;

-- Partitioned by window_start alone (RisingWave's form): a window closes
-- once its start plus the window's size is passed; over CUMULATE, the
-- windows sharing a start rank together, as in batch.
SELECT * FROM (
  SELECT auction, bidder, price, window_start,
    ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price DESC, bidder) AS rn
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
) WHERE rn <= 2;

SELECT * FROM (
  SELECT auction, bidder, price, window_start,
    ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price, bidder, window_end) AS rn
  FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '5' SECOND, INTERVAL '20' SECOND))
) WHERE rn <= 3;

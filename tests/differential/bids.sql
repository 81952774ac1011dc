-- Windowed aggregates over the bundled bids, whose rows come out of order
-- (each moved by less than the 4 s watermark delay): no row is late, so the
-- continuous result equals batch's.
CREATE TABLE bids (
  auction   BIGINT,
  bidder    BIGINT,
  price     BIGINT,
  channel   VARCHAR,
  url       VARCHAR,
  date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'file', 'path' = '$BIDS_SHUFFLED', 'format' = 'json');

SELECT window_start, window_end, auction, count(*) AS n, max(price) AS top, sum(price) AS total
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, auction;

SELECT window_start, window_end, channel, count(*) AS n, min(price) AS low, avg(price) AS mean
FROM TABLE(HOP(TABLE bids, DESCRIPTOR(date_time), INTERVAL '5' SECOND, INTERVAL '30' SECOND))
GROUP BY window_start, window_end, channel;

SELECT window_start, window_end, count(DISTINCT bidder) AS bidders, count(*) FILTER (WHERE price > 5000) AS dear
FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND, INTERVAL '1' MINUTE))
GROUP BY window_start, window_end;

-- HAVING and an expression over the window's end: rows are copied into windows.
SELECT window_end - INTERVAL '1' SECOND AS last_second, auction, count(*) AS n
FROM TABLE(HOP(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND, INTERVAL '20' SECOND))
WHERE price > 1000
GROUP BY window_start, window_end, auction
HAVING count(*) > 3;

SELECT window_start, count(*) AS n, max(price) AS top
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '1' MINUTE))
GROUP BY window_start
ORDER BY window_start;

-- A window TVF without an aggregate: each row with its window.
SELECT auction, price, window_start, window_end
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
WHERE price > 12000;

-- Legacy GROUP BY TUMBLE and the RisingWave form.
SELECT TUMBLE_START(date_time, INTERVAL '10' SECOND) AS ws, count(*) AS n
FROM bids GROUP BY TUMBLE(date_time, INTERVAL '10' SECOND);

SELECT window_start, sum(price) AS total
FROM TUMBLE(bids, date_time, INTERVAL '15' SECOND)
GROUP BY window_start, window_end;

-- Sessions per bidder and over the whole stream: out-of-order rows merge
-- sessions that looked separate when they came.
SELECT bidder, window_start, window_end, count(*) AS n, max(price) AS top
FROM TABLE(SESSION(TABLE bids PARTITION BY bidder, DESCRIPTOR(date_time), INTERVAL '2' SECOND))
GROUP BY bidder, window_start, window_end;

SELECT window_start, window_end, count(*) AS n
FROM TABLE(SESSION(TABLE bids, DESCRIPTOR(date_time), INTERVAL '150' MILLISECOND))
GROUP BY window_start, window_end;

-- An ORDER BY that does not start with a window bound sorts at the end of a replay.
SELECT auction, count(*) AS n
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, auction
ORDER BY n DESC, auction
LIMIT 5;

-- Queries where two streams meet: the bundled bids, read twice as two
-- streams out of order (each row moved by less than the 4 s watermark delay),
-- united and joined. In a replay both sides of every join stream: nothing is
-- read in batch and looked up, so these test the stream operators themselves.
CREATE TABLE bids (
  auction   BIGINT,
  bidder    BIGINT,
  price     BIGINT,
  channel   VARCHAR,
  url       VARCHAR,
  date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'file', 'path' = '$BIDS_SHUFFLED', 'format' = 'json');

CREATE TABLE more_bids (
  auction   BIGINT,
  bidder    BIGINT,
  price     BIGINT,
  channel   VARCHAR,
  url       VARCHAR,
  date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'file', 'path' = '$BIDS_SHUFFLED', 'format' = 'json');

-- A window over a union of two streams: it closes when both have passed it.
SELECT window_start, window_end, channel, count(*) AS n, max(price) AS top
FROM TABLE(TUMBLE(TABLE (
  SELECT * FROM bids WHERE price < 5000
  UNION ALL
  SELECT * FROM more_bids WHERE price >= 3000
), DESCRIPTOR(date_time), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, channel;

-- An interval join of two streams (bounds inclusive).
SELECT a.auction, a.price, b.price AS other_price, a.date_time, b.date_time AS other_time
FROM bids a JOIN more_bids b
  ON a.auction = b.auction
 AND a.date_time BETWEEN b.date_time - INTERVAL '1' SECOND AND b.date_time + INTERVAL '500' MILLISECOND
WHERE a.price > b.price;

-- The same bound written with >= and <=, and an outer join: a bid with no
-- dearer bid on its auction within 2 s after it is padded with NULLs.
SELECT a.auction, a.price, a.date_time, b.price AS dearer
FROM bids a LEFT JOIN more_bids b
  ON a.auction = b.auction
 AND b.date_time >= a.date_time AND b.date_time <= a.date_time + INTERVAL '2' SECOND
 AND b.price > a.price;

-- A window join: both inputs windowed by the same TUMBLE.
SELECT a.window_start, a.bidder, a.price, b.price AS other_price
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) a
JOIN TABLE(TUMBLE(TABLE more_bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) b
  ON a.window_start = b.window_start AND a.window_end = b.window_end AND a.bidder = b.bidder
WHERE a.price < b.price;

-- A join of two windowed aggregates on their windows (Nexmark q8's shape).
SELECT p.auction, p.window_start, p.n, c.channels
FROM (SELECT auction, window_start, window_end, count(*) AS n
      FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
      GROUP BY auction, window_start, window_end) p
JOIN (SELECT auction, window_start, window_end, count(DISTINCT channel) AS channels
      FROM TABLE(TUMBLE(TABLE more_bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
      GROUP BY auction, window_start, window_end) c
  ON p.auction = c.auction AND p.window_start = c.window_start AND p.window_end = c.window_end;

-- A regular join of two streams with no time bound, inner.
SELECT a.bidder, count(*) AS pairs
FROM (SELECT * FROM bids WHERE price > 12000) a
JOIN (SELECT * FROM more_bids WHERE price < 600) b ON a.bidder = b.bidder
GROUP BY a.bidder;

-- IN over a stream: a semi join.
SELECT auction, price, date_time FROM bids
WHERE auction IN (SELECT auction FROM more_bids WHERE price > 14000);

-- A window over an interval join's pairs, by the time of the side that may
-- come first: pairs must not look late to the window.
SELECT window_start, count(*) AS pairs
FROM TABLE(TUMBLE(TABLE (
  SELECT b.date_time AS t, a.price
  FROM bids a JOIN more_bids b
    ON a.bidder = b.bidder
   AND a.date_time BETWEEN b.date_time - INTERVAL '3' SECOND AND b.date_time + INTERVAL '2' SECOND
), DESCRIPTOR(t), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;

-- Two windowed aggregates joined on window_start alone (a fixed-size window
-- is named by its start): a window join, each window joined when it closes;
-- full outer, so a window on one side only comes padded.
SELECT coalesce(a.ws, b.ws) AS ws, a.n AS dear, b.n AS cheap FROM
  (SELECT window_start AS ws, count(*) AS n FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
   WHERE price > 9000 GROUP BY window_start, window_end) a
FULL JOIN
  (SELECT window_start AS ws, count(*) AS n FROM TABLE(TUMBLE(TABLE more_bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
   WHERE price < 900 GROUP BY window_start, window_end) b
ON a.ws = b.ws;

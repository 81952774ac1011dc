-- Nexmark-style queries over the bundled bids (testdata/bids.ndjson), in batch.
-- Run from the repository root: sluice queries/bids.sql
-- Windows are written with date_bin here; the same questions in TUMBLE/HOP
-- form run once the window TVFs land.

CREATE TABLE bids (
  auction   BIGINT,
  bidder    BIGINT,
  price     BIGINT,
  channel   VARCHAR,
  url       VARCHAR,
  date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'json');

-- Q1 (currency conversion): prices in euros rather than dollar cents.
SELECT auction, bidder, round(0.908 * price / 100, 2) AS price_eur, date_time
FROM bids
ORDER BY date_time
LIMIT 5;

-- Q2 (selection): bids on a handful of auctions.
SELECT auction, price, date_time
FROM bids
WHERE auction % 17 = 0
ORDER BY date_time
LIMIT 10;

-- Q5-like (hot items): the auction with most bids in each 1-minute window.
SELECT window_start, auction, bids
FROM (
  SELECT date_bin(INTERVAL '1 minute', date_time) AS window_start,
         auction,
         count(*) AS bids,
         row_number() OVER (
           PARTITION BY date_bin(INTERVAL '1 minute', date_time)
           ORDER BY count(*) DESC, auction
         ) AS place
  FROM bids
  GROUP BY window_start, auction
) ranked
WHERE place = 1
ORDER BY window_start;

-- Q7-like (highest bid): the top price of each 10-second window, first few windows.
SELECT date_bin(INTERVAL '10 seconds', date_time) AS window_start,
       max(price)                                 AS top_price,
       count(*)                                   AS bids
FROM bids
GROUP BY window_start
ORDER BY window_start
LIMIT 6;

-- Q14-like: bids by channel and time of the minute.
SELECT channel,
       CASE WHEN extract(second FROM date_time) < 30 THEN 'first half' ELSE 'second half' END AS part,
       count(*)   AS bids,
       round(avg(price)) AS mean_price
FROM bids
GROUP BY channel, part
ORDER BY channel, part;

-- Out-of-order data: no bid is more than 3 s older than the newest bid before
-- it, so the 4 s watermark above sees no late rows.
SELECT count(*) FILTER (WHERE date_time < newest_before)                          AS out_of_order,
       max(newest_before - date_time)                                             AS max_disorder,
       count(*) FILTER (WHERE date_time < newest_before - INTERVAL '4' SECOND)    AS late
FROM (
  SELECT date_time,
         max(date_time) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS newest_before
  FROM bids
) t;

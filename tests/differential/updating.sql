-- Updating queries (GROUP BY without a window, DISTINCT, HAVING, aggregates
-- over aggregates) over the bundled bids, out of order. A continuous run
-- emits a changelog after every batch (batches of 50 rows here, so keys
-- update many times); applied in order, it must end at batch's result, and a
-- -U/-D of a row that is not there fails the test.
SET datafusion.execution.batch_size = 50;

CREATE TABLE bids (
  auction   BIGINT,
  bidder    BIGINT,
  price     BIGINT,
  channel   VARCHAR,
  url       VARCHAR,
  date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'file', 'path' = '$BIDS_SHUFFLED', 'format' = 'json');

-- Running totals per key.
SELECT channel, count(*) AS n, sum(price) AS total, min(price) AS low, max(price) AS top, avg(price) AS mean
FROM bids GROUP BY channel;

-- A global aggregate: one row, updated.
SELECT count(*) AS n, count(DISTINCT bidder) AS bidders, max(date_time) AS latest FROM bids;

-- HAVING that starts and stops holding: rows inserted, then deleted.
SELECT auction, count(*) AS n FROM bids GROUP BY auction HAVING count(*) BETWEEN 2 AND 4;

-- DISTINCT.
SELECT DISTINCT channel, bidder % 3 AS shard FROM bids;

-- An aggregate over an updating aggregate (Nexmark q4's shape): retracts.
SELECT n, count(*) AS auctions, min(top) AS lowest_top, max(top) AS highest_top
FROM (SELECT auction, count(*) AS n, max(price) AS top FROM bids GROUP BY auction)
GROUP BY n;

-- A filter and a projection over an updating aggregate.
SELECT channel, total / n AS mean FROM (
  SELECT channel, sum(price) AS total, count(*) AS n FROM bids WHERE price > 100 GROUP BY channel
) WHERE total > 1000;

-- FILTER clauses and expressions as keys.
SELECT date_trunc('minute', date_time) AS minute, count(*) FILTER (WHERE price > 5000) AS dear, sum(price) AS total
FROM bids GROUP BY date_trunc('minute', date_time);

-- An updating aggregate looked up in a constant table: each change joined.
SELECT k.kind, t.channel, t.n FROM (SELECT channel, count(*) AS n FROM bids GROUP BY channel) t
JOIN (VALUES ('Google', 'search'), ('Baidu', 'search'), ('Facebook', 'social')) AS k(channel, kind)
  ON t.channel = k.channel;

-- A windowed aggregate, then a running total over its windows' rows.
SELECT auction, sum(n) AS bids, max(top) AS top FROM (
  SELECT window_start, auction, count(*) AS n, max(price) AS top
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
  GROUP BY window_start, window_end, auction
) GROUP BY auction;

-- Joins of two streams over updating inputs (regular joins): a retraction
-- takes back the pairs its row made, and a row left with no match is padded
-- again. Left outer over two updating aggregates; inner of appended rows
-- with an updating aggregate; full outer.
SELECT a.auction, a.n, b.top FROM (SELECT auction, count(*) AS n FROM bids GROUP BY auction) a
LEFT JOIN (SELECT auction, max(price) AS top FROM bids WHERE price > 9000 GROUP BY auction) b ON a.auction = b.auction;

SELECT b.auction, b.price, t.n FROM bids b
JOIN (SELECT auction, count(*) AS n FROM bids GROUP BY auction HAVING count(*) > 40) t ON b.auction = t.auction
WHERE b.price > 12500;

SELECT a.channel, a.n, b.bidders FROM (SELECT channel, count(*) AS n FROM bids WHERE price < 1000 GROUP BY channel) a
FULL JOIN (SELECT channel, count(DISTINCT bidder) AS bidders FROM bids WHERE price > 12900 GROUP BY channel) b
ON a.channel = b.channel;

-- An outer join over an updating input whose key can be NULL: a NULL-key row
-- is shown padded and, when its group updates, taken back padded.
SELECT a.c, a.n, b.top FROM (
  SELECT CASE WHEN auction % 5 = 0 THEN NULL ELSE auction % 7 END AS c, count(*) AS n FROM bids GROUP BY 1
) a LEFT JOIN (SELECT auction % 7 AS c, max(price) AS top FROM bids WHERE price > 12000 GROUP BY 1) b ON a.c = b.c;

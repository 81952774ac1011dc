-- Windowed aggregates over updating inputs: SESSION, HOP and CUMULATE over
-- an updating GROUP BY and over a left join of two streams, in batches of 50
-- rows, out of order (each bid moved by less than the 4 s watermark delay).
-- The window aggregate takes each change while the row's windows are open
-- (a row taken back leaves them; a session may split) and emits each window
-- once when it closes: the rows must be batch's. The inputs change only
-- while their rows' windows are open: a second's row changes only while
-- bids of that second come, within the watermark's delay, and a padded bid
-- is taken back when its twin in the other stream comes (the same rows), so
-- nothing here is late (tests/continuous.rs counts late changes). The
-- replay must stream the updating input into the window: the test fails if
-- a GROUP BY waits for the end of input.
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

CREATE TABLE more_bids (
  auction   BIGINT,
  bidder    BIGINT,
  price     BIGINT,
  channel   VARCHAR,
  url       VARCHAR,
  date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'file', 'path' = '$BIDS_SHUFFLED', 'format' = 'json');

-- Sessions of the seconds that have bids per channel (by each second's
-- last bid), over an updating GROUP BY per second and channel: each bid
-- updates its second's row (`-U`, `+U`), and a second's row goes (`-D`)
-- when its third bid comes, which may split a session in two. (A session
-- by the truncated second itself would not be batch's: a bid early in a
-- second can come after the watermark closed the session of the second
-- before, which the truncated second touches.)
SELECT window_start, window_end, channel, count(*) AS seconds, sum(n) AS bids, max(top) AS top
FROM TABLE(SESSION(TABLE (
  SELECT date_trunc('second', date_time) AS sec, channel, count(*) AS n, max(price) AS top, max(date_time) AS last
  FROM bids GROUP BY 1, 2 HAVING count(*) < 3
) PARTITION BY channel, DESCRIPTOR(last), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, channel;

-- The same without PARTITION BY, over dear bids: a second's row goes at its
-- second bid and comes back at its third.
SELECT window_start, window_end, count(*) AS seconds, sum(n) AS bids
FROM TABLE(SESSION(TABLE (
  SELECT date_trunc('second', date_time) AS sec, count(*) AS n, max(date_time) AS last FROM bids
  WHERE price > 9000 GROUP BY 1 HAVING count(*) <> 2
), DESCRIPTOR(last), INTERVAL '1' SECOND))
GROUP BY window_start, window_end;

-- HOP over the updating GROUP BY: each second's row copied into its three
-- windows, and taken back from each of them when it changes or goes.
SELECT window_start, window_end, channel, count(*) AS seconds, sum(n) AS bids, max(top) AS top
FROM TABLE(HOP(TABLE (
  SELECT date_trunc('second', date_time) AS sec, channel, count(*) AS n, max(price) AS top
  FROM bids GROUP BY 1, 2 HAVING count(*) < 3
), DESCRIPTOR(sec), INTERVAL '5' SECOND, INTERVAL '15' SECOND))
GROUP BY window_start, window_end, channel;

-- CUMULATE over the same.
SELECT window_start, window_end, count(*) AS seconds, sum(n) AS bids, min(top) AS low
FROM TABLE(CUMULATE(TABLE (
  SELECT date_trunc('second', date_time) AS sec, channel, count(*) AS n, max(price) AS top
  FROM bids GROUP BY 1, 2 HAVING count(*) < 3
), DESCRIPTOR(sec), INTERVAL '10' SECOND, INTERVAL '30' SECOND))
GROUP BY window_start, window_end;

-- HOP over a left join of two streams (a regular join: no time bound): a
-- bid is padded at once, then taken back when its twin (no other bid has
-- its auction, bidder and price) comes from the other stream, and paired.
SELECT window_start, window_end, channel, count(*) AS n, count(other) AS paired, sum(price) AS total
FROM TABLE(HOP(TABLE (
  SELECT a.channel, a.price, a.date_time, b.price AS other
  FROM bids a LEFT JOIN (SELECT * FROM more_bids WHERE price > 5000) b
    ON a.auction = b.auction AND a.bidder = b.bidder AND a.price = b.price
), DESCRIPTOR(date_time), INTERVAL '5' SECOND, INTERVAL '15' SECOND))
GROUP BY window_start, window_end, channel;

-- CUMULATE over the left join.
SELECT window_start, window_end, count(*) AS n, count(other) AS paired, max(other) AS top
FROM TABLE(CUMULATE(TABLE (
  SELECT a.price, a.date_time, b.price AS other
  FROM bids a LEFT JOIN (SELECT * FROM more_bids WHERE price > 5000) b
    ON a.auction = b.auction AND a.bidder = b.bidder AND a.price = b.price
), DESCRIPTOR(date_time), INTERVAL '10' SECOND, INTERVAL '30' SECOND))
GROUP BY window_start, window_end;

-- Sessions over the left join, per channel.
SELECT window_start, window_end, channel, count(*) AS n, count(other) AS paired
FROM TABLE(SESSION(TABLE (
  SELECT a.channel, a.date_time, b.price AS other
  FROM bids a LEFT JOIN (SELECT * FROM more_bids WHERE price > 5000) b
    ON a.auction = b.auction AND a.bidder = b.bidder AND a.price = b.price
) PARTITION BY channel, DESCRIPTOR(date_time), INTERVAL '2' SECOND))
GROUP BY window_start, window_end, channel;

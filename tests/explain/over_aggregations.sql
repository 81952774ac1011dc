CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '4' SECOND)
  WITH ('connector' = 'stdin', 'format' = 'json');
SET 'state.ttl' = '1 h';
SELECT auction, price,
  sum(price) OVER (PARTITION BY auction ORDER BY ts ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS recent,
  max(price) OVER (PARTITION BY auction ORDER BY ts RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW) AS top,
  lag(price) OVER (PARTITION BY auction ORDER BY ts) AS before
FROM bids;

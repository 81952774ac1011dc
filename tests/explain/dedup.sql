CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '4' SECOND)
  WITH ('connector' = 'stdin', 'format' = 'json');
SELECT bidder, price, ts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder ORDER BY ts) AS rn FROM bids
) WHERE rn = 1;

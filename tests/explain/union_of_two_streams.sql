CREATE TABLE hits (path VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'stdin', 'format' = 'json');
CREATE TABLE bids (auction BIGINT, price BIGINT, date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
  WITH ('connector' = 'nexmark', 'table' = 'bid');
SELECT window_start, count(*) AS n
FROM TABLE(TUMBLE(TABLE (
  SELECT ts FROM hits UNION ALL SELECT date_time AS ts FROM bids WHERE price > 100
), DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;

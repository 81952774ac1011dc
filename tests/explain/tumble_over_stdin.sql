CREATE TABLE hits (path VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'stdin', 'format' = 'json');
SELECT window_start, path, count(*) AS n
FROM TABLE(TUMBLE(TABLE hits, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, path;

CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
  WITH ('connector' = 'nexmark', 'table' = 'bid');
CREATE TABLE auctions (id BIGINT, seller BIGINT, date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
  WITH ('connector' = 'nexmark', 'table' = 'auction');
SELECT a.id, b.price, w.n
FROM auctions a
JOIN bids b ON a.id = b.auction AND b.date_time BETWEEN a.date_time AND a.date_time + INTERVAL '10' SECOND
JOIN (
  SELECT x.auction, x.window_start, count(*) AS n
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) x
  JOIN TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) y
    ON x.window_start = y.window_start AND x.window_end = y.window_end AND x.bidder = y.bidder
  GROUP BY x.auction, x.window_start, x.window_end
) w ON w.auction = a.id;

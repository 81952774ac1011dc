CREATE TABLE bids (auction BIGINT, price BIGINT, date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
  WITH ('connector' = 'nexmark', 'table' = 'bid');
CREATE TABLE dear (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO dear SELECT auction, price FROM bids WHERE price > 1000000;

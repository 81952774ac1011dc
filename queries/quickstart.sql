-- Sluice quickstart: run from the repository root with
--   cargo run -- queries/quickstart.sql
-- (or `sluice queries/quickstart.sql`, `--format table` for boxes in a pipe).
--
-- Four tables over the bundled sample data in testdata/ (see testdata/README.md),
-- one per file format.

CREATE TABLE customers (
  customer_id BIGINT,
  name        VARCHAR,
  country     VARCHAR,
  signup_date DATE
) WITH ('connector' = 'file', 'path' = 'testdata/customers.csv', 'format' = 'csv');

CREATE TABLE products (
  product_id BIGINT,
  name       VARCHAR,
  category   VARCHAR,
  price      DOUBLE
) WITH ('connector' = 'file', 'path' = 'testdata/products.parquet', 'format' = 'parquet');

CREATE TABLE orders (
  order_id    BIGINT,
  customer_id BIGINT,
  product_id  BIGINT,
  quantity    INT,
  amount      DOUBLE,
  status      VARCHAR,
  order_time  TIMESTAMP(3)
) WITH ('connector' = 'file', 'path' = 'testdata/orders.csv', 'format' = 'csv');

CREATE TABLE bids (
  auction   BIGINT,
  bidder    BIGINT,
  price     BIGINT,
  channel   VARCHAR,
  url       VARCHAR,
  date_time TIMESTAMP(3),
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'json');

-- Revenue per category: orders joined with the product catalog.
SELECT p.category,
       count(*)                 AS orders,
       sum(o.quantity)          AS items,
       round(sum(o.amount), 2)  AS revenue
FROM orders o
JOIN products p ON o.product_id = p.product_id
WHERE o.status IN ('completed', 'shipped')
GROUP BY p.category
ORDER BY revenue DESC;

-- The best customer of each country, by what they spent.
SELECT country, name, orders, spent
FROM (
  SELECT c.country, c.name,
         count(*)                AS orders,
         round(sum(o.amount), 2) AS spent,
         row_number() OVER (PARTITION BY c.country ORDER BY sum(o.amount) DESC) AS place
  FROM orders o
  JOIN customers c ON o.customer_id = c.customer_id
  WHERE o.status <> 'cancelled'
  GROUP BY c.country, c.name, c.customer_id
) ranked
WHERE place = 1
ORDER BY spent DESC;

-- Orders per six hours of event time: busy days, quiet nights.
SELECT date_bin(INTERVAL '6 hours', order_time) AS period,
       count(*)                                  AS orders,
       round(sum(amount), 2)                     AS revenue
FROM orders
GROUP BY period
ORDER BY period;

-- Bids per minute and channel (Nexmark-style): count and price statistics in cents.
SELECT date_trunc('minute', date_time) AS minute,
       channel,
       count(*)                         AS bids,
       min(price)                       AS low,
       max(price)                       AS high,
       CAST(avg(price) AS BIGINT)       AS mean
FROM bids
GROUP BY minute, channel
ORDER BY minute, channel
LIMIT 12;

-- How the revenue query is planned.
-- Hot auctions: the most-bid auction of each 1-minute tumbling window (Flink's window TVF).
SELECT window_start, window_end, auction, bids
FROM (
  SELECT window_start, window_end, auction, count(*) AS bids,
         row_number() OVER (PARTITION BY window_start, window_end ORDER BY count(*) DESC, auction) AS place
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '1' MINUTE))
  GROUP BY window_start, window_end, auction
)
WHERE place = 1
ORDER BY window_start;

EXPLAIN
SELECT p.category, sum(o.amount) AS revenue
FROM orders o JOIN products p ON o.product_id = p.product_id
GROUP BY p.category;

-- The e-commerce pipeline, continuously: orders arrive on stdin (CSV with a
-- header, as testdata/orders.csv), invalid ones are dropped, each is enriched
-- with its customer's country from a bounded file, and the running totals per
-- country come out as a changelog (+I for a new country, -U/+U as its totals
-- move), updated after every batch of input.
--
--   cat testdata/orders.csv | cargo run --release -- queries/ecommerce.sql
--
-- The same per 1-minute window: queries/ecommerce_per_minute.sql. A live feed
-- from a generator: see the README ("The e-commerce pipeline").

CREATE TABLE orders (
  order_id    BIGINT,
  customer_id BIGINT,
  product_id  BIGINT,
  quantity    INT,
  amount      DOUBLE,
  status      VARCHAR,
  order_time  TIMESTAMP(3),
  -- One order in ten comes up to 30 s after newer ones.
  WATERMARK FOR order_time AS order_time - INTERVAL '30' SECOND
) WITH ('connector' = 'stdin', 'format' = 'csv');

CREATE TABLE customers (
  customer_id BIGINT,
  name        VARCHAR,
  country     VARCHAR,
  signup_date DATE
) WITH ('connector' = 'file', 'path' = 'testdata/customers.csv', 'format' = 'csv');

-- Valid orders, each with its customer's country (a lookup join: the stream
-- meets a bounded table, read once when the query starts).
CREATE VIEW valid_orders AS
SELECT o.order_id, o.amount, o.order_time, c.country
FROM orders o JOIN customers c ON o.customer_id = c.customer_id
WHERE o.status NOT IN ('cancelled', 'returned') AND o.quantity > 0 AND o.amount > 0;

-- Running totals per country: an updating result.
SELECT country, count(*) AS orders, round(sum(amount), 2) AS revenue
FROM valid_orders
GROUP BY country;

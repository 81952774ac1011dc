-- The e-commerce pipeline of queries/ecommerce.sql, per 1-minute window:
-- each window's totals per country come out once, when the watermark passes
-- the window's end (appended rows, no changelog).
--
--   cat testdata/orders.csv | cargo run --release -- queries/ecommerce_per_minute.sql

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

-- Totals per country and minute.
SELECT window_start, window_end, country, count(*) AS orders, round(sum(amount), 2) AS revenue
FROM TABLE(TUMBLE(TABLE valid_orders, DESCRIPTOR(order_time), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, country;

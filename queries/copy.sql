-- Write query results to Parquet and Arrow files with COPY, then read them back.
-- Run from the repository root: sluice queries/copy.sql
-- The files go to /tmp/sluice-examples/ (COPY replaces them on every run).

CREATE TABLE orders (
  order_id BIGINT, customer_id BIGINT, product_id BIGINT, quantity INT,
  amount DOUBLE, status VARCHAR, order_time TIMESTAMP(3)
) WITH ('connector' = 'file', 'path' = 'testdata/orders.csv', 'format' = 'csv');

-- Daily totals per status, as Parquet.
COPY (
  SELECT date_trunc('day', order_time) AS day, status, count(*) AS orders, sum(amount) AS amount
  FROM orders
  GROUP BY day, status
) TO '/tmp/sluice-examples/daily_status.parquet' STORED AS PARQUET;

-- Cancelled orders, as Arrow IPC.
COPY (SELECT order_id, customer_id, amount, order_time FROM orders WHERE status = 'cancelled')
TO '/tmp/sluice-examples/cancelled.arrow' STORED AS ARROW;

CREATE TABLE daily_status (day TIMESTAMP, status VARCHAR, orders BIGINT, amount DOUBLE)
WITH ('connector' = 'file', 'path' = '/tmp/sluice-examples/daily_status.parquet', 'format' = 'parquet');

CREATE TABLE cancelled (order_id BIGINT, customer_id BIGINT, amount DOUBLE, order_time TIMESTAMP(3))
WITH ('connector' = 'file', 'path' = '/tmp/sluice-examples/cancelled.arrow', 'format' = 'arrow');

SELECT day, sum(orders) AS orders, round(sum(amount), 2) AS amount
FROM daily_status
GROUP BY day
ORDER BY day;

SELECT count(*) AS cancelled, round(sum(amount), 2) AS lost_revenue FROM cancelled;

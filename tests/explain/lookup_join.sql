CREATE TABLE hits (path VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'stdin', 'format' = 'json');
CREATE TABLE customers (customer_id BIGINT, name VARCHAR, country VARCHAR, signup_date DATE)
  WITH ('connector' = 'file', 'path' = 'testdata/customers.csv', 'format' = 'csv');
SELECT h.path, c.name FROM hits h LEFT JOIN customers c ON length(h.path) = c.customer_id;

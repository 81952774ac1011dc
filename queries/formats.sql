-- One table per file format, declared two ways.
-- Run from the repository root: sluice queries/formats.sql

-- Flink-style connector tables: columns declared, options in WITH.
CREATE TABLE customers (customer_id BIGINT, name VARCHAR, country VARCHAR, signup_date DATE)
WITH ('connector' = 'file', 'path' = 'testdata/customers.csv', 'format' = 'csv',
      'csv.header' = 'true', 'csv.field-delimiter' = ',');

CREATE TABLE products (product_id BIGINT, name VARCHAR, category VARCHAR, price DOUBLE)
WITH ('connector' = 'file', 'path' = 'testdata/products.parquet', 'format' = 'parquet');

CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
                   date_time TIMESTAMP(3))
WITH ('connector' = 'file', 'path' = 'testdata/bids.ndjson', 'format' = 'json');

-- DataFusion's own DDL works too, with the schema taken from the file.
CREATE EXTERNAL TABLE orders STORED AS CSV LOCATION 'testdata/orders.csv'
OPTIONS ('format.has_header' 'true');

SHOW TABLES;

DESCRIBE orders;

SELECT 'customers.csv' AS file, count(*) AS rows FROM customers
UNION ALL SELECT 'products.parquet', count(*) FROM products
UNION ALL SELECT 'bids.ndjson', count(*) FROM bids
UNION ALL SELECT 'orders.csv', count(*) FROM orders
ORDER BY file;

-- Newest signups, a DATE column read from CSV.
SELECT customer_id, name, country, signup_date
FROM customers
ORDER BY signup_date DESC, customer_id
LIMIT 5;

-- The dearest product of each category, from Parquet.
SELECT DISTINCT ON (category) category, name, price
FROM products
ORDER BY category, price DESC;

-- Bids per channel, from NDJSON.
SELECT channel, count(*) AS bids, min(date_time) AS first, max(date_time) AS last
FROM bids
GROUP BY channel
ORDER BY bids DESC;

SET sluice.emit.interval = '1 s';
CREATE TABLE orders (id INT, k VARCHAR, v INT) WITH ('connector' = 'stdin', 'format' = 'json');
SELECT k, sum(v) AS total FROM orders GROUP BY k LIMIT 3;

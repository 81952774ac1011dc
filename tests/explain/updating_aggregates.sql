CREATE TABLE hits (path VARCHAR, bytes BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'stdin', 'format' = 'json');
SELECT n, count(*) AS paths, max(total) AS largest
FROM (SELECT path, count(*) AS n, sum(bytes) AS total FROM hits GROUP BY path HAVING sum(bytes) > 10)
GROUP BY n;

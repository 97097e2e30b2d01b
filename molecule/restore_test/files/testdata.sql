-- Test data for the restore drills: a few thousand rows, an index, TOASTed values, a partitioned
-- table and a materialized view in a database of its own.
CREATE DATABASE appdb;
\connect appdb
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 500) g;
CREATE TABLE orders (
  id int PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers (id),
  amount numeric(10, 2) NOT NULL,
  note text
);
INSERT INTO orders
  SELECT g, 1 + g % 500, (g % 997) / 10.0,
         CASE WHEN g % 100 = 0 THEN repeat(md5(g::text), 400) ELSE md5(g::text) END
  FROM generate_series(1, 5000) g;
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE measurements (at date NOT NULL, value int) PARTITION BY RANGE (at);
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO measurements SELECT date '2025-06-01' + (g % 400), g FROM generate_series(1, 2000) g;
CREATE MATERIALIZED VIEW order_totals AS SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id;

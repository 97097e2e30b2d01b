-- Test data for the pg_dump scenario: two databases, names that need quoting, a partitioned table,
-- large objects, a sequence, a materialized view, contrib extensions, more than 20 tables.
\set ON_ERROR_STOP on
CREATE DATABASE appdb;
CREATE DATABASE "Reports Ü";
CREATE ROLE app_owner LOGIN;

\connect appdb
CREATE EXTENSION pg_trgm;
CREATE EXTENSION hstore;
CREATE SCHEMA "Sales Ü" AUTHORIZATION app_owner;

CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, email text, attrs hstore);
INSERT INTO customers (name, email, attrs)
  SELECT 'customer ' || g, 'c' || g || '@example.com', hstore('tier', (g % 3)::text) FROM generate_series(1, 5000) g;
CREATE INDEX customers_name_trgm ON customers USING gin (name gin_trgm_ops);

CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     customer_id bigint NOT NULL REFERENCES customers, placed date NOT NULL,
                     total numeric(12, 2), note text);
INSERT INTO orders (customer_id, placed, total, note)
  SELECT 1 + g % 5000, date '2025-01-01' + (g % 700), (g % 997) * 1.25, md5(g::text)
  FROM generate_series(1, 120000) g;

CREATE TABLE measurements (id bigint, at date NOT NULL, value double precision) PARTITION BY RANGE (at);
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE "measurements Ü default" PARTITION OF measurements DEFAULT;
INSERT INTO measurements SELECT g, date '2024-12-01' + (g % 800), random() FROM generate_series(1, 30000) g;

CREATE TABLE "Sales Ü"."Mixed Case Table" (id serial PRIMARY KEY, "Amount €" numeric, label text);
ALTER TABLE "Sales Ü"."Mixed Case Table" OWNER TO app_owner;
INSERT INTO "Sales Ü"."Mixed Case Table" ("Amount €", label) SELECT g * 1.5, 'línea ' || g FROM generate_series(1, 777) g;
CREATE TABLE "table with spaces" (k int PRIMARY KEY, v text);
INSERT INTO "table with spaces" SELECT g, repeat('x', g % 50) FROM generate_series(1, 321) g;
CREATE TABLE "Ärger" (id int, grund text);
INSERT INTO "Ärger" SELECT g, 'Grund ' || g FROM generate_series(1, 55) g;
CREATE TABLE "Order""Quote" (x int);
INSERT INTO "Order""Quote" SELECT generate_series(1, 9);
CREATE TABLE "CamelCase" ("Id" int, "Value" text);
INSERT INTO "CamelCase" SELECT g, 'v' || g FROM generate_series(1, 42) g;

-- Data excluded by the nightly job (exclude_table_data): the manifest expects it empty after a restore.
CREATE TABLE cache_sessions (id int, payload text);
INSERT INTO cache_sessions SELECT g, md5(g::text) FROM generate_series(1, 500) g;
CREATE UNLOGGED TABLE scratch (id int);
INSERT INTO scratch SELECT generate_series(1, 77);

DO $$
BEGIN
  FOR i IN 1..12 LOOP
    EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, v text)', 't' || lpad(i::text, 2, '0'));
    EXECUTE format('INSERT INTO %I SELECT g, md5(g::text) FROM generate_series(1, %s) g', 't' || lpad(i::text, 2, '0'), i * 10);
  END LOOP;
END $$;

CREATE SEQUENCE invoice_no START 1000;
SELECT nextval('invoice_no') FROM generate_series(1, 42);

CREATE MATERIALIZED VIEW customer_totals AS
  SELECT customer_id, count(*) AS orders, sum(total) AS total FROM orders GROUP BY customer_id;

SELECT lo_from_bytea(0, convert_to(repeat('large object one ', 1000), 'UTF8'));
SELECT lo_from_bytea(0, convert_to(repeat('large object two ', 2000), 'UTF8'));
SELECT lo_from_bytea(0, decode(md5('three'), 'hex'));

-- Locked by the "killed pg_dump" test while pg_dump waits for it.
CREATE TABLE lock_target (id int);
INSERT INTO lock_target VALUES (1);

\connect "Reports Ü"
CREATE TABLE "Monatsbericht" (monat date, "Umsatz €" numeric);
INSERT INTO "Monatsbericht" SELECT date '2025-01-01' + (g * interval '1 month'), g * 1000 FROM generate_series(0, 23) g;
CREATE TABLE "日本語テーブル" (id int, 名前 text);
INSERT INTO "日本語テーブル" SELECT g, '名前' || g FROM generate_series(1, 12) g;

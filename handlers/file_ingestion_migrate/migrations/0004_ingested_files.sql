-- Files, one row each: a file's rows name it by a short id (file_id) instead of repeating its bucket, key and
-- version on every row, so what a load holds and sends per row no longer grows with the object key (a 1 KiB key
-- repeated on 8,000 rows was 8 to 35 MiB of COPY text per file); and a file is loaded once per content (dataset +
-- SHA-256 of its bytes), so the same bytes announced again (an SDK retry, a nightly re-export, under the same key or
-- another) add no row. The natural key of a row is then its file (one per content) and its own record key.
--
-- Both tables are locked first, in the order a load takes them (customers, then orders), so this migration waits
-- for a running batch instead of deadlocking with it. The UPDATEs below rewrite both tables once.
LOCK TABLE customers, orders IN ACCESS EXCLUSIVE MODE;

CREATE TABLE ingested_files (
    file_id         bigint      PRIMARY KEY,
    dataset         text        NOT NULL,
    -- NULL only for files loaded before this migration, whose bytes were never hashed
    content_sha256  bytea       CHECK (octet_length(content_sha256) = 32),
    source_bucket   text        NOT NULL,
    source_key      text        NOT NULL,
    source_version  text        NOT NULL,
    row_count       integer     NOT NULL CHECK (row_count >= 0),
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ingested_files_content UNIQUE (dataset, content_sha256)
);

-- Files loaded before: one row each, numbered below zero (new files get random positive ids).
INSERT INTO ingested_files (file_id, dataset, source_bucket, source_key, source_version, row_count, loaded_at)
SELECT -row_number() OVER (ORDER BY first_loaded, dataset, source_key, source_version), dataset, source_bucket,
       source_key, source_version, rows, first_loaded
FROM (SELECT 'customers' AS dataset, source_bucket, source_key, source_version, count(*) AS rows,
             min(loaded_at) AS first_loaded
      FROM customers GROUP BY source_bucket, source_key, source_version
      UNION ALL
      SELECT 'orders', source_bucket, source_key, source_version, count(*), min(loaded_at)
      FROM orders GROUP BY source_bucket, source_key, source_version) AS loaded;

ALTER TABLE customers ADD COLUMN file_id bigint;
UPDATE customers c SET file_id = f.file_id FROM ingested_files f
WHERE f.dataset = 'customers' AND (f.source_bucket, f.source_key, f.source_version)
    = (c.source_bucket, c.source_key, c.source_version);
ALTER TABLE customers
    ALTER COLUMN file_id SET NOT NULL,
    DROP CONSTRAINT customers_natural_key,
    DROP COLUMN source_bucket, DROP COLUMN source_key, DROP COLUMN source_version,
    ADD CONSTRAINT customers_natural_key UNIQUE (file_id, customer_id);

ALTER TABLE orders ADD COLUMN file_id bigint;
UPDATE orders o SET file_id = f.file_id FROM ingested_files f
WHERE f.dataset = 'orders' AND (f.source_bucket, f.source_key, f.source_version)
    = (o.source_bucket, o.source_key, o.source_version);
ALTER TABLE orders
    ALTER COLUMN file_id SET NOT NULL,
    DROP CONSTRAINT orders_natural_key,
    DROP COLUMN source_bucket, DROP COLUMN source_key, DROP COLUMN source_version,
    ADD CONSTRAINT orders_natural_key UNIQUE (file_id, order_id);

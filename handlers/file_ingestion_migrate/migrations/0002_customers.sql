-- Customers: one row per customer record of a file under the customers prefix.
-- The natural key (object key, object version or ETag, customer id) makes every load idempotent.
CREATE TABLE customers (
    source_bucket     text        NOT NULL,
    source_key        text        NOT NULL,
    source_version    text        NOT NULL,
    record_index      integer     NOT NULL CHECK (record_index >= 0),
    customer_id       text        NOT NULL,
    email             text        NOT NULL,
    full_name         text        NOT NULL,
    country           char(2)     NOT NULL,
    created_at        timestamptz NOT NULL,
    marketing_opt_in  boolean     NOT NULL DEFAULT false,
    loaded_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_natural_key UNIQUE (source_key, source_version, customer_id)
);

CREATE INDEX customers_customer_id ON customers (customer_id);
CREATE INDEX customers_loaded_at ON customers (loaded_at);

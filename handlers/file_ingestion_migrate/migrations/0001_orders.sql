-- Orders: one row per order record of a file under the orders prefix.
-- The natural key (object key, object version or ETag, order id) makes every load idempotent.
CREATE TABLE orders (
    source_bucket   text          NOT NULL,
    source_key      text          NOT NULL,
    source_version  text          NOT NULL,
    record_index    integer       NOT NULL CHECK (record_index >= 0),
    order_id        text          NOT NULL,
    customer_id     text          NOT NULL,
    order_date      date          NOT NULL,
    status          text          NOT NULL
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')),
    currency        char(3)       NOT NULL,
    total_amount    numeric(12,2) NOT NULL CHECK (total_amount >= 0),
    item_count      integer       NOT NULL CHECK (item_count >= 0),
    loaded_at       timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT orders_natural_key UNIQUE (source_key, source_version, order_id)
);

CREATE INDEX orders_order_id ON orders (order_id);
CREATE INDEX orders_loaded_at ON orders (loaded_at);

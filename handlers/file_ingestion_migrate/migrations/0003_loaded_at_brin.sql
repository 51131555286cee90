-- Rows are only ever appended, so loaded_at rises with the rows' physical order: a BRIN index (a summary per range
-- of pages, kilobytes in size) finds "rows loaded since T" as well as a B-tree does here, and costs a load almost
-- nothing, where the B-tree it replaces took about a quarter of the database's time per COPY.
DROP INDEX orders_loaded_at;
CREATE INDEX orders_loaded_at ON orders USING brin (loaded_at);

DROP INDEX customers_loaded_at;
CREATE INDEX customers_loaded_at ON customers USING brin (loaded_at);

-- The loader's privileges, held by a group role no one logs in as. The loader's login (the user named in its own
-- secret, and the second user the alternating-users rotation creates beside it) is a member of this role, made by
-- the migration function from the loader's secret (file_ingestion_migrate/logins.py), never by a migration: a
-- migration is code, the password is not. Rotation copies a user's role memberships to its clone, not grants made
-- to the user itself, which is why the grants are here.
--
-- Exactly what the loader's statements need (handlers/file_ingestion/load.py):
--   INSERT INTO ingested_files (...) ... ON CONFLICT (dataset, content_sha256) DO NOTHING RETURNING file_id
--     -> INSERT on ingested_files; SELECT on file_id (RETURNING reads it) and on dataset, content_sha256 (the
--        conflict target: PostgreSQL requires SELECT on the columns it infers the arbiter index from)
--   COPY orders|customers (...) FROM STDIN -> INSERT on orders and customers
-- Nothing else: no SELECT of the tables' rows (keys, contents), UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER; no sequences (file ids are
-- drawn by the loader). Roles belong to the cluster, so the role may exist already (another database of it).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'file_ingestion_loader') THEN
        CREATE ROLE file_ingestion_loader NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON orders, customers, ingested_files, schema_migrations FROM file_ingestion_loader;
GRANT INSERT ON orders, customers, ingested_files TO file_ingestion_loader;
GRANT SELECT (file_id, dataset, content_sha256) ON ingested_files TO file_ingestion_loader;
GRANT USAGE ON SCHEMA public TO file_ingestion_loader;

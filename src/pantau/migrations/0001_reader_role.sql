-- Read-only role for Grafana and the query API's reads. NOLOGIN here: `pantau bootstrap` gives it
-- LOGIN and its password from DATABASE_READER_PASSWORD (secrets never live in migrations).
-- Created first so the default privileges below cover every table later migrations create.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pantau_reader') THEN
        CREATE ROLE pantau_reader NOLOGIN;
    END IF;
EXCEPTION
    -- Roles are per server: another database of the same server created it at the same moment.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO pantau_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO pantau_reader;
-- Tables and views created later by the migrating role (this one and the API's 0100+) are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO pantau_reader;

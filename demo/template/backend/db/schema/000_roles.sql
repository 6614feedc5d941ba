-- The application's database role and what it may do in schema public.
-- The API connects as dawsos_app in production (DATABASE_URL says so); migrations and jobs
-- run as the owner of the tables. Row-level security (migration 005) applies to dawsos_app,
-- not to the owner.
DO $role$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dawsos_app') THEN
        BEGIN
            CREATE ROLE dawsos_app NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'role dawsos_app not created (no CREATEROLE); grants skipped';
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'dawsos_app') THEN
        GRANT USAGE ON SCHEMA public TO dawsos_app;
        -- every table created from here on: read/write for the app (no TRUNCATE, no DDL)
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO dawsos_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO dawsos_app;
    END IF;
END
$role$;

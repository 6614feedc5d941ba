-- 010: users own portfolios; who did what is audited.

CREATE TABLE IF NOT EXISTS users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    email         text        NOT NULL UNIQUE,
    password_hash text        NOT NULL,
    role          text        NOT NULL DEFAULT 'USER',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    is_active     boolean     NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS audit_log (
    id            uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action        text        NOT NULL,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    details       jsonb       DEFAULT '{}'::jsonb,
    "timestamp"   timestamptz NOT NULL DEFAULT now(),
    ip_address    text,
    user_agent    text
);

ALTER TABLE portfolios ADD CONSTRAINT portfolios_user_fk
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_select_own ON users FOR SELECT
    USING (current_setting('app.user_id', true)::uuid IN (id, '00000000-0000-0000-0000-000000000000'::uuid));
CREATE POLICY users_insert_admin ON users FOR INSERT
    WITH CHECK (current_setting('app.user_id', true)::uuid = '00000000-0000-0000-0000-000000000000'::uuid);
CREATE POLICY users_update_own_or_admin ON users FOR UPDATE
    USING (current_setting('app.user_id', true)::uuid IN (id, '00000000-0000-0000-0000-000000000000'::uuid));
CREATE POLICY users_delete_admin ON users FOR DELETE
    USING (current_setting('app.user_id', true)::uuid = '00000000-0000-0000-0000-000000000000'::uuid);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_select_own_or_admin ON audit_log FOR SELECT
    USING (current_setting('app.user_id', true)::uuid IN (user_id, '00000000-0000-0000-0000-000000000000'::uuid));
CREATE POLICY audit_log_insert_all ON audit_log FOR INSERT WITH CHECK (true);

DO $grants$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'dawsos_app') THEN
        GRANT SELECT, INSERT, UPDATE ON users TO dawsos_app;
        GRANT SELECT, INSERT ON audit_log TO dawsos_app;
    END IF;
END
$grants$;

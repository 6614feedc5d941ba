-- Login accounts and the audit trail (copied here from migrations 009/010 so that a fresh
-- install from schema/ alone has them; the migrations still carry their own copies).
-- Id 00000000-0000-0000-0000-000000000000 is the system administrator in RLS policies.

CREATE FUNCTION update_updated_at_column() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    NEW.updated_at := now();      -- unconditional: an explicit updated_at is overwritten
    RETURN NEW;
END
$f$;

CREATE TABLE users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    role          text        NOT NULL DEFAULT 'USER',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    is_active     boolean     NOT NULL DEFAULT true,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_role_valid CHECK (role IN ('VIEWER', 'USER', 'MANAGER', 'ADMIN')),
    CONSTRAINT users_email_format
        CHECK (email ~* '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$')
);
CREATE INDEX idx_users_email  ON users (email);
CREATE INDEX idx_users_role   ON users (role);
CREATE INDEX idx_users_active ON users (is_active) WHERE is_active = true;
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE audit_log (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id       uuid        NOT NULL,
    action        text        NOT NULL,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    details       jsonb       DEFAULT '{}'::jsonb,
    "timestamp"   timestamptz NOT NULL DEFAULT now(),
    ip_address    text,
    user_agent    text,
    CONSTRAINT audit_log_pkey PRIMARY KEY (id),
    CONSTRAINT audit_log_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX idx_audit_log_user_id   ON audit_log (user_id);
CREATE INDEX idx_audit_log_timestamp ON audit_log ("timestamp" DESC);
CREATE INDEX idx_audit_log_action    ON audit_log (action);
CREATE INDEX idx_audit_log_resource  ON audit_log (resource_type, resource_id);

-- 010: audit trail.
-- KNOWN DEFECT: duplicates backend/db/schema/audit.sql.

CREATE TABLE IF NOT EXISTS audit_log (
    id         bigserial   PRIMARY KEY,
    actor      text,
    action     text,
    detail     jsonb,
    created_at timestamptz DEFAULT now()
);

INSERT INTO schema_migrations (version) VALUES ('010') ON CONFLICT (version) DO NOTHING;

-- Append-only audit trail written by the API and the agents.

CREATE TABLE IF NOT EXISTS audit_log (
    id         bigserial   PRIMARY KEY,
    actor      text,
    action     text,
    detail     jsonb,
    created_at timestamptz DEFAULT now()
);

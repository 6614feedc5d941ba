-- 009: JWT authentication: lockout after failed logins, revoked tokens, refresh tokens.
-- (Numbered 009 on a branch that met another 009 on merge.)

ALTER TABLE users ADD COLUMN IF NOT EXISTS failed_login_attempts integer DEFAULT 0;
ALTER TABLE users ADD COLUMN IF NOT EXISTS locked_until timestamptz;

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

CREATE TABLE token_blacklist (
    id         uuid                   NOT NULL DEFAULT gen_random_uuid(),
    token_jti  character varying(255) NOT NULL,
    user_id    uuid,
    expires_at timestamptz            NOT NULL,
    created_at timestamptz            NOT NULL DEFAULT now(),
    CONSTRAINT token_blacklist_pkey PRIMARY KEY (id),
    CONSTRAINT token_blacklist_token_jti_key UNIQUE (token_jti),
    CONSTRAINT token_blacklist_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id)
);
CREATE INDEX idx_token_blacklist_jti     ON token_blacklist (token_jti);
CREATE INDEX idx_token_blacklist_expires ON token_blacklist (expires_at);

CREATE TABLE refresh_tokens (
    id         uuid                   NOT NULL DEFAULT gen_random_uuid(),
    user_id    uuid                   NOT NULL,
    token_hash character varying(255) NOT NULL,
    expires_at timestamptz            NOT NULL,
    created_at timestamptz            NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT refresh_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id)
);
CREATE INDEX idx_refresh_tokens_user_id    ON refresh_tokens (user_id);
CREATE INDEX idx_refresh_tokens_token_hash ON refresh_tokens (token_hash);
CREATE INDEX idx_refresh_tokens_expires    ON refresh_tokens (expires_at);

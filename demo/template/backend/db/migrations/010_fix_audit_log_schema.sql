-- 010: audit_log queries by user over time and by details.
CREATE INDEX IF NOT EXISTS idx_audit_log_user_timestamp ON audit_log (user_id, "timestamp" DESC);
CREATE INDEX IF NOT EXISTS idx_audit_log_details_gin ON audit_log USING gin (details);

-- 004: owner of a portfolio (used by the export report header).
ALTER TABLE portfolios ADD COLUMN IF NOT EXISTS owner_email text;
INSERT INTO schema_migrations (version) VALUES ('004') ON CONFLICT (version) DO NOTHING;

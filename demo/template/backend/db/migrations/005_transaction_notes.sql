-- 005: free-text notes on transactions (broker memo, corporate action reference).
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS notes text;
INSERT INTO schema_migrations (version) VALUES ('005') ON CONFLICT (version) DO NOTHING;

-- 002: listing exchange on the security master (nullable; filled by the data harvester).
ALTER TABLE securities ADD COLUMN IF NOT EXISTS exchange text;
INSERT INTO schema_migrations (version) VALUES ('002') ON CONFLICT (version) DO NOTHING;

-- 011: sector allocation groups the security master by sector.
CREATE INDEX IF NOT EXISTS idx_securities_sector ON securities (sector);
INSERT INTO schema_migrations (version) VALUES ('011') ON CONFLICT (version) DO NOTHING;

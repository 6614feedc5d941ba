-- 012: macro dashboards read the latest observations across series.
CREATE INDEX IF NOT EXISTS idx_macro_indicators_asof_date ON macro_indicators (asof_date);
INSERT INTO schema_migrations (version) VALUES ('012') ON CONFLICT (version) DO NOTHING;

-- 003: "latest pack" queries filter on price_date across all securities.
CREATE INDEX IF NOT EXISTS idx_prices_price_date ON prices (price_date);
INSERT INTO schema_migrations (version) VALUES ('003') ON CONFLICT (version) DO NOTHING;

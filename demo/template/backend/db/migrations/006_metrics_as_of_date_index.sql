-- 006: dashboards read the newest metrics row of every portfolio.
CREATE INDEX IF NOT EXISTS idx_portfolio_metrics_as_of_date ON portfolio_metrics (as_of_date);
INSERT INTO schema_migrations (version) VALUES ('006') ON CONFLICT (version) DO NOTHING;

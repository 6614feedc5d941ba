-- 008: the activity feed and tax reports scan transactions by trade_date.
CREATE INDEX IF NOT EXISTS idx_transactions_trade_date ON transactions (trade_date);
INSERT INTO schema_migrations (version) VALUES ('008') ON CONFLICT (version) DO NOTHING;

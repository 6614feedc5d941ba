-- 012: the listings screen filters the security master by exchange.
CREATE INDEX IF NOT EXISTS idx_securities_exchange ON securities (exchange);

-- 016: composite indexes for the common queries (Week 0, Task 2.4).
--   lots (portfolio_id, security_id)              lots of one security in a portfolio
--                                                  (ledger.lots_for_security, trade_execution)
--   transactions (portfolio_id, transaction_date) a portfolio's activity, newest first
--                                                  (ledger.transactions, corporate_actions)
-- Each also covers the portfolio_id FK of its table (leading column). The FK columns still
-- lacking an index after this (found from the catalog) get one from the flow's
-- "indexes:fk" step, since CREATE INDEX CONCURRENTLY cannot run inside a DO block.
SET lock_timeout = '2s';
SET statement_timeout = '0';

-- runbook:section composite_indexes no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_lots_portfolio_security
    ON lots (portfolio_id, security_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_transactions_portfolio_transaction_date
    ON transactions (portfolio_id, transaction_date);

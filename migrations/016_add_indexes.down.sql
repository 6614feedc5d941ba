-- 016 rollback: drop the composite indexes without blocking writes.
SET lock_timeout = '2s';
SET statement_timeout = '0';

-- runbook:section composite_indexes no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_lots_portfolio_security;
DROP INDEX CONCURRENTLY IF EXISTS idx_transactions_portfolio_transaction_date;

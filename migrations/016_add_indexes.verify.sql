-- 016 verify: each check is one query returning a single boolean; all must be true.

-- runbook:check the composite indexes exist, are valid and lead with the intended columns
SELECT count(*) = 2 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indisvalid AND (
       (c.relname = 'idx_lots_portfolio_security' AND i.indrelid = 'lots'::regclass
        AND pg_get_indexdef(i.indexrelid) LIKE '%(portfolio_id, security_id)')
    OR (c.relname = 'idx_transactions_portfolio_transaction_date' AND i.indrelid = 'transactions'::regclass
        AND pg_get_indexdef(i.indexrelid) LIKE '%(portfolio_id, transaction_date)'));

-- 014 verify: each check is one query returning a single boolean; all must be true.

-- runbook:check lots has quantity_open and quantity_original, NOT NULL, beside the old columns
SELECT count(*) FILTER (WHERE column_name IN ('quantity_open', 'quantity_original') AND is_nullable = 'NO') = 2
   AND count(*) FILTER (WHERE column_name IN ('qty_open', 'qty_original')) = 2
  FROM information_schema.columns
 WHERE table_schema = current_schema() AND table_name = 'lots';

-- runbook:check prices and portfolio_metrics have a NOT NULL asof_date
SELECT count(*) = 2 FROM information_schema.columns
 WHERE table_schema = current_schema() AND column_name = 'asof_date' AND is_nullable = 'NO'
   AND table_name IN ('prices', 'portfolio_metrics');

-- runbook:check the sync triggers are installed and enabled
SELECT count(*) = 3 FROM pg_trigger
 WHERE tgname IN ('lots_sync_014', 'prices_sync_014', 'portfolio_metrics_sync_014') AND tgenabled <> 'D';

-- runbook:check the CHECK constraints on the new columns are validated
SELECT count(*) = 6 FROM pg_constraint
 WHERE conname IN ('lots_quantity_open_not_null', 'lots_quantity_original_not_null',
                   'lots_quantity_open_nonneg', 'lots_quantity_open_le_original',
                   'prices_asof_date_not_null', 'portfolio_metrics_asof_date_not_null')
   AND convalidated;

-- runbook:check the new indexes exist and are valid
SELECT count(*) = 2 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relname IN ('idx_lots_open_quantity', 'idx_prices_asof_date') AND i.indisvalid;

-- runbook:check reduce_lot no longer references the old column names
SELECT coalesce(bool_and(prosrc !~ '(^|[^A-Za-z0-9])qty_(open|original)($|[^A-Za-z0-9])'), true)
  FROM pg_proc WHERE proname = 'reduce_lot';

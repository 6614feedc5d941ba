-- 017 verify: each check is one query returning a single boolean; all must be true.

-- runbook:check lots has no qty_open / qty_original, and NOT NULL quantity_open / quantity_original
SELECT count(*) FILTER (WHERE column_name IN ('qty_open', 'qty_original')) = 0
   AND count(*) FILTER (WHERE column_name IN ('quantity_open', 'quantity_original') AND is_nullable = 'NO') = 2
  FROM information_schema.columns
 WHERE table_schema = current_schema() AND table_name = 'lots';

-- runbook:check the lots sync trigger is gone; the date sync triggers (not contracted) remain
SELECT NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'lots_sync_014' AND tgrelid = 'lots'::regclass)
   AND (SELECT count(*) = 2 FROM pg_trigger WHERE tgname IN ('prices_sync_014', 'portfolio_metrics_sync_014'));

-- runbook:check no database function references qty_open or qty_original
SELECT NOT EXISTS (
    SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND p.prosrc ~ '(^|[^A-Za-z0-9_])qty_(open|original)($|[^A-Za-z0-9_])');

-- runbook:check v_open_lots exists with the new column names only
SELECT count(*) FILTER (WHERE column_name IN ('quantity_open', 'quantity_original')) = 2
   AND count(*) FILTER (WHERE column_name LIKE 'qty\_%') = 0
  FROM information_schema.columns
 WHERE table_schema = current_schema() AND table_name = 'v_open_lots';

-- runbook:check the open-lots index on the new column is valid
SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE c.relname = 'idx_lots_open_quantity' AND i.indisvalid);

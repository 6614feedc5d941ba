-- 017 verify: each check is one query returning a single boolean; all must be true.

-- runbook:check lots has no qty_open / qty_original, and NOT NULL quantity_open / quantity_original
SELECT count(*) FILTER (WHERE column_name IN ('qty_open', 'qty_original')) = 0
   AND count(*) FILTER (WHERE column_name IN ('quantity_open', 'quantity_original') AND is_nullable = 'NO') = 2
  FROM information_schema.columns
 WHERE table_schema = current_schema() AND table_name = 'lots';

-- runbook:check the lots sync trigger is gone
SELECT NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'lots_sync_014' AND tgrelid = 'lots'::regclass);

-- runbook:check the guards of the new columns are in place and validated
SELECT count(*) = 3 FROM pg_constraint
 WHERE conrelid = 'lots'::regclass AND convalidated
   AND conname IN ('lots_quantity_original_positive', 'lots_quantity_open_nonnegative',
                   'lots_quantity_open_lte_original');

-- runbook:check the open-lots index on the new column is valid
SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE c.relname = 'idx_lots_quantity_open' AND i.indisvalid);

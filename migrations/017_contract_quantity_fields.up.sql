-- 017: contract the quantity renames of 014: drop lots.qty_open / lots.qty_original and the
-- lots sync trigger, after the verification period (the contract flow checks it).
--
-- Scope: only the quantity columns. prices.price_date and portfolio_metrics.as_of_date are
-- primary-key columns: contracting them means moving each primary key to asof_date first
-- (CREATE UNIQUE INDEX CONCURRENTLY on the new key, ALTER TABLE ... ADD PRIMARY KEY USING
-- INDEX, and re-pointing any FK that references the old key), which is its own migration with
-- its own rehearsal. Until then their sync triggers (and runbook.sync_renamed_columns, which
-- they use) stay.
SET lock_timeout = '2s';
SET statement_timeout = '60s';

-- runbook:section database_code
-- The view drops its old columns (CREATE OR REPLACE VIEW cannot drop columns). reduce_lot
-- already uses the new names since 014; the contract flow refuses to run while any other
-- function, view or trigger still references the old columns.
-- reason: the view is recreated at once without the columns this migration drops
-- squawk-ignore ban-drop-view
DROP VIEW IF EXISTS v_open_lots;
CREATE VIEW v_open_lots AS
    SELECT id, portfolio_id, security_id, quantity_open, quantity_original
      FROM lots WHERE quantity_open > 0;

-- runbook:section drop_sync_trigger
DROP TRIGGER IF EXISTS lots_sync_014 ON lots;

-- runbook:section drop_old_index no-transaction
-- 007's partial index on qty_open; 014's idx_lots_open_quantity replaces it.
DROP INDEX CONCURRENTLY IF EXISTS idx_lots_open;

-- runbook:section drop_columns
-- 007's CHECKs on the old columns (014 added the same CHECKs on the new columns).
-- reason: the same guarantees hold on quantity_open/quantity_original (014's validated CHECKs)
-- squawk-ignore ban-drop-constraint
ALTER TABLE lots DROP CONSTRAINT IF EXISTS lots_qty_open_nonneg;
-- squawk-ignore ban-drop-constraint
ALTER TABLE lots DROP CONSTRAINT IF EXISTS lots_qty_open_le_original;
-- reason: contract phase: the verification period passed and no code or database object uses these columns
-- squawk-ignore ban-drop-column
ALTER TABLE lots DROP COLUMN IF EXISTS qty_open;
-- reason: as above
-- squawk-ignore ban-drop-column
ALTER TABLE lots DROP COLUMN IF EXISTS qty_original;

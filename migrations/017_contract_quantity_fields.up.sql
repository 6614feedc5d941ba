-- 017: contract the quantity renames of 014: drop lots.qty_open / lots.qty_original, their
-- CHECKs and partial index, and the lots sync trigger, after the verification period (the
-- contract flow checks it). 014 mirrored every guard onto quantity_open / quantity_original
-- and moved reduce_lot() to the new names; the contract flow refuses to run while any other
-- function, view or trigger still references the old columns.
SET lock_timeout = '2s';
SET statement_timeout = '60s';

-- runbook:section drop_sync_trigger
DROP TRIGGER IF EXISTS lots_sync_014 ON lots;

-- runbook:section drop_old_index no-transaction
-- 007's partial index on qty_open; 014's idx_lots_quantity_open replaces it.
DROP INDEX CONCURRENTLY IF EXISTS idx_lots_qty_open;

-- runbook:section drop_columns
-- reason: the same guarantees hold on quantity_open/quantity_original (014's validated CHECKs)
-- squawk-ignore ban-drop-constraint
ALTER TABLE lots DROP CONSTRAINT IF EXISTS lots_qty_original_positive;
-- squawk-ignore ban-drop-constraint
ALTER TABLE lots DROP CONSTRAINT IF EXISTS lots_qty_open_nonnegative;
-- squawk-ignore ban-drop-constraint
ALTER TABLE lots DROP CONSTRAINT IF EXISTS lots_qty_open_lte_original;
-- reason: contract phase: the verification period passed and no code or database object uses these columns
-- squawk-ignore ban-drop-column
ALTER TABLE lots DROP COLUMN IF EXISTS qty_open;
-- reason: as above
-- squawk-ignore ban-drop-column
ALTER TABLE lots DROP COLUMN IF EXISTS qty_original;

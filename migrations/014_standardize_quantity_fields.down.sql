-- 014 rollback: back to exactly the pre-014 schema. Data in the old columns is authoritative
-- (the sync trigger kept it equal to the new columns), so dropping the new ones loses nothing.
SET lock_timeout = '2s';
SET statement_timeout = '60s';

-- runbook:section database_code
CREATE OR REPLACE FUNCTION reduce_lot(p_lot_id uuid, p_qty numeric) RETURNS numeric
LANGUAGE plpgsql AS $fn$
DECLARE
    remaining numeric;
BEGIN
    UPDATE lots
       SET qty_open = qty_open - p_qty,
           closed_date = CASE WHEN qty_open - p_qty = 0 THEN current_date ELSE closed_date END
     WHERE id = p_lot_id
    RETURNING qty_open INTO remaining;
    RETURN remaining;
END
$fn$;
-- reason: the view is recreated at once with its pre-014 columns (CREATE OR REPLACE cannot drop columns)
-- squawk-ignore ban-drop-view
DROP VIEW IF EXISTS v_open_lots;
CREATE VIEW v_open_lots AS
    SELECT id, portfolio_id, security_id, qty_open, qty_original
      FROM lots WHERE qty_open > 0;

-- runbook:section indexes no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_lots_open_quantity;
DROP INDEX CONCURRENTLY IF EXISTS idx_prices_asof_date;

-- runbook:section drop_triggers
DROP TRIGGER IF EXISTS lots_sync_014 ON lots;
DROP TRIGGER IF EXISTS prices_sync_014 ON prices;
DROP TRIGGER IF EXISTS portfolio_metrics_sync_014 ON portfolio_metrics;
-- reason: the sync function is the runbook's own and no trigger uses it any more
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS runbook.sync_renamed_columns();

-- runbook:section drop_columns
-- reason: these columns are the ones 014 added; the old columns hold the same data
-- squawk-ignore ban-drop-column
ALTER TABLE lots DROP COLUMN IF EXISTS quantity_open;
-- squawk-ignore ban-drop-column
ALTER TABLE lots DROP COLUMN IF EXISTS quantity_original;
-- squawk-ignore ban-drop-column
ALTER TABLE prices DROP COLUMN IF EXISTS asof_date;
-- squawk-ignore ban-drop-column
ALTER TABLE portfolio_metrics DROP COLUMN IF EXISTS asof_date;

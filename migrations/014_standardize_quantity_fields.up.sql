-- 014: standardise quantity and date field names (expand phase).
--
-- Expand / backfill / contract: new columns are added beside the old ones and kept in sync
-- in both directions by a trigger, so old and new application code can run side by side.
-- Old columns stay; the contract flow drops them after a green verification period.
--
-- The runner executes this file section by section ("-- runbook:section NAME [flags]"),
-- each in its own short transaction with lock_timeout and retry, records each finished
-- section in the runbook ledger (a re-run resumes), and runs "backfill" directives as
-- UPDATEs batched by heap block ranges, with checkpoints. The SET below is for running the file by hand.
SET lock_timeout = '2s';
SET statement_timeout = '60s';

-- runbook:section add_columns
ALTER TABLE lots ADD COLUMN IF NOT EXISTS quantity_open numeric(20, 6);
ALTER TABLE lots ADD COLUMN IF NOT EXISTS quantity_original numeric(20, 6);
ALTER TABLE prices ADD COLUMN IF NOT EXISTS asof_date date;
ALTER TABLE portfolio_metrics ADD COLUMN IF NOT EXISTS asof_date date;

-- runbook:section sync_triggers
-- One generic function, parameterised by (old, new) column pairs: writes through either
-- name are visible through both. The backfill sets runbook.backfill = 'on' so its own
-- updates (which already write both columns) skip the trigger.
CREATE SCHEMA IF NOT EXISTS runbook;
CREATE OR REPLACE FUNCTION runbook.sync_renamed_columns() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    new_row jsonb := to_jsonb(NEW);
    old_row jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END;
    patch jsonb := '{}';
    old_col text;
    new_col text;
BEGIN
    FOR i IN 0 .. TG_NARGS - 1 BY 2 LOOP
        old_col := TG_ARGV[i];
        new_col := TG_ARGV[i + 1];
        IF TG_OP = 'UPDATE'
           AND new_row -> new_col IS DISTINCT FROM old_row -> new_col
           AND new_row -> old_col IS NOT DISTINCT FROM old_row -> old_col THEN
            -- new code wrote the new name: mirror it to the old one
            patch := patch || jsonb_build_object(old_col, new_row -> new_col);
        ELSIF new_row ->> new_col IS NULL
              OR (TG_OP = 'UPDATE' AND new_row -> old_col IS DISTINCT FROM old_row -> old_col) THEN
            -- old code wrote the old name (or the row is not backfilled yet)
            patch := patch || jsonb_build_object(new_col, new_row -> old_col);
        ELSIF TG_OP = 'INSERT' AND new_row ->> old_col IS NULL THEN
            patch := patch || jsonb_build_object(old_col, new_row -> new_col);
        END IF;
    END LOOP;
    IF patch <> '{}' THEN
        NEW := jsonb_populate_record(NEW, patch);
    END IF;
    RETURN NEW;
END
$fn$;
DROP TRIGGER IF EXISTS lots_sync_014 ON lots;
CREATE TRIGGER lots_sync_014 BEFORE INSERT OR UPDATE ON lots FOR EACH ROW
    WHEN (current_setting('runbook.backfill', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION runbook.sync_renamed_columns('qty_open', 'quantity_open', 'qty_original', 'quantity_original');
DROP TRIGGER IF EXISTS prices_sync_014 ON prices;
CREATE TRIGGER prices_sync_014 BEFORE INSERT OR UPDATE ON prices FOR EACH ROW
    WHEN (current_setting('runbook.backfill', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION runbook.sync_renamed_columns('price_date', 'asof_date');
DROP TRIGGER IF EXISTS portfolio_metrics_sync_014 ON portfolio_metrics;
CREATE TRIGGER portfolio_metrics_sync_014 BEFORE INSERT OR UPDATE ON portfolio_metrics FOR EACH ROW
    WHEN (current_setting('runbook.backfill', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION runbook.sync_renamed_columns('as_of_date', 'asof_date');

-- runbook:backfill lots quantity_open=qty_open quantity_original=qty_original
-- runbook:backfill prices asof_date=price_date
-- runbook:backfill portfolio_metrics asof_date=as_of_date

-- runbook:section not_null_checks
-- NOT NULL without a long ACCESS EXCLUSIVE scan: CHECK ... NOT VALID, then VALIDATE (which
-- does not block writes), then SET NOT NULL (which uses the valid CHECK and skips the scan).
ALTER TABLE lots ADD CONSTRAINT lots_quantity_open_not_null CHECK (quantity_open IS NOT NULL) NOT VALID;
ALTER TABLE lots ADD CONSTRAINT lots_quantity_original_not_null CHECK (quantity_original IS NOT NULL) NOT VALID;
ALTER TABLE lots ADD CONSTRAINT lots_quantity_open_nonneg CHECK (quantity_open >= 0) NOT VALID;
ALTER TABLE lots ADD CONSTRAINT lots_quantity_open_le_original CHECK (quantity_open <= quantity_original) NOT VALID;
ALTER TABLE prices ADD CONSTRAINT prices_asof_date_not_null CHECK (asof_date IS NOT NULL) NOT VALID;
ALTER TABLE portfolio_metrics ADD CONSTRAINT portfolio_metrics_asof_date_not_null CHECK (asof_date IS NOT NULL) NOT VALID;

-- runbook:section validate_checks
ALTER TABLE lots VALIDATE CONSTRAINT lots_quantity_open_not_null;
ALTER TABLE lots VALIDATE CONSTRAINT lots_quantity_original_not_null;
ALTER TABLE lots VALIDATE CONSTRAINT lots_quantity_open_nonneg;
ALTER TABLE lots VALIDATE CONSTRAINT lots_quantity_open_le_original;
ALTER TABLE prices VALIDATE CONSTRAINT prices_asof_date_not_null;
ALTER TABLE portfolio_metrics VALIDATE CONSTRAINT portfolio_metrics_asof_date_not_null;

-- runbook:section set_not_null
-- squawk-ignore adding-not-nullable-field
ALTER TABLE lots ALTER COLUMN quantity_open SET NOT NULL;
-- squawk-ignore adding-not-nullable-field
ALTER TABLE lots ALTER COLUMN quantity_original SET NOT NULL;
-- squawk-ignore adding-not-nullable-field
ALTER TABLE prices ALTER COLUMN asof_date SET NOT NULL;
-- squawk-ignore adding-not-nullable-field
ALTER TABLE portfolio_metrics ALTER COLUMN asof_date SET NOT NULL;

-- runbook:section indexes no-transaction
-- The partial index on open lots, now on the new column; built without blocking writes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_lots_open_quantity ON lots (portfolio_id) WHERE quantity_open > 0;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_prices_asof_date ON prices (asof_date);

-- runbook:section database_code
-- Database code that read the old names moves to the new ones (the trigger keeps both
-- columns equal, so old callers see the same values). The view keeps its old columns at the
-- front so that old code selecting them keeps working until the contract flow.
CREATE OR REPLACE FUNCTION reduce_lot(p_lot_id uuid, p_qty numeric) RETURNS numeric
LANGUAGE plpgsql AS $fn$
DECLARE
    remaining numeric;
BEGIN
    UPDATE lots
       SET quantity_open = quantity_open - p_qty,
           closed_date = CASE WHEN quantity_open - p_qty = 0 THEN current_date ELSE closed_date END
     WHERE id = p_lot_id
    RETURNING quantity_open INTO remaining;
    RETURN remaining;
END
$fn$;
CREATE OR REPLACE VIEW v_open_lots AS
    SELECT id, portfolio_id, security_id, qty_open, qty_original, quantity_open, quantity_original
      FROM lots WHERE quantity_open > 0;

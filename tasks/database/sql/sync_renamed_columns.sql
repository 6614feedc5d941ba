-- The expand phase's sync trigger function: writes through either name of a renamed column
-- are visible through both. Arguments are (old, new) column pairs. The backfill sets
-- runbook.backfill = 'on' so that its own updates (which write both columns) skip it.
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

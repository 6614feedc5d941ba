-- The expand phase's sync trigger function: writes through either name of a renamed column
-- are visible through both. Arguments are (old, new) column pairs. The backfill sets
-- runbook.backfill = 'on' so that its own updates (which write both columns) skip it.
-- A statement that writes both names with different values contradicts itself: which value
-- the app meant is unknowable, so it is refused (nothing stored) rather than one value dropped.
-- On INSERT, a name that holds its column default counts as not written (old code inserting
-- through the old name leaves the new one at its default, copied from the old column's).
CREATE OR REPLACE FUNCTION runbook.sync_renamed_columns() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    new_row jsonb := to_jsonb(NEW);
    old_row jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END;
    patch jsonb := '{}';
    old_col text;
    new_col text;
    old_written boolean;
    new_written boolean;
    col text;
    def text;
    typ text;
    val jsonb;
BEGIN
    FOR i IN 0 .. TG_NARGS - 1 BY 2 LOOP
        old_col := TG_ARGV[i];
        new_col := TG_ARGV[i + 1];
        IF TG_OP = 'UPDATE' THEN
            old_written := new_row -> old_col IS DISTINCT FROM old_row -> old_col;
            new_written := new_row -> new_col IS DISTINCT FROM old_row -> new_col;
        ELSE
            old_written := new_row ->> old_col IS NOT NULL;
            new_written := new_row ->> new_col IS NOT NULL;
            IF old_written AND new_written AND new_row -> old_col IS DISTINCT FROM new_row -> new_col THEN
                FOREACH col IN ARRAY ARRAY[new_col, old_col] LOOP
                    SELECT pg_get_expr(d.adbin, d.adrelid), format_type(a.atttypid, a.atttypmod)
                      INTO def, typ
                      FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                     WHERE a.attrelid = TG_RELID AND a.attname = col;
                    CONTINUE WHEN def IS NULL;
                    EXECUTE format('SELECT to_jsonb((%s)::%s)', def, typ) INTO val;
                    IF val IS NOT DISTINCT FROM new_row -> col THEN
                        IF col = new_col THEN new_written := false; ELSE old_written := false; END IF;
                        EXIT;
                    END IF;
                END LOOP;
            END IF;
        END IF;
        IF old_written AND new_written AND new_row -> old_col IS DISTINCT FROM new_row -> new_col THEN
            RAISE EXCEPTION '%: % and % were both written, with different values, in one %',
                TG_TABLE_NAME, old_col, new_col, TG_OP
                USING ERRCODE = 'check_violation',
                      HINT = 'write one of the two names (the other follows), or both with the same value';
        ELSIF new_written AND NOT old_written THEN
            -- new code wrote the new name: mirror it to the old one
            patch := patch || jsonb_build_object(old_col, new_row -> new_col);
        ELSIF new_row ->> new_col IS NULL OR (old_written AND NOT new_written) THEN
            -- old code wrote the old name (or the row is not backfilled yet)
            patch := patch || jsonb_build_object(new_col, new_row -> old_col);
        ELSIF new_row ->> old_col IS NULL THEN
            -- a revert re-adding the old name has not backfilled this row yet: a write of the
            -- other pair must not leave it behind (the backfill skips rows written meanwhile)
            patch := patch || jsonb_build_object(old_col, new_row -> new_col);
        END IF;
    END LOOP;
    IF patch <> '{}' THEN
        NEW := jsonb_populate_record(NEW, patch);
    END IF;
    RETURN NEW;
END
$fn$;

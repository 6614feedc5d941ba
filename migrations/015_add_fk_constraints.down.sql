-- 015 rollback: drop the FKs, then put every quarantined row back exactly as it was (one
-- statement per table: delete from quarantine + insert into the table, atomically), then
-- drop the quarantine tables (and the schema if nothing else lives there).
-- Every statement is guarded, so this also cleans up after a partial apply.
SET lock_timeout = '2s';
SET statement_timeout = '60s';

-- runbook:section drop_foreign_keys
-- reason: these are the FKs 015 added; before 015 no client could rely on them
-- squawk-ignore ban-drop-constraint
ALTER TABLE lots DROP CONSTRAINT IF EXISTS lots_security_id_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE transactions DROP CONSTRAINT IF EXISTS transactions_security_id_fkey;

-- runbook:section restore_lots
-- The tables exist in any state of a partial apply (created here if the apply never got there).
CREATE SCHEMA IF NOT EXISTS quarantine;
CREATE TABLE IF NOT EXISTS quarantine.lots (
    id             uuid        PRIMARY KEY,
    row_data       jsonb       NOT NULL,
    reason         text        NOT NULL,
    migration_id   text        NOT NULL,
    flow_run_id    text,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
WITH back AS (
    DELETE FROM quarantine.lots AS q WHERE q.migration_id = '015_add_fk_constraints'
    RETURNING q.row_data
)
INSERT INTO lots SELECT (jsonb_populate_record(NULL::lots, b.row_data)).* FROM back AS b;

-- runbook:section restore_transactions
CREATE TABLE IF NOT EXISTS quarantine.transactions (
    id             uuid        PRIMARY KEY,
    row_data       jsonb       NOT NULL,
    reason         text        NOT NULL,
    migration_id   text        NOT NULL,
    flow_run_id    text,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
WITH back AS (
    DELETE FROM quarantine.transactions AS q WHERE q.migration_id = '015_add_fk_constraints'
    RETURNING q.row_data
)
INSERT INTO transactions
SELECT (jsonb_populate_record(NULL::transactions, b.row_data)).* FROM back AS b;

-- runbook:section drop_quarantine
-- The sections above emptied the tables of 015's rows; rows of any other origin stop the
-- revert here rather than be dropped with the tables.
DO $guard$
BEGIN
    IF EXISTS (SELECT 1 FROM quarantine.lots) OR EXISTS (SELECT 1 FROM quarantine.transactions) THEN
        RAISE EXCEPTION 'quarantine.lots/transactions hold rows 015 did not move; not dropping them';
    END IF;
END
$guard$;
-- reason: 015 created these tables; the guard above proved them empty
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS quarantine.lots;
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS quarantine.transactions;
DO $schema$
BEGIN
    -- the schema goes only if 015's tables were all it held
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = to_regnamespace('quarantine')) THEN
        DROP SCHEMA IF EXISTS quarantine;
    END IF;
END
$schema$;

-- 015: referential integrity for lots.security_id and transactions.security_id.
--
-- Orphans (a security_id with no row in securities) are never deleted: each table's orphans
-- move, in ONE statement (one transaction), into quarantine.<table> as a jsonb copy of the
-- whole row, with the reason and the run that moved them. jsonb keeps every column, including
-- columns later migrations add (014), and down.sql restores the rows exactly with
-- jsonb_populate_record. Then the FKs: NOT VALID (a brief lock; new rows are checked from
-- here on), and VALIDATE (scans without blocking writes). An orphan written by the app
-- between the quarantine and the NOT VALID constraint makes VALIDATE fail: the step fails
-- and down.sql reverts, leaving that row where the app put it.
--
-- The run id comes from the session setting runbook.flow_run_id when the runner sets it,
-- otherwise from the ledger row of this migration (written, status 'applying', before any
-- section runs).
SET lock_timeout = '2s';
SET statement_timeout = '60s';

-- runbook:section quarantine_tables
CREATE SCHEMA IF NOT EXISTS quarantine;
CREATE TABLE IF NOT EXISTS quarantine.lots (
    id             uuid        PRIMARY KEY,
    row_data       jsonb       NOT NULL,
    reason         text        NOT NULL,
    migration_id   text        NOT NULL,
    flow_run_id    text,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS quarantine.transactions (
    id             uuid        PRIMARY KEY,
    row_data       jsonb       NOT NULL,
    reason         text        NOT NULL,
    migration_id   text        NOT NULL,
    flow_run_id    text,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

-- runbook:section quarantine_lots
WITH moved AS (
    DELETE FROM lots AS l
     WHERE l.security_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM securities AS s WHERE s.id = l.security_id)
    RETURNING l.*
)
INSERT INTO quarantine.lots (id, row_data, reason, migration_id, flow_run_id)
SELECT m.id, to_jsonb(m), 'security_id ' || m.security_id || ' not in securities',
       '015_add_fk_constraints',
       coalesce(nullif(current_setting('runbook.flow_run_id', true), ''),
                (SELECT flow_run_id FROM runbook.migrations WHERE id = '015_add_fk_constraints'))
  FROM moved AS m;

-- runbook:section quarantine_transactions
WITH moved AS (
    DELETE FROM transactions AS t
     WHERE t.security_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM securities AS s WHERE s.id = t.security_id)
    RETURNING t.*
)
INSERT INTO quarantine.transactions (id, row_data, reason, migration_id, flow_run_id)
SELECT m.id, to_jsonb(m), 'security_id ' || m.security_id || ' not in securities',
       '015_add_fk_constraints',
       coalesce(nullif(current_setting('runbook.flow_run_id', true), ''),
                (SELECT flow_run_id FROM runbook.migrations WHERE id = '015_add_fk_constraints'))
  FROM moved AS m;

-- runbook:section add_foreign_keys
-- NOT VALID: only a short SHARE ROW EXCLUSIVE lock, no scan; rows written from now on are checked.
ALTER TABLE lots ADD CONSTRAINT lots_security_id_fkey
    FOREIGN KEY (security_id) REFERENCES securities (id) NOT VALID;
ALTER TABLE transactions ADD CONSTRAINT transactions_security_id_fkey
    FOREIGN KEY (security_id) REFERENCES securities (id) NOT VALID;

-- runbook:section validate_lots_fk
-- VALIDATE scans under SHARE UPDATE EXCLUSIVE: reads and writes carry on. One table per
-- transaction so neither lock outlives its own scan.
ALTER TABLE lots VALIDATE CONSTRAINT lots_security_id_fkey;

-- runbook:section validate_transactions_fk
ALTER TABLE transactions VALIDATE CONSTRAINT transactions_security_id_fkey;

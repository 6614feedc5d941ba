-- The runbook's ledger in the target database (runbook.tasks.database.ledger).
CREATE SCHEMA IF NOT EXISTS runbook;
CREATE TABLE IF NOT EXISTS runbook.migrations (
    id text PRIMARY KEY,
    checksum text NOT NULL,
    status text NOT NULL CHECK (status IN ('applying', 'applied', 'reverting', 'reverted')),
    flow_run_id text,
    applied_at timestamptz,
    reverted_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    baseline jsonb          -- per-table checksums taken just before a fresh apply
);
CREATE TABLE IF NOT EXISTS runbook.migration_sections (
    migration_id text NOT NULL,
    section text NOT NULL,
    done_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, section)
);
CREATE TABLE IF NOT EXISTS runbook.checkpoints (
    migration_id text NOT NULL,
    table_name text NOT NULL,
    last_key jsonb,
    rows_done bigint NOT NULL DEFAULT 0,
    finished boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, table_name)
);
CREATE TABLE IF NOT EXISTS runbook.backups (
    id bigserial PRIMARY KEY,
    path text NOT NULL,
    sha256 text NOT NULL,
    bytes bigint NOT NULL,
    flow_run_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS runbook.rehearsals (
    migration_id text NOT NULL,
    checksum text NOT NULL,
    flow_run_id text,
    passed_at timestamptz NOT NULL DEFAULT now(),
    detail jsonb
);
CREATE TABLE IF NOT EXISTS runbook.run_steps (
    id bigserial PRIMARY KEY,
    flow_run_id text NOT NULL,
    flow_name text NOT NULL,
    step text NOT NULL,
    status text NOT NULL CHECK (status IN ('applied', 'reverted')),
    data jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL DEFAULT now()
);
-- One run at a time changes this database: the holder renews its lease while it lives.
CREATE TABLE IF NOT EXISTS runbook.lease (
    id int PRIMARY KEY CHECK (id = 1),
    owner text NOT NULL,              -- the flow run id
    flow_name text NOT NULL,
    host text NOT NULL,
    pid int NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
-- Every run that changed this database, and how it ended: only a run that never ended
-- (killed) may have its steps adopted by a later run.
CREATE TABLE IF NOT EXISTS runbook.runs (
    flow_run_id text PRIMARY KEY,
    flow_name text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    outcome text CHECK (outcome IN ('completed', 'failed', 'cancelled', 'crashed'))
);
-- a generated migration's plan (its sections), fixed when a fresh apply starts: a resumed
-- apply runs the plan it began with, whatever the catalog says by then
ALTER TABLE runbook.migrations ADD COLUMN IF NOT EXISTS plan jsonb;
-- every object an apply created or changed (with the prior definition of what it changed):
-- the revert undoes exactly these, in reverse order, and forgets each as it goes
CREATE TABLE IF NOT EXISTS runbook.migration_objects (
    id bigserial PRIMARY KEY,
    migration_id text NOT NULL,
    kind text NOT NULL,          -- column | constraint | index | trigger | function | view
    name text NOT NULL,          -- identity (e.g. "lots.quantity_open", "reduce_lot(uuid,numeric,date)")
    action text NOT NULL CHECK (action IN ('created', 'replaced')),
    prior text,                  -- the definition before the change (replaced objects)
    detail jsonb NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now()
);

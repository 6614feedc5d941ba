"""Migrations on the real DawsOS structure (the demo database) and on shapes the real schema
may take: generated from the catalog, reverted by exactly what the ledger recorded, with user
triggers kept out of the backfill, links followed into quarantine, and every proof beside a
concurrent writer."""
from __future__ import annotations

import asyncio
import sys
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from runbook.cli.app import app
from runbook.demo.workspace import TEMPLATE
from runbook.errors import RunbookError
from runbook.expectations.week0.day1_2 import parity_gates
from runbook.pg import connect
from runbook.plan import MIGRATION_014, MIGRATION_015, MIGRATION_016
from runbook.target import ColumnRename, ForeignKey
from runbook.tasks.database import (
    backfill_triggers,
    checksums,
    expand,
    fk_indexes,
    fk_quarantine,
    ledger,
    migrate,
    migration_files,
)
from runbook.tasks.database.catalog import column_checksums
from runbook.tasks.database.generated import GeneratedMigration

CATALOG = {
    "columns": """SELECT c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                         pg_get_expr(d.adbin, d.adrelid),
                         row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)
                    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                   WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """SELECT conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid), convalidated
                        FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
    "indexes": """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisvalid FROM pg_index
                   WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)""",
    "triggers": "SELECT tgname, pg_get_triggerdef(oid), tgenabled FROM pg_trigger WHERE NOT tgisinternal",
    "functions": """SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proacl::text FROM pg_proc p
                     WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'""",
    "relations": """SELECT relname, relkind::text, relacl::text, relrowsecurity FROM pg_class
                     WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'p', 'm')""",
    "policies": "SELECT polname, pg_get_expr(polqual, polrelid) FROM pg_policy",
    "schemas": "SELECT nspname, '' FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' AND nspname <> 'runbook'",
}


def catalog(url: str) -> dict:
    with connect(url) as conn:
        return {k: sorted(tuple(map(str, r)) for r in conn.execute(v).fetchall()) for k, v in CATALOG.items()}


def rows_by_key(url: str) -> dict[str, dict[str, str]]:
    """Every row of every public table, by primary key: the md5 of its whole image."""
    out = {}
    with connect(url) as conn:
        for (table,) in conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                                     " AND relkind = 'r' ORDER BY 1").fetchall():
            key = migrate.primary_key(conn, table)
            q = sql.SQL("SELECT jsonb_build_array({})::text, md5(to_jsonb(t)::text) FROM {} t").format(
                sql.SQL(", ").join(sql.Identifier(k) for k in key), sql.Identifier(table))
            out[table] = dict(conn.execute(q).fetchall())
    return out


def q1(url: str, query: str, params=()):
    with connect(url) as conn:
        return conn.execute(query, params).fetchone()


# -- 014: generated from the catalog ------------------------------------------------------------

def test_014_plan_fits_the_real_catalog_and_the_cli_changes_nothing(demo_db):
    before = catalog(demo_db)
    result = CliRunner().invoke(app, ["migrate", "plan", "014", "--database-url", demo_db])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "prices.asof_date exists and prices.price_date does not: already renamed" in out
    assert "portfolio_metrics.asof_date exists" in out
    assert 'ALTER TABLE "lots" ADD COLUMN "quantity_open" numeric;' in out       # typed as qty_open
    assert "numeric(20" not in out and 'ADD COLUMN "asof_date"' not in out
    assert "CREATE OR REPLACE FUNCTION public.reduce_lot(p_lot_id uuid, p_qty_to_reduce numeric" in out
    assert 'DROP COLUMN IF EXISTS "quantity_open"' in out and "DROP COLUMN IF EXISTS \"asof_date\"" not in out
    assert catalog(demo_db) == before
    status = CliRunner().invoke(app, ["migrate", "status", "--database-url", demo_db])
    assert status.exit_code == 0 and "014_standardize_quantity_fields: not applied" in status.output
    outputs = {}
    for command, code in (("apply", 0), ("verify", 0), ("revert", 0), ("verify", 1)):
        result = CliRunner().invoke(app, ["migrate", command, "016", "--database-url", demo_db])
        assert result.exit_code == code, (command, result.output)
        outputs.setdefault(command, result.output)
    assert "verify:016_add_indexes" in outputs["apply"]
    assert "tables differing from before the apply: 0" in outputs["revert"]
    assert catalog(demo_db) == before


def test_existing_new_column_keeps_its_data_through_apply_and_revert(demo_db):
    """lots.quantity_open already exists (someone added it by hand, filled): 014 checks it for
    parity and keeps it in sync, never re-adds it, and the revert leaves it and its data."""
    with connect(demo_db) as conn:
        conn.execute("ALTER TABLE lots ADD COLUMN quantity_open numeric")
        conn.execute("UPDATE lots SET quantity_open = qty_open")
    m = migration_files.load("014")
    plan = m.plan(demo_db)
    assert any("lots.quantity_open already exists beside qty_open" in n for n in plan.notes)
    before_cols = column_checksums(demo_db)["lots"]
    migrate.apply(demo_db, m)
    assert migrate.verify(demo_db, m).passed
    gates = {g.name: g for g in parity_gates(demo_db, {})}
    assert gates["parity:lots"].passed and gates["backfill-side-effects:" + MIGRATION_014].passed
    assert [r["name"] for r in ledger.recorded_objects(demo_db, m.id) if r["kind"] == "column"] == [
        "lots.quantity_original"]
    migrate.revert(demo_db, m)
    after_cols = column_checksums(demo_db)["lots"]
    assert after_cols == before_cols                       # quantity_open and its values kept
    assert q1(demo_db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'lots'"
                       " AND column_name = 'quantity_original'")[0] == 0


def test_database_code_is_carried_and_restored_exactly(demo_db):
    """reduce_lot and a granted view using qty_open are rewritten from their own definitions:
    same signature, one overload, grants kept; the revert restores their text exactly."""
    with connect(demo_db) as conn:
        conn.execute("CREATE VIEW v_open_lots AS SELECT id, portfolio_id, qty_open FROM lots WHERE qty_open > 0")
        conn.execute("GRANT SELECT ON v_open_lots TO PUBLIC")
    before = catalog(demo_db)
    m = migration_files.load("014")
    migrate.apply(demo_db, m)
    with connect(demo_db) as conn:
        viewdef = conn.execute("SELECT pg_get_viewdef('v_open_lots'::regclass)").fetchone()[0]
        assert "quantity_open AS qty_open" in viewdef and "lots.qty_open" not in viewdef
        assert conn.execute("SELECT relacl::text FROM pg_class WHERE relname = 'v_open_lots'").fetchone()[0] \
            == {r[0]: r[2] for r in before["relations"]}["v_open_lots"]
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE proname = 'reduce_lot'").fetchone()[0] == 1
        lot, open_qty = conn.execute("SELECT id, qty_open FROM lots WHERE qty_open > 1 LIMIT 1").fetchone()
        with pytest.raises(psycopg.errors.RaiseException, match="only"):
            conn.execute("SELECT reduce_lot(%s, %s, '2025-11-03')", (lot, open_qty + 1))
        conn.rollback()
        assert conn.execute("SELECT reduce_lot(%s, %s, '2025-11-03')", (lot, open_qty)).fetchone()[0] == open_qty
        assert conn.execute("SELECT qty_open, quantity_open, is_open, closed_date::text FROM lots WHERE id = %s",
                            (lot,)).fetchone() == (0, 0, False, "2025-11-03")
        conn.rollback()
    migrate.revert(demo_db, m)
    assert catalog(demo_db) == before


def test_backfill_keeps_triggers_out_and_refuses_for_a_role_that_cannot(demo_db):
    """The updated_at trigger of lots would re-stamp every lot: kept out (replica), every other
    column unchanged; a role that can neither set replica nor alter lots is refused, naming
    the trigger and the column, unless it accepts the trigger by name."""
    before = column_checksums(demo_db)["lots"]
    m = migration_files.load("014")
    report = migrate.apply(demo_db, m)
    assert report.triggers_kept_out["lots"].startswith("session_replication_role = replica (trg_lots_updated_at")
    after = column_checksums(demo_db)["lots"]
    assert {c: after[c] for c in before} == before          # updated_at (and all else) untouched
    assert migrate.backfill_side_effects(demo_db, m.id)["lots"]["rows"] == 0
    role = f"rb_{uuid.uuid4().hex[:8]}"
    with connect(demo_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT, UPDATE ON lots TO {}").format(sql.Identifier(role)))
    try:
        parts = demo_db.split("://", 1)[1].split("@", 1)[1]
        with psycopg.connect(f"postgresql://{role}@{parts}") as conn:
            with pytest.raises(RunbookError, match=r"trg_lots_updated_at.*changing updated_at"):
                backfill_triggers.plan(conn, "lots", ["quantity_open"])
            assert backfill_triggers.plan(conn, "lots", ["quantity_open"], ("trg_lots_updated_at",)).how == "accepted"
    finally:
        with connect(demo_db, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_the_backfill_fingerprint_sees_every_other_column_and_only_those(demo_db):
    """What the backfill compares before and after each row's update: a change to any other
    column (a NULL included) changes it; the backfilled columns do not."""
    with connect(demo_db) as conn:
        others = [c for (c,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'lots'::regclass AND attnum > 0"
            " AND NOT attisdropped") if c not in ("qty_open", "qty_original")]
        query = sql.SQL("SELECT {} FROM lots AS r WHERE id = %s").format(migrate.row_fingerprint("r", others))
        lot = conn.execute("SELECT id FROM lots WHERE closed_date IS NULL LIMIT 1").fetchone()[0]
        conn.execute("SET LOCAL session_replication_role = replica")   # as the backfill: no updated_at stamp
        first = conn.execute(query, (lot,)).fetchone()[0]
        conn.execute("UPDATE lots SET qty_open = qty_open + 1, qty_original = qty_original + 1 WHERE id = %s", (lot,))
        assert conn.execute(query, (lot,)).fetchone()[0] == first       # the backfilled columns: not seen
        conn.execute("UPDATE lots SET closed_date = '2025-01-02' WHERE id = %s", (lot,))
        dated = conn.execute(query, (lot,)).fetchone()[0]
        conn.execute("UPDATE lots SET cost_basis = cost_basis + 0.01 WHERE id = %s", (lot,))
        assert len({first, dated, conn.execute(query, (lot,)).fetchone()[0]}) == 3   # NULL -> value, a value
        conn.rollback()


def test_upsert_keeps_its_unique_index(demo_db, fresh_db):
    """The harvester's upsert runs on the real structure after 014; and where the date rename
    does touch a unique key (a legacy prices table), the key is mirrored on the new name, so an
    upsert on the new name finds its conflict target."""
    migrate.apply(demo_db, migration_files.load("014"))
    sys.path.insert(0, str(TEMPLATE / "backend"))
    try:
        from app.agents.data_harvester import upsert_price
    finally:
        sys.path.remove(str(TEMPLATE / "backend"))

    async def twice() -> list[int]:
        import asyncpg

        conn = await asyncpg.connect(demo_db)
        try:
            return [await upsert_price(conn, "SEC0001", "2025-11-03", c, 100) for c in (10.5, 11.25)]
        finally:
            await conn.close()
    assert asyncio.run(twice()) == [1, 1]
    assert q1(demo_db, "SELECT close FROM prices p JOIN securities s ON s.id = p.security_id"
                       " WHERE s.symbol = 'SEC0001' AND p.asof_date = '2025-11-03'")[0] == 11.25

    with connect(fresh_db) as conn:
        conn.execute("CREATE TABLE px (security_id uuid, price_date date, close numeric(20,8) NOT NULL,"
                     " PRIMARY KEY (security_id, price_date))")
        conn.execute("INSERT INTO px SELECT gen_random_uuid(), date '2025-10-01' + i, i FROM generate_series(1, 50) i")
    m = GeneratedMigration("914_px", (ColumnRename("px", "price_date", "asof_date"),), expand.build_plan,
                           ("expand.py",))
    migrate.apply(fresh_db, m)
    with connect(fresh_db) as conn:
        sid, day = conn.execute("SELECT security_id, asof_date FROM px LIMIT 1").fetchone()
        conn.execute("INSERT INTO px (security_id, asof_date, close) VALUES (%s, %s, 99)"
                     " ON CONFLICT (security_id, asof_date) DO UPDATE SET close = EXCLUDED.close", (sid, day))
        assert conn.execute("SELECT close, price_date = asof_date FROM px WHERE security_id = %s",
                            (sid,)).fetchone() == (99, True)
    migrate.revert(fresh_db, m)
    assert q1(fresh_db, "SELECT count(*) FROM pg_indexes WHERE tablename = 'px'")[0] == 1


# -- 015: the real links --------------------------------------------------------------------------

LINKED = """
CREATE TABLE secs (id uuid PRIMARY KEY);
CREATE TABLE lots2 (id uuid PRIMARY KEY, sec uuid NOT NULL, seq bigint GENERATED ALWAYS AS IDENTITY,
                    x numeric NOT NULL, dbl numeric GENERATED ALWAYS AS (x * 2) STORED,
                    stamped text DEFAULT 'default');
CREATE TABLE sells (id uuid PRIMARY KEY, lot_id uuid REFERENCES lots2 (id) ON DELETE SET NULL);
CREATE TABLE notes (id uuid PRIMARY KEY, lot_id uuid REFERENCES lots2 (id) ON DELETE CASCADE);
CREATE TABLE flows (id uuid PRIMARY KEY, sell_id uuid REFERENCES sells (id));
CREATE FUNCTION app_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.stamped := 'app trigger fired'; RETURN NEW; END $$;
CREATE TRIGGER app_stamp BEFORE INSERT ON lots2 FOR EACH ROW EXECUTE FUNCTION app_stamp();
INSERT INTO secs SELECT md5('s' || i)::uuid FROM generate_series(1, 5) i;
INSERT INTO lots2 (id, sec, x) SELECT md5('l' || i)::uuid,
       CASE WHEN i % 10 = 0 THEN gen_random_uuid() ELSE md5('s' || (i % 5 + 1))::uuid END, i
  FROM generate_series(1, 40) i;
UPDATE lots2 SET stamped = 'as the app left it';
INSERT INTO sells SELECT md5('x' || i)::uuid, md5('l' || i)::uuid FROM generate_series(1, 40) i;
INSERT INTO notes SELECT md5('n' || i)::uuid, md5('l' || i)::uuid FROM generate_series(2, 40, 2) i;
INSERT INTO flows SELECT md5('f' || i)::uuid, md5('x' || i)::uuid FROM generate_series(5, 40, 5) i;
"""


def test_015_moves_referencing_rows_and_restores_them_exactly(fresh_db):
    with connect(fresh_db) as conn:
        conn.execute(LINKED)
    before = checksums.table_checksums(fresh_db)
    m = GeneratedMigration("915_links", (ForeignKey("lots2", "sec", "secs"),), fk_quarantine.build_plan,
                           ("fk_quarantine.py",))
    migrate.apply(fresh_db, m)
    assert migrate.verify(fresh_db, m).passed
    with connect(fresh_db) as conn:
        moved = dict(conn.execute("SELECT 'lots2', count(*) FROM quarantine.lots2 UNION ALL SELECT 'sells', "
                                  "count(*) FROM quarantine.sells UNION ALL SELECT 'notes', count(*) FROM "
                                  "quarantine.notes UNION ALL SELECT 'flows', count(*) FROM quarantine.flows").fetchall())
        assert moved == {"lots2": 4, "sells": 4, "notes": 4, "flows": 4}      # orphans and all that refer to them
        assert conn.execute("SELECT count(*) FROM sells WHERE lot_id IS NULL").fetchone()[0] == 0   # no link cleared
    migrate.revert(fresh_db, m)
    assert checksums.diff(before, checksums.table_checksums(fresh_db)) == []   # identity, generated, no trigger
    assert q1(fresh_db, "SELECT to_regnamespace('quarantine')")[0] is None
    with connect(fresh_db) as conn:                 # a referencing table without a key: refused, nothing changed
        conn.execute("CREATE TABLE loose (lot_id uuid REFERENCES lots2 (id))")
    with pytest.raises(RunbookError, match=r"loose has no primary key.*loose_lot_id_fkey"):
        migrate.apply(fresh_db, m)
    assert checksums.diff(before, checksums.table_checksums(fresh_db, list(before))) == []


# -- item 7: real schemas and servers ------------------------------------------------------------

def test_partitions_walked_invalid_index_rebuilt_user_index_kept_timeouts(fresh_db):
    with connect(fresh_db) as conn:
        conn.execute("CREATE TABLE m (id bigint, d date, old_col numeric(12,4) NOT NULL, PRIMARY KEY (id, d))"
                     " PARTITION BY RANGE (d)")
        conn.execute("CREATE TABLE m1 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2025-07-01')")
        conn.execute("CREATE TABLE m2 PARTITION OF m FOR VALUES FROM ('2025-07-01') TO ('2026-01-01')")
        conn.execute("INSERT INTO m SELECT i, date '2025-01-01' + (i % 360), i / 7.0 FROM generate_series(1, 900) i")
    m = GeneratedMigration("913_parts", (ColumnRename("m", "old_col", "new_col"),), expand.build_plan, ("expand.py",))
    report = migrate.apply(fresh_db, m, migrate.MigrationOptions(batch_size=100))
    assert set(report.rows_backfilled) == {"m1", "m2"} and sum(report.rows_backfilled.values()) == 900
    assert q1(fresh_db, "SELECT count(*) FROM m WHERE new_col IS DISTINCT FROM old_col")[0] == 0
    migrate.revert(fresh_db, m)
    with connect(fresh_db) as conn:   # TimescaleDB is not installable here: its catalog table, as it names hypertables
        conn.execute("CREATE SCHEMA _timescaledb_catalog; CREATE TABLE _timescaledb_catalog.hypertable"
                     " (schema_name name, table_name name); INSERT INTO _timescaledb_catalog.hypertable VALUES ('public', 'm')")
        with pytest.raises(RunbookError, match="m is a TimescaleDB hypertable"):
            migrate.leaf_relations(conn, "m")
        conn.rollback()

    with connect(fresh_db, autocommit=True) as conn:      # an interrupted CONCURRENTLY leaves INVALID
        conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (1), (2)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY idx_t_x ON t (x)")
        conn.execute("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t WHERE x = 1)")
    from runbook.tasks.database.migration_files import Section
    one = type("M", (), {"id": "912_idx"})()
    migrate._run_section(fresh_db, one, Section("ix", "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_t_x ON t (x);",
                                                transactional=False), migrate.MigrationOptions(), mark=False)
    assert q1(fresh_db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_t_x'::regclass")[0] is True

    with connect(fresh_db) as conn:                       # a user's own index with the generated name
        conn.execute("CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE c (id int PRIMARY KEY, p_id int"
                     " REFERENCES p (id), other int); CREATE INDEX idx_c_p_id ON c (other)")
    built = fk_indexes.create_missing(fresh_db)
    assert built == ["idx_c_p_id_2"]
    fk_indexes.drop(fresh_db, built)
    assert q1(fresh_db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_c_p_id'")[0] == 1

    slow = Section("slow", "SELECT pg_sleep(2);")
    with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
        migrate._run_section(fresh_db, one, slow, migrate.MigrationOptions(statement_timeout_ms=200), mark=False)


def test_an_index_leaving_out_nulls_is_built_before_the_backfill_which_fills_it(fresh_db):
    """A mirrored index whose predicate leaves out NULLs is empty before the backfill, so it is
    built then and no unpaced build writes it whole afterwards; the backfill's batches and the
    application's writes fill it, and amcheck finds in it every row that belongs there. Indexes
    without such a predicate are built after the backfill."""
    with connect(fresh_db) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        conn.execute("CREATE TABLE b (id bigint PRIMARY KEY, qty numeric, is_open boolean NOT NULL)")
        conn.execute("CREATE INDEX b_qty_open ON b (qty) WHERE qty > 0 AND is_open")
        conn.execute("CREATE INDEX b_known ON b (id) WHERE qty IS NOT NULL")
        conn.execute("CREATE INDEX b_qty ON b (qty)")
        conn.execute("CREATE INDEX b_qty_or ON b (qty) WHERE qty > 0 OR is_open")
        conn.execute("INSERT INTO b SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE i % 50 - 10 END, i % 3 > 0"
                     " FROM generate_series(1, 20000) i")
    m = GeneratedMigration("911_qty", (ColumnRename("b", "qty", "quantity"),), expand.build_plan, ("expand.py",))
    sections = {s.name: s for s in expand.build_plan(fresh_db, 911, m.spec).sections}
    assert list(sections).index("indexes_before_backfill") < list(sections).index("backfill_b")
    assert sorted(ix.split(" ON ")[0].split()[-1] for ix in sections["indexes_before_backfill"].sql.splitlines()) \
        == ['"b_known_new"', '"b_quantity_open"']
    assert sorted(ix.split(" ON ")[0].split()[-1] for ix in sections["indexes"].sql.splitlines()) \
        == ['"b_quantity"', '"b_quantity_or"']

    sizes: dict[str, int] = {}
    backfill = migrate._backfill

    def before_backfill(url, *a, **kw):   # the early indexes as the backfill finds them
        sizes.update(q1_all(url, "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname IN"
                                 " ('b_quantity_open', 'b_known_new', 'b_qty_open')"))
        return backfill(url, *a, **kw)
    migrate._backfill = before_backfill
    try:
        migrate.apply(fresh_db, m, migrate.MigrationOptions(batch_size=500))
    finally:
        migrate._backfill = backfill
    with connect(fresh_db, autocommit=True) as app:   # the old application, after the expand
        app.execute("UPDATE b SET qty = 41 WHERE id = 7")
        app.execute("INSERT INTO b VALUES (50000, 12, true)")
    # empty when the backfill began (one metapage), full-sized like the original's after it
    assert sizes["b_quantity_open"] == sizes["b_known_new"] == 8192 < sizes["b_qty_open"]
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT pg_relation_size('b_quantity_open') >= pg_relation_size('b_qty_open') / 2"
                            ).fetchone()[0]
        for (name,) in conn.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'b'::regclass"
                                    " AND indisvalid").fetchall():
            conn.execute("SELECT bt_index_check(%s::regclass, true)", (name,))   # raises on a row missing
        assert conn.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'b'::regclass AND indisvalid"
                            ).fetchone()[0] == 9
        conn.execute("SET enable_seqscan = off")
        assert conn.execute("SELECT count(*) FROM b WHERE quantity > 0 AND is_open").fetchone()[0] == \
            conn.execute("SELECT count(*) FROM b WHERE qty > 0 AND is_open").fetchone()[0] > 0
    migrate.revert(fresh_db, m)
    assert q1(fresh_db, "SELECT count(*) FROM pg_indexes WHERE tablename = 'b'")[0] == 5


# a row version whose commit status no reader has recorded yet: the next scan sets its hint
# bits and writes the page again (xmin neither committed nor invalid, or a set xmax neither)
UNHINTED_ROWS = """
    SELECT count(*) FROM generate_series(0, pg_relation_size('b') / 8192 - 1) AS blk,
         LATERAL heap_page_items(get_raw_page('b', blk::int)) AS t
    WHERE t.lp_flags = 1 AND ((t.t_infomask & x'0300'::int) = 0
       OR (t.t_xmax <> '0' AND (t.t_infomask & x'0C80'::int) = 0))"""


def test_the_backfill_leaves_no_page_for_the_next_scan_to_write_again(fresh_db):
    """Each batch reads its committed pages while they are still dirty, so the hint bits of its
    old and new row versions are set before the pages are written: the first full scan after
    the backfill (VALIDATE, the parity gate) finds nothing to set and writes no page."""
    with connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        conn.execute("CREATE TABLE b (id bigint PRIMARY KEY, qty numeric, note text)"
                     " WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO b SELECT i, i % 50, repeat('x', 40) FROM generate_series(1, 20000) i")
        conn.execute("VACUUM (FREEZE) b")
    m = GeneratedMigration("912_qty", (ColumnRename("b", "qty", "quantity"),), expand.build_plan, ("expand.py",))
    found: dict[str, int] = {}
    backfill = migrate._backfill

    def after_backfill(url, *a, **kw):   # the heap as the backfill leaves it, before any later scan
        backfill(url, *a, **kw)
        found["unhinted"] = q1(url, UNHINTED_ROWS)[0]
        found["versions"] = q1(url, "SELECT count(*) FROM b WHERE quantity IS NOT NULL")[0]
    migrate._backfill = after_backfill
    try:
        migrate.apply(fresh_db, m, migrate.MigrationOptions(batch_size=500))
    finally:
        migrate._backfill = backfill
    assert found == {"unhinted": 0, "versions": 20000}
    assert q1(fresh_db, "SELECT count(*) FROM b WHERE quantity IS DISTINCT FROM qty")[0] == 0


def test_block_runs_joins_consecutive_blocks():
    assert migrate.block_runs([7, 3, 4, 9, 8, 5, 20]) == [(3, 6), (7, 10), (20, 21)]
    assert migrate.block_runs([4, 2, 3, 3, 5]) == [(2, 6)]     # a batch's own blocks and its new ones
    assert migrate.block_runs([]) == []


def q1_all(url: str, query: str, params=()):
    with connect(url) as conn:
        return conn.execute(query, params).fetchall()


# -- item 9: 014, 015, 016 beside a writer --------------------------------------------------------

class Writer(threading.Thread):
    """The old application: books lots (old column names) and reduces others through
    reduce_lot, recording every row it wrote."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.touched, self.errors = url, threading.Event(), {"lots": set(), "transactions": set()}, []

    def run(self) -> None:
        with connect(self.url, autocommit=True) as conn:
            portfolio, security = conn.execute(
                "SELECT l.portfolio_id, l.security_id FROM lots l JOIN securities s ON s.id = l.security_id"
                " LIMIT 1").fetchone()
            victims = [r[0] for r in conn.execute(
                "SELECT l.id FROM lots l JOIN securities s ON s.id = l.security_id WHERE l.qty_open > 10"
                " ORDER BY l.id LIMIT 40").fetchall()]
            i = 0
            while not self.stop.is_set():
                try:
                    lot = conn.execute(
                        "INSERT INTO lots (portfolio_id, security_id, symbol, acquisition_date, quantity, cost_basis,"
                        " cost_basis_per_share, qty_original, qty_open) VALUES (%s, %s, 'W', '2025-11-03', 3.123456789,"
                        " 30, 9.6, 3.123456789, 3.123456789) RETURNING id", (portfolio, security)).fetchone()[0]
                    self.touched["lots"].add(str(lot))
                    victim = victims[i % len(victims)]
                    conn.execute("SELECT reduce_lot(%s, 0.0000001, '2025-11-03')", (victim,))
                    self.touched["lots"].add(str(victim))
                except psycopg.Error as exc:       # a lock timeout of the app is the app's business
                    self.errors.append(type(exc).__name__)
                i += 1
                time.sleep(0.005)


def test_014_015_016_apply_verify_revert_beside_a_writer(demo_db, capsys):
    timings = {}
    for mid in (MIGRATION_014, MIGRATION_015, MIGRATION_016):
        m = migration_files.load(mid)
        before_catalog, before_rows = catalog(demo_db), rows_by_key(demo_db)
        writer = Writer(demo_db)
        writer.start()
        try:
            started = time.perf_counter()
            migrate.apply(demo_db, m, migrate.MigrationOptions(batch_size=200, lock_timeout_ms=500))
            timings[f"{mid}:apply"] = time.perf_counter() - started
            assert migrate.verify(demo_db, m).passed, mid
            started = time.perf_counter()
            migrate.revert(demo_db, m, migrate.MigrationOptions(lock_timeout_ms=500))
            timings[f"{mid}:revert"] = time.perf_counter() - started
        finally:
            writer.stop.set()
            writer.join(30)
        assert writer.touched["lots"], "the writer wrote nothing"
        assert catalog(demo_db) == before_catalog, mid
        after = rows_by_key(demo_db)
        for table, rows in before_rows.items():
            mine = {f'["{k}"]' for k in writer.touched.get(table, ())}
            changed = {k for k in set(rows) | set(after[table]) if rows.get(k) != after[table].get(k)} - mine
            assert changed == set(), (mid, table, sorted(changed)[:5])
        # the writer's own rows: as it wrote them (old and new names agreed throughout)
        with connect(demo_db) as conn:
            assert conn.execute("SELECT count(*) FROM lots WHERE id = ANY(%s::uuid[]) AND qty_open > qty_original",
                                (list(writer.touched["lots"]),)).fetchone()[0] == 0
    with capsys.disabled():
        print("\n" + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))

"""The baseline a restore proof compares with, taken just before a change, kept in the ledger.

Production is live: the application writes while a migration is applied and reverted, so
"the database equals the backup" can never hold. What can hold, and what this records:

* **schema** — a catalog snapshot (`catalog_snapshot`): for the tables the change names, their
  columns (type, default, NOT NULL, collation), constraints (definition, validated), indexes
  (definition, valid), triggers (definition, enabled), row security, policies, owner and
  privileges; and in every application schema (all but `pg_*`, `information_schema` and the
  runbook's own), the relations (kind, privileges), functions (full definition, privileges),
  views (definition) and the schemas themselves. After the change, `mark_touched` records
  which objects it changed: a revert of an earlier change, while this one stays applied, is
  not held to those (`changed_later`).
* **data** — one hash per row of each named table (`runbook.restore_rows`, in the database:
  a million rows cost one INSERT ... SELECT), keyed by primary key, over the columns the table
  had. After a revert, `row_differences` lists every key whose row is not what it was:
  changed, deleted or inserted meanwhile — the caller tells the application's rows from the
  rest.

Tables are named schema-qualified ("public.lots"); an empty set of tables, or a table that
does not exist, is refused here, so a proof can never be empty and pass.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pglast
from pglast import visitors
from psycopg import sql

from runbook.errors import RunbookError
from runbook.pg import connect

DDL = """
CREATE SCHEMA IF NOT EXISTS runbook;
CREATE TABLE IF NOT EXISTS runbook.restore_baselines (
    id uuid PRIMARY KEY,
    label text NOT NULL,                 -- what it is the baseline of, e.g. a migration id
    taken_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    tables jsonb NOT NULL,               -- {"public.lots": {"key": [...], "columns": [...]}}
    catalog jsonb NOT NULL,              -- object -> definition, before the change
    touched jsonb);                      -- object -> definition before (null: created by it)
CREATE TABLE IF NOT EXISTS runbook.restore_rows (
    baseline uuid NOT NULL REFERENCES runbook.restore_baselines ON DELETE CASCADE,
    tbl text NOT NULL,
    key text NOT NULL,
    hash text NOT NULL);
CREATE INDEX IF NOT EXISTS restore_rows_baseline ON runbook.restore_rows (baseline, tbl, key);
"""
# schemas that are not the application's: the system's and the runbook's own ledger
_NOT_APP = "n.nspname NOT LIKE 'pg\\_%%' AND n.nspname NOT IN ('information_schema', 'runbook')"


@dataclass
class Baseline:
    id: str
    label: str
    taken_at: str
    tables: dict[str, dict]
    catalog: dict[str, str]
    touched: dict[str, str | None] | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "label": self.label, "taken_at": self.taken_at, "tables": sorted(self.tables)}


@dataclass
class RowDifferences:
    changed: list[tuple[str, str]] = field(default_factory=list)     # (table, key)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    inserted: list[tuple[str, str]] = field(default_factory=list)
    rows_compared: int = 0


# -- which tables a change names ---------------------------------------------------------------

class _Relations(visitors.Visitor):
    def __init__(self) -> None:
        self.names: set[tuple[str | None, str]] = set()

    def visit_RangeVar(self, _parent, node) -> None:
        self.names.add((node.schemaname, node.relname))


def tables_named(url: str, sql_texts: list[str], extra: list[str] = ()) -> list[str]:
    """The existing tables `sql_texts` name (parsed with PostgreSQL's own parser), plus
    `extra`, schema-qualified; names of relations that do not exist yet are left out."""
    v = _Relations()
    for text in sql_texts:
        if text.strip():
            v(pglast.parse_sql(text))
    candidates = [f"{s}.{n}" if s else n for s, n in v.names] + list(extra)
    with connect(url) as conn:
        rows = conn.execute(
            """SELECT DISTINCT n.nspname || '.' || c.relname FROM unnest(%s::text[]) AS x(name)
                 JOIN pg_class c ON c.oid = to_regclass(x.name)
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' ORDER BY 1""",
            (candidates,)).fetchall()
    return [r[0] for r in rows]


# -- catalog ----------------------------------------------------------------------------------

_TABLE_OBJECTS = """
SELECT 'column ' || %(t)s || '.' || a.attname,
       concat_ws(' | ', format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'not null' END,
                 'default ' || pg_get_expr(d.adbin, d.adrelid), 'collate ' || co.collname,
                 CASE WHEN a.attidentity <> '' THEN 'identity ' || a.attidentity::text END,
                 CASE WHEN a.attgenerated <> '' THEN 'generated' END, 'acl ' || a.attacl::text)
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
 WHERE a.attrelid = %(t)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || %(t)s || '.' || conname,
       pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' | not validated' END
  FROM pg_constraint WHERE conrelid = %(t)s::regclass
UNION ALL
SELECT 'index ' || indexrelid::regclass::text,
       pg_get_indexdef(indexrelid) || CASE WHEN indisvalid THEN '' ELSE ' | INVALID' END
  FROM pg_index WHERE indrelid = %(t)s::regclass
UNION ALL
SELECT 'trigger ' || %(t)s || '.' || tgname, pg_get_triggerdef(oid) || ' | enabled ' || tgenabled::text
  FROM pg_trigger WHERE tgrelid = %(t)s::regclass AND NOT tgisinternal
UNION ALL
SELECT 'policy ' || %(t)s || '.' || polname,
       concat_ws(' | ', polcmd::text, polroles::text, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
  FROM pg_policy WHERE polrelid = %(t)s::regclass
UNION ALL
SELECT 'table ' || %(t)s, concat_ws(' | ', relkind::text, pg_get_userbyid(relowner), relacl::text,
       CASE WHEN relrowsecurity THEN 'row security' END, CASE WHEN relforcerowsecurity THEN 'forced' END)
  FROM pg_class WHERE oid = %(t)s::regclass
"""
_APP_OBJECTS = f"""
SELECT 'schema ' || n.nspname, concat_ws(' | ', pg_get_userbyid(n.nspowner), n.nspacl::text)
  FROM pg_namespace n WHERE {_NOT_APP}
UNION ALL
SELECT 'relation ' || n.nspname || '.' || c.relname, concat_ws(' | ', c.relkind::text, c.relacl::text)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_NOT_APP} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
UNION ALL
SELECT 'view ' || c.oid::regclass::text, pg_get_viewdef(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_NOT_APP} AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text, concat_ws(' | ', pg_get_functiondef(p.oid), p.proacl::text)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE {_NOT_APP} AND p.prokind IN ('f', 'p')
"""


def catalog_snapshot(url: str, tables: list[str]) -> dict[str, str]:
    """object -> definition, for `tables`' own objects and the application schemas' code."""
    out: dict[str, str] = {}
    with connect(url) as conn:
        for t in tables:
            out.update(dict(conn.execute(_TABLE_OBJECTS, {"t": t}).fetchall()))
        out.update(dict(conn.execute(_APP_OBJECTS).fetchall()))
    return out


def catalog_differences(expected: dict[str, str | None], now: dict[str, str],
                        scope_all: bool) -> list[dict]:
    """Objects whose definition now differs from `expected` (None: must not exist). With
    `scope_all`, objects that exist now and were not expected differ too."""
    keys = set(expected) | (set(now) if scope_all else set())
    out = []
    for k in sorted(keys):
        want, have = expected.get(k), now.get(k)
        if want != have:
            out.append({"object": k, "before": "absent" if want is None else want[:200],
                        "after": "absent" if have is None else have[:200]})
    return out


# -- rows -------------------------------------------------------------------------------------

def _table_shape(conn, table: str) -> dict:
    key = [r[0] for r in conn.execute(
        """SELECT a.attname FROM pg_index i JOIN pg_attribute a
                ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = %s::regclass AND i.indisprimary
            ORDER BY array_position(i.indkey::int2[], a.attnum)""", (table,)).fetchall()]
    cols = [r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum", (table,)).fetchall()]
    return {"key": key, "columns": cols}


def _ident(table: str) -> sql.Composable:
    schema, name = table.split(".", 1)
    return sql.Identifier(schema, name)


def _row_exprs(shape: dict, extra_columns: list[str]) -> tuple[sql.Composable, sql.Composable]:
    """(key expression, hash expression) over alias rb_t: the primary key as text (one column)
    or a JSON array (several); a table without one is keyed by its row hash. The hash covers
    the columns the table had at the baseline (columns added since are left out)."""
    row = sql.SQL("to_jsonb(rb_t)")
    if extra_columns:
        row = sql.SQL("(to_jsonb(rb_t) - {}::text[])").format(sql.Literal(extra_columns))
    hashed = sql.SQL("md5({}::text)").format(row)
    key = shape["key"]
    if not key:
        return hashed, hashed
    if len(key) == 1:
        return sql.SQL("rb_t.{}::text").format(sql.Identifier(key[0])), hashed
    return sql.SQL("jsonb_build_array({})::text").format(
        sql.SQL(", ").join(sql.SQL("rb_t.{}").format(sql.Identifier(k)) for k in key)), hashed


def take(url: str, label: str, tables: list[str]) -> Baseline:
    """Snapshot `tables` (schema-qualified, existing) and the application's code, and one
    hash per row, before a change. Older baselines with the same label are dropped."""
    if not tables:
        raise RunbookError(f"restore baseline for {label}: no table to take it of; a proof over "
                           "no table would prove nothing")
    catalog = catalog_snapshot(url, tables)
    bid = str(uuid.uuid4())
    with connect(url) as conn:
        conn.execute(DDL)
        shapes = {t: _table_shape(conn, t) for t in tables}
        conn.execute("DELETE FROM runbook.restore_baselines WHERE label = %s", (label,))
        taken_at = conn.execute(
            "INSERT INTO runbook.restore_baselines (id, label, tables, catalog) VALUES (%s, %s, %s, %s)"
            " RETURNING taken_at::text", (bid, label, json.dumps(shapes), json.dumps(catalog))).fetchone()[0]
        for t, shape in shapes.items():
            key, hashed = _row_exprs(shape, [])
            conn.execute(sql.SQL("INSERT INTO runbook.restore_rows (baseline, tbl, key, hash)"
                                 " SELECT {bid}, {t}, {key}, {hashed} FROM {rel} rb_t").format(
                bid=sql.Literal(bid), t=sql.Literal(t), key=key, hashed=hashed, rel=_ident(t)))
    return Baseline(bid, label, taken_at, shapes, catalog)


def load(url: str, label: str) -> Baseline | None:
    """The latest baseline taken for `label`, or None."""
    with connect(url) as conn:
        if not conn.execute("SELECT to_regclass('runbook.restore_baselines') IS NOT NULL").fetchone()[0]:
            return None
        row = conn.execute("SELECT id::text, label, taken_at::text, tables, catalog, touched"
                           " FROM runbook.restore_baselines WHERE label = %s"
                           " ORDER BY taken_at DESC LIMIT 1", (label,)).fetchone()
    return Baseline(*row) if row else None


def discard(url: str, baseline: Baseline) -> None:
    """After a revert proven restored: the baseline is spent (a later apply takes its own, and
    nothing may hold a later revert to this one)."""
    with connect(url) as conn:
        conn.execute("DELETE FROM runbook.restore_baselines WHERE id = %s", (baseline.id,))


def mark_touched(url: str, baseline: Baseline) -> dict[str, str | None]:
    """After the change: keep the before-image of the objects it created or changed."""
    now = catalog_snapshot(url, list(baseline.tables))
    touched = {k: baseline.catalog.get(k) for k in set(baseline.catalog) | set(now)
               if baseline.catalog.get(k) != now.get(k)}
    with connect(url) as conn:
        conn.execute("UPDATE runbook.restore_baselines SET touched = %s WHERE id = %s",
                     (json.dumps(touched), baseline.id))
    baseline.touched = touched
    return touched


def changed_later(url: str, baseline: Baseline) -> set[str]:
    """Objects changed by changes baselined after `baseline` that are still applied (their
    label is a migration the ledger has applied): a revert of `baseline`'s change leaves them."""
    with connect(url) as conn:
        if not conn.execute("SELECT to_regclass('runbook.migrations') IS NOT NULL").fetchone()[0]:
            return set()          # no migration ledger: nothing applied after it
        rows = conn.execute(
            """SELECT b.touched FROM runbook.restore_baselines b
                 JOIN runbook.migrations m ON m.id = b.label AND m.status IN ('applied', 'applying')
                WHERE b.taken_at > %s::timestamptz AND b.touched IS NOT NULL AND b.id <> %s""",
            (baseline.taken_at, baseline.id)).fetchall()
    return {k for (touched,) in rows for k in touched}


def row_differences(url: str, baseline: Baseline, sample: int = 10_000) -> RowDifferences:
    """Every key of the baseline's tables whose row differs from its baseline hash."""
    out = RowDifferences()
    with connect(url) as conn:
        for t, shape in baseline.tables.items():
            if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None:
                continue        # the table is gone: the catalog comparison names it
            now_cols = _table_shape(conn, t)["columns"]
            key, hashed = _row_exprs(shape, [c for c in now_cols if c not in shape["columns"]])
            rows = conn.execute(sql.SQL(
                "WITH b AS (SELECT key, hash FROM runbook.restore_rows WHERE baseline = {bid} AND tbl = {t}),"
                " n AS (SELECT {key} AS key, {hashed} AS hash FROM {rel} rb_t)"
                " SELECT CASE WHEN b.key IS NULL THEN 'inserted' WHEN n.key IS NULL THEN 'deleted'"
                " ELSE 'changed' END, coalesce(b.key, n.key), count(*) OVER ()"
                " FROM b FULL JOIN n ON n.key = b.key WHERE b.hash IS DISTINCT FROM n.hash LIMIT {lim}").format(
                bid=sql.Literal(baseline.id), t=sql.Literal(t), key=key, hashed=hashed, rel=_ident(t),
                lim=sql.Literal(sample))).fetchall()
            for kind, k, _total in rows:
                getattr(out, kind).append((t, k))
            out.rows_compared += conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(t))).fetchone()[0]
    return out

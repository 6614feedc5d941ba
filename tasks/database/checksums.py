"""Per-table data checksums: 'restored' means every table's checksum equals the one before.

Order-independent (sum of per-row md5 prefixes, plus the row count), so it needs one
sequential scan per table and no sort, and works on tables of any size. Rows are hashed as
jsonb (keys sorted by name), so a revert that re-adds a column — which PostgreSQL appends at
the end of the row — still proves the same data.

Whole-table checksums prove a restore only on a quiet database (the staging rehearsal's
scratch copy); on a live one, restore proofs compare key by key (restore_baseline.py).

The tables are the application's, in whichever schemas it uses (not only `public`): tables
outside `public` are named "schema.table". Finding no table at all is an error — a comparison
of nothing with nothing would pass and prove nothing.
"""
from __future__ import annotations

from psycopg import sql

from runbook.errors import RunbookError
from runbook.pg import connect

# the system's schemas and the runbook's own ledger are not the application's data
_APP_SCHEMAS = ("n.nspname NOT LIKE 'pg\\_%%' AND n.nspname NOT IN ('information_schema', 'runbook')")


def user_tables(conn, schema: str | None = None) -> list[str]:
    """The application's tables (every application schema, or only `schema`): "table" in
    `public`, "schema.table" elsewhere."""
    where = "n.nspname = %s" if schema else _APP_SCHEMAS
    rows = conn.execute(
        "SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE {where} AND c.relkind IN ('r', 'p') ORDER BY 1", (schema,) if schema else ()).fetchall()
    return [r[0] for r in rows]


def _ident(name: str) -> sql.Composable:
    schema, _, table = name.rpartition(".")
    return sql.Identifier(schema or "public", table)


def table_checksums(url: str, tables: list[str] | None = None, schema: str | None = None) -> dict[str, str]:
    """{table: "rows:sum"} for `tables` (names as user_tables gives them), or every table of
    the application's schemas (or of `schema`)."""
    out = {}
    with connect(url) as conn:
        names = list(tables) if tables is not None else user_tables(conn, schema)
        if not names:
            where = f"schema {schema!r}" if schema else "any application schema"
            raise RunbookError(f"no table in {where} of {conn.info.dbname}: a checksum comparison over no "
                               "table would prove nothing (does this role see the application's schemas?)")
        for table in names:
            q = sql.SQL("SELECT count(*), coalesce(sum(('x' || substr(md5(to_jsonb(t)::text), 1, 15))::bit(60)::bigint), 0)"
                        " FROM {} t").format(_ident(table))
            n, s = conn.execute(q).fetchone()
            out[table] = f"{n}:{s}"
    return out


def diff(before: dict[str, str], after: dict[str, str]) -> list[dict]:
    """Tables whose checksum differs; an empty `before` is itself a difference (nothing was
    proven)."""
    if not before:
        return [{"table": "*", "before": "no table checksummed", "after": f"{len(after)} tables"}]
    return [{"table": t, "before": before.get(t), "after": after.get(t)}
            for t in sorted(set(before) | set(after)) if before.get(t) != after.get(t)]

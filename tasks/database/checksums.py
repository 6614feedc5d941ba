"""Per-table data checksums: 'restored' means every table's checksum equals the one before.

Order-independent (sum of per-row md5 prefixes, plus the row count), so it needs one
sequential scan per table and no sort, and works on tables of any size. Rows are hashed as
jsonb (keys sorted by name), so a revert that re-adds a column — which PostgreSQL appends at
the end of the row — still proves the same data.
"""
from __future__ import annotations

from psycopg import sql

from runbook.pg import connect


def user_tables(conn, schema: str = "public") -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1", (schema,)).fetchall()
    return [r[0] for r in rows]


def table_checksums(url: str, tables: list[str] | None = None, schema: str = "public") -> dict[str, str]:
    out = {}
    with connect(url) as conn:
        for table in tables or user_tables(conn, schema):
            q = sql.SQL("SELECT count(*), coalesce(sum(('x' || substr(md5(to_jsonb(t)::text), 1, 15))::bit(60)::bigint), 0)"
                        " FROM {}.{} t").format(sql.Identifier(schema), sql.Identifier(table))
            n, s = conn.execute(q).fetchone()
            out[f"{schema}.{table}" if schema != "public" else table] = f"{n}:{s}"
    return out


def diff(before: dict[str, str], after: dict[str, str]) -> list[dict]:
    return [{"table": t, "before": before.get(t), "after": after.get(t)}
            for t in sorted(set(before) | set(after)) if before.get(t) != after.get(t)]

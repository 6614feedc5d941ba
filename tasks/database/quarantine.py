"""The quarantine schema migration 015 moves orphaned rows into (never deletes them), and the
checks around it: rows accounted for, nothing left behind after a revert, and a row that
breaks a foreign key for the "invalid insert is rejected" gate."""
from __future__ import annotations

import uuid

from psycopg import sql
from psycopg.rows import dict_row

from runbook.pg import connect
from runbook.tasks.database.migrate import primary_key

SCHEMA = "quarantine"


def tables(url: str) -> list[str]:
    """The tables of the quarantine schema (none when it does not exist)."""
    with connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = to_regnamespace(%s) AND c.relkind = 'r'"
            " ORDER BY 1", (SCHEMA,)).fetchall()]


def counts(url: str, tables: list[str], migration_id: str) -> dict[str, int]:
    """Rows each quarantine table holds for migration_id (0 when it does not exist)."""
    out = {}
    with connect(url) as conn:
        for table in tables:
            if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{table}",)).fetchone()[0] is None:
                out[table] = 0
                continue
            out[table] = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE migration_id = %s").format(
                sql.Identifier(SCHEMA, table)), (migration_id,)).fetchone()[0]
    return out






def row_breaking_fk(url: str, table: str, column: str) -> dict:
    """An existing row of `table` (primary key left to its default) with `column` pointing at
    nothing: every other constraint holds, so only the FK can refuse it."""
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        key = set(primary_key(conn, table))
        row = cur.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(table))).fetchone()
    if row is None:
        return {column: uuid.uuid4()}
    return {k: v for k, v in row.items() if k not in key} | {column: uuid.uuid4()}

"""The quarantine schema migration 015 moves orphaned rows into (never deletes them), and the
checks around it: rows accounted for, nothing left behind after a revert, and a row that
breaks a foreign key for the "invalid insert is rejected" gate."""
from __future__ import annotations

import uuid

from psycopg import sql
from psycopg.rows import dict_row

from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.database.migrate import primary_key

SCHEMA = "quarantine"


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


def accounted_gate(url: str, tables: list[str], migration_id: str, rows_before: dict[str, int] | None) -> GateResult:
    """Nothing lost: rows in the table + rows quarantined >= rows before (the app may add rows
    meanwhile; a move that deleted without keeping would show as fewer)."""
    moved = counts(url, tables, migration_id)
    sample, ok = [], True
    with connect(url) as conn:
        for table in tables:
            now = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            before = (rows_before or {}).get(table)
            held = before is None or now + moved[table] >= before
            ok &= held
            sample.append({"table": table, "rows_before": before, "rows_now": now,
                           "quarantined": moved[table], "accounted": held})
    return GateResult(name="quarantine:accounted", passed=ok,
                      expectation="every row is still in its table or in the quarantine schema",
                      observed=sum(moved.values()), expected="rows now + quarantined >= rows before",
                      sample=sample)


def emptied_gate(url: str, tables: list[str], migration_id: str) -> GateResult:
    """After a revert: no row of migration_id is left in quarantine (all back in their tables)."""
    left = {t: n for t, n in counts(url, tables, migration_id).items() if n}
    return GateResult(name=f"restored:{SCHEMA}", passed=not left,
                      expectation=f"every row {migration_id} quarantined is back in its table",
                      observed=sum(left.values()), expected=0,
                      sample=[{"table": t, "still_quarantined": n} for t, n in left.items()])


def row_breaking_fk(url: str, table: str, column: str) -> dict:
    """An existing row of `table` (primary key left to its default) with `column` pointing at
    nothing: every other constraint holds, so only the FK can refuse it."""
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        key = set(primary_key(conn, table))
        row = cur.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(table))).fetchone()
    if row is None:
        return {column: uuid.uuid4()}
    return {k: v for k, v in row.items() if k not in key} | {column: uuid.uuid4()}

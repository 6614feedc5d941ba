"""Gates around the quarantine schema migration 015 moves orphans into: every row accounted for,
nothing left behind after a revert."""
from __future__ import annotations

from psycopg import sql

from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.database.quarantine import SCHEMA, counts


@gate('quarantine:accounted', checks='every row is still in its table or in the quarantine schema (an empty set of tables fails)',
      runs_in='Week 0 Day 3-4 after 015')
def accounted_gate(url: str, tables: list[str], migration_id: str, rows_before: dict[str, int] | None) -> GateResult:
    """Nothing lost: rows in the table + rows quarantined >= rows before (the app may add rows
    meanwhile; a move that deleted without keeping would show as fewer)."""
    if not tables:   # nothing to account for is not "everything accounted for"
        return GateResult(name="quarantine:accounted", passed=False,
                          expectation="every row is still in its table or in the quarantine schema",
                          observed=f"no quarantine table for {migration_id}: nothing to check",
                          expected="the tables the migration quarantines")
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


@gate("quarantine:reasons", checks="every row the migration quarantined says why (a non-blank reason); "
      "no quarantine table to read fails", runs_in="Week 0 Day 3-4 after 015")
def reasons_gate(url: str, tables: list[str], migration_id: str) -> GateResult:
    """Each quarantined row of migration_id carries a reason a person can act on."""
    expectation = f"every row {migration_id} quarantined says why it was moved"
    if not tables:
        return GateResult(name="quarantine:reasons", passed=False, expectation=expectation,
                          observed=f"no quarantine table for {migration_id}: nothing to check",
                          expected="the tables the migration quarantines")
    silent = []
    with connect(url) as conn:
        for table in tables:
            n = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE migration_id = %s AND "
                                     "coalesce(btrim(reason), '') = ''").format(sql.Identifier(SCHEMA, table)),
                             (migration_id,)).fetchone()[0]
            if n:
                silent.append({"table": f"{SCHEMA}.{table}", "rows_without_reason": n})
    return GateResult(name="quarantine:reasons", passed=not silent, expectation=expectation,
                      observed=sum(s["rows_without_reason"] for s in silent), expected=0, sample=silent)


@gate('restored:quarantine', checks='after a revert, no row the migration quarantined is left in the quarantine schema',
      runs_in='rollback of 015')
def emptied_gate(url: str, tables: list[str], migration_id: str) -> GateResult:
    """After a revert: no row of migration_id is left in quarantine (all back in their tables)."""
    left = {t: n for t, n in counts(url, tables, migration_id).items() if n}
    return GateResult(name=f"restored:{SCHEMA}", passed=not left,
                      expectation=f"every row {migration_id} quarantined is back in its table",
                      observed=sum(left.values()), expected=0,
                      sample=[{"table": t, "still_quarantined": n} for t, n in left.items()])

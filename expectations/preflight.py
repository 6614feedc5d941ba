"""Preflight checks before anything is changed: lint, drift, blockers, disk room."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.lint import lint_migration
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.database import ledger
from runbook.tasks.database.backup import check_disk_room
from runbook.tasks.database.migration_files import Migration


def long_transactions(url: str, older_than_s: int = 60) -> GateResult:
    """Transactions open long enough to make DDL queue (and everything behind it) wait."""
    with connect(url) as conn:
        rows = conn.execute(
            """SELECT pid, usename, application_name, state,
                      round(extract(epoch FROM now() - xact_start))::int AS open_s
                 FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND xact_start < now() - make_interval(secs => %s)
                ORDER BY xact_start""", (older_than_s,)).fetchall()
    sample = [dict(zip(("pid", "user", "application", "state", "open_s"), r)) for r in rows]
    return GateResult(name="preflight:long-transactions", passed=not rows,
                      expectation=f"no transaction open longer than {older_than_s}s",
                      observed=len(rows), expected=0, sample=sample)


def drift(url: str, migration: Migration) -> GateResult:
    ledger.ensure(url)
    state = ledger.migration_state(url, migration.id)
    ok = not (state and state["status"] in ("applied", "applying") and state["checksum"] != migration.checksum)
    return GateResult(name=f"preflight:drift:{migration.id}", passed=ok,
                      expectation="the ledger's checksum for this migration equals the file's",
                      observed=state["checksum"][:12] if state else None,
                      expected=migration.checksum[:12])


def disk_room(ctx: RunContext) -> GateResult:
    try:
        room = check_disk_room(ctx.database_url, ctx.backup_dir)
        return GateResult(name="preflight:disk", passed=True, expectation="room for the backup",
                          observed=room["free_bytes"], expected=f">= {room['needed_bytes']}")
    except Exception as exc:
        return GateResult(name="preflight:disk", passed=False, expectation="room for the backup",
                          observed=str(exc), expected="enough free space")


def preflight(ctx: RunContext, migration: Migration) -> list[GateResult]:
    return [lint_migration(migration, ctx.lock_timeout_ms), drift(ctx.database_url, migration),
            long_transactions(ctx.database_url), disk_room(ctx)]

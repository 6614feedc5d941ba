"""Preflight checks before anything is changed: lint, drift, blockers, disk room."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.expectations.lint import lint_migration
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.database import backfill_triggers, ledger
from runbook.tasks.database.backup import check_disk_room
from runbook.tasks.database.migrate import leaf_relations
from runbook.tasks.database.migration_files import Migration


@gate('preflight:long-transactions', checks="no other session holds a transaction open longer than the limit (and the role can see other sessions' xact_start)",
      runs_in="every plan day's preflight")
def long_transactions(url: str, older_than_s: int = 60) -> GateResult:
    """Transactions open long enough to make DDL queue (and everything behind it) wait."""
    expectation = f"no transaction open longer than {older_than_s}s"
    with connect(url) as conn:
        # without pg_read_all_stats, other roles' sessions show xact_start NULL: blind, not clear
        who, sees_all = conn.execute(
            """SELECT current_user, rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
                 FROM pg_roles WHERE rolname = current_user""").fetchone()
        if not sees_all:
            return GateResult(name="preflight:long-transactions", passed=False, expectation=expectation,
                              observed=f"role {who} cannot see other sessions' xact_start "
                                       "(not superuser, no pg_read_all_stats)",
                              expected="a role that sees every session (GRANT pg_read_all_stats)")
        rows = conn.execute(
            """SELECT pid, usename, application_name, state,
                      round(extract(epoch FROM now() - xact_start))::int AS open_s
                 FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND xact_start < now() - make_interval(secs => %s)
                ORDER BY xact_start""", (older_than_s,)).fetchall()
    sample = [dict(zip(("pid", "user", "application", "state", "open_s"), r)) for r in rows]
    return GateResult(name="preflight:long-transactions", passed=not rows, expectation=expectation,
                      observed=len(rows), expected=0, sample=sample)


@gate('preflight:drift', checks="the ledger's checksum for an applied migration equals its file's",
      runs_in="every plan day's preflight, per migration")
def drift(url: str, migration: Migration) -> GateResult:
    ledger.ensure(url)
    state = ledger.migration_state(url, migration.id)
    ok = not (state and state["status"] in ("applied", "applying") and state["checksum"] != migration.checksum)
    return GateResult(name=f"preflight:drift:{migration.id}", passed=ok,
                      expectation="the ledger's checksum for this migration equals the file's",
                      observed=state["checksum"][:12] if state else None,
                      expected=migration.checksum[:12])


@gate('preflight:disk', checks='BACKUP_DIR has room for the pre-change backup',
      runs_in="every plan day's preflight")
def disk_room(ctx: RunContext) -> GateResult:
    try:
        room = check_disk_room(ctx.database_url, ctx.backup_dir)
        return GateResult(name="preflight:disk", passed=True, expectation="room for the backup",
                          observed=room["free_bytes"], expected=f">= {room['needed_bytes']}")
    except Exception as exc:
        return GateResult(name="preflight:disk", passed=False, expectation="room for the backup",
                          observed=str(exc), expected="enough free space")


def preflight(ctx: RunContext, migration: Migration) -> list[GateResult]:
    return [lint_migration(migration, ctx.lock_timeout_ms, url=ctx.database_url),
            drift(ctx.database_url, migration), backfill_triggers_gate(ctx, migration),
            long_transactions(ctx.database_url), disk_room(ctx)]


@gate('preflight:backfill-triggers', checks='no user trigger fires during a backfill unless kept out or accepted by name',
      runs_in="every plan day's preflight, per migration with a backfill")
def backfill_triggers_gate(ctx: RunContext, migration: Migration) -> GateResult:
    """The user triggers each backfill would fire, what they would change, and how the run keeps
    them out; fails (naming trigger and columns) when it cannot and nobody accepted them."""
    name = f"preflight:backfill-triggers:{migration.id}"
    expectation = "no user trigger fires during a backfill, or its effect is kept out or accepted"
    seen, refused = [], []
    state = ledger.migration_state(ctx.database_url, migration.id)
    if state and state["status"] == "applied":
        return GateResult(name, True, expectation, observed="applied", expected="-")
    with connect(ctx.database_url) as conn:
        for s in migration.up_sections(ctx.database_url, stored=(state or {}).get("plan")):
            if not s.is_backfill:
                continue
            new_cols = [n for n, _ in s.backfill_pairs]
            for rel in leaf_relations(conn, s.backfill_table):
                found = backfill_triggers.firing_triggers(conn, rel, new_cols)
                if not found:
                    continue
                effects = backfill_triggers.probe(conn, rel, s.backfill_pairs[0][1])
                try:
                    how = backfill_triggers.plan(conn, rel, new_cols, ctx.accept_trigger_effects).describe()
                except RunbookError as exc:
                    how = "refused"
                    refused.append(str(exc))
                seen.append({"table": rel, "triggers": ", ".join(t.name for t in found),
                             "would_change": ", ".join(effects) or "(nothing in the row)", "kept_out": how})
    return GateResult(name, not refused, expectation, observed=refused[0] if refused else f"{len(seen)} tables",
                      expected="kept out or accepted", sample=seen)

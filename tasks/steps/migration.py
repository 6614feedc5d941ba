"""Database steps shared by every flow: backup, staging rehearsal, approval, migration.

One mechanism, parameterised by the migration id and the gates that must hold after it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from runbook.context import RunContext
from runbook.errors import GateFailed, RunbookError
from runbook.expectations.restore import restore_proof
from runbook.gate_result import GateResult
from runbook.pg import drop_database, recreate_database, with_database
from runbook.tasks.database import checksums, ledger, migrate, restore_baseline
from runbook.tasks.database.backup import Backup, restore_into, take_backup
from runbook.tasks.database.migration_files import Migration
from runbook.tasks.database.pacing import PaceLimits
from runbook.tasks.steps.core import Step, publish_gate

log = logging.getLogger("runbook.migration_steps")
DataGates = Callable[[str, dict], list[GateResult]]   # (database url, migration step data) -> results

_progress_listeners: list[Callable[[str, int, int], None]] = []


def add_progress_listener(fn: Callable[[str, int, int], None]) -> None:
    """The CLI registers a rich progress bar here; the UI gets a Prefect progress artifact."""
    _progress_listeners.append(fn)


def _progress(migration: Migration) -> Callable[[str, int, int], None]:
    artifact = {"id": None}

    def report(table: str, done: int, total: int) -> None:
        pct = min(100.0, 100.0 * done / total) if total else 100.0
        try:
            if artifact["id"] is None:
                artifact["id"] = create_progress_artifact(
                    progress=pct, key=f"backfill-{migration.number:03d}",
                    description=f"{migration.id}: backfill progress")
            else:
                update_progress_artifact(artifact["id"], progress=pct)
        except Exception:
            pass  # outside a run (CLI, tests) there is no artifact to update
        for fn in _progress_listeners:
            fn(table, done, total)
    return report


def pace_limits(ctx: RunContext) -> PaceLimits:
    """The backfill's pace from the flow's own parameters (Day 1-2 declares them), else defaults."""
    defaults = PaceLimits()
    budget = ctx.parameters.get("backfill_batch_budget_ms", defaults.batch_budget_ms)
    wal = ctx.parameters.get("backfill_max_wal_mb_s", defaults.max_wal_mb_s)
    workers = ctx.parameters.get("backfill_workers", defaults.workers)
    commit = ctx.parameters.get("backfill_max_commit_ms", defaults.max_commit_ms)
    try:
        return PaceLimits(batch_budget_ms=float(budget), max_wal_mb_s=None if wal is None else float(wal),
                          workers=int(workers), max_commit_ms=None if commit is None else float(commit))
    except (TypeError, ValueError) as exc:
        raise RunbookError(f"parameter {exc}") from None


def options(ctx: RunContext, migration: Migration, **kw) -> migrate.MigrationOptions:
    kw.setdefault("pace", pace_limits(ctx))
    return migrate.MigrationOptions(batch_size=ctx.batch_size, lock_timeout_ms=ctx.lock_timeout_ms,
                                    statement_timeout_ms=ctx.statement_timeout_ms,
                                    idle_in_transaction_timeout_ms=ctx.idle_in_transaction_timeout_ms,
                                    accept_trigger_effects=ctx.accept_trigger_effects,
                                    flow_run_id=ctx.flow_run_id, progress=_progress(migration), **kw)


def row_counts(sums: dict[str, str]) -> dict[str, int]:
    return {t: int(v.split(":")[0]) for t, v in sums.items()}


# -- backup ---------------------------------------------------------------------------------

def backup_step() -> Step:
    def apply(ctx: RunContext, _adopted) -> dict:
        b = take_backup(ctx.database_url, ctx.backup_dir / ctx.slot,
                        label=f"{ctx.flow_name}-{ctx.slot}", flow_run_id=ctx.flow_run_id)
        ctx.extra["backup"] = b
        return {"path": str(b.path), "sha256": b.sha256, "bytes": b.bytes, "entries": b.entries}
    return Step("backup", apply)


# -- migration apply / revert ---------------------------------------------------------------

def take_restore_baseline(url: str, migration: Migration) -> restore_baseline.Baseline:
    """Before a fresh apply: the catalog and per-row baseline of every table the migration
    names (its SQL, parsed), which its revert is proven against."""
    sections = migration.up_sections(url)
    tables = restore_baseline.tables_named(url, [s.sql for s in sections if not s.is_backfill],
                                           [s.backfill_table for s in sections if s.is_backfill])
    return restore_baseline.take(url, migration.id, tables)


def apply_and_check(url: str, migration: Migration, opts: migrate.MigrationOptions,
                    gates: DataGates, data: dict) -> list[GateResult]:
    migrate.apply(url, migration, opts, baseline=data.get("before"))
    results = [migrate.verify(url, migration), *gates(url, data)]
    for r in results:
        if not r.passed:
            raise GateFailed(r)
    baseline = restore_baseline.load(url, migration.id)
    if baseline is not None and baseline.touched is None:
        restore_baseline.mark_touched(url, baseline)   # a later revert is held to these objects
    return results


def revert_and_check(url: str, migration: Migration, opts: migrate.MigrationOptions,
                     before: dict[str, str] | None) -> GateResult | None:
    """Revert, then the restore proof against the baseline taken before the apply (or, for an
    apply older than restore baselines, table checksums: a quiet database only)."""
    migrate.revert(url, migration, opts)
    baseline = restore_baseline.load(url, migration.id)
    if baseline is not None:
        proof = restore_proof(url, baseline, name=f"restored:{migration.id}")
        if proof.passed:
            restore_baseline.discard(url, baseline)
        return proof
    if before is None:
        return None
    after = checksums.table_checksums(url, list(before))
    changed = checksums.diff(before, after)
    return GateResult(name=f"restored:{migration.id}", passed=not changed,
                      expectation="every table's checksum after revert equals the one before apply",
                      observed=f"{len(changed)} tables differ", expected="0 tables differ",
                      sample=changed)


def require_staging_first(ctx: RunContext, migration: Migration) -> None:
    """Production takes only a migration whose very checksum passed this run's rehearsal and,
    where a staging database is configured, is applied there."""
    if not ledger.rehearsal_passed(ctx.database_url, migration.id, migration.checksum):
        raise RunbookError(f"{migration.id} (checksum {migration.checksum[:12]}) has not passed a "
                           "staging rehearsal; refusing to apply it to production")
    if ctx.staging_url:
        staged = ledger.migration_state(ctx.staging_url, migration.id)
        if not staged or staged["status"] != "applied" or staged["checksum"] != migration.checksum:
            found = f"{staged['status']} with checksum {staged['checksum'][:12]}" if staged else "never applied"
            raise RunbookError(f"{migration.id} (checksum {migration.checksum[:12]}) is not applied on "
                               f"staging ({found}); run this flow on staging first")


def migration_step(migration: Migration, gates: DataGates) -> Step:
    """Apply a migration (resumable), then verify.sql and the data gates; revert = down.sql,
    then prove the data is back (table checksums equal to before)."""
    def apply(ctx: RunContext, adopted: dict | None) -> dict:
        if ctx.environment == "production":
            require_staging_first(ctx, migration)
        state = ledger.migration_state(ctx.database_url, migration.id)
        if state and state["status"] == "applied" and not adopted:
            # applied by a run that ended: history, not this run's to take back on a failure
            data = {"migration": migration.id, "checksum": migration.checksum, "noop": True,
                    "applied_by": state["flow_run_id"]}
            for r in apply_and_check(ctx.database_url, migration, options(ctx, migration), gates, data):
                publish_gate(r)
            return data
        if state and state["status"] == "applying":
            before = state["baseline"]           # a crashed apply: its baseline, taken before it
        elif state and state["status"] == "applied":
            before = adopted.get("before")       # a crashed run applied it: its baseline
        else:
            before = checksums.table_checksums(ctx.database_url)
            take_restore_baseline(ctx.database_url, migration)
        data = {"migration": migration.id, "checksum": migration.checksum, "before": before,
                "rows": row_counts(before) if before else None}
        for r in apply_and_check(ctx.database_url, migration, options(ctx, migration), gates, data):
            publish_gate(r)
        return data

    def revert(ctx: RunContext, data: dict) -> None:
        if not data:
            # a failed apply: take back what this run started, against the ledger's baseline
            state = ledger.migration_state(ctx.database_url, migration.id)
            if not state or state["flow_run_id"] != ctx.flow_run_id or state["status"] == "reverted":
                return
            data = {"before": state["baseline"]}
        result = revert_and_check(ctx.database_url, migration, options(ctx, migration), data.get("before"))
        if result is not None:
            ctx.extra.setdefault("restore_checks", []).append(publish_gate(result))
            if not result.passed:
                raise GateFailed(result)

    return Step(f"{migration.id}:apply", apply, revert, revert_partial=True)


# -- staging rehearsal ----------------------------------------------------------------------

def rehearsal_step(migration: Migration, gates: DataGates) -> Step:
    """Restore the fresh backup into a scratch database on the staging server and rehearse:
    apply -> gates -> revert -> verify restored -> apply again. Records the pass in the ledger."""
    def apply(ctx: RunContext, _adopted) -> dict:
        backup: Backup | None = ctx.extra.get("backup")
        if backup is None:
            raise RunbookError("staging rehearsal needs the backup taken by this run")
        scratch = recreate_database(ctx.rehearsal_server_url, ctx.rehearsal_db)
        try:
            restore_into(backup, scratch)
            opts = options(ctx, migration)
            if migrate.applied_state(scratch, migration) in ("applied", "applying"):
                migrate.revert(scratch, migration, opts)   # rehearse from the pre-migration state
            before = checksums.table_checksums(scratch)
            take_restore_baseline(scratch, migration)
            data = {"before": before, "rows": row_counts(before)}
            first = apply_and_check(scratch, migration, opts, gates, data)
            restored = revert_and_check(scratch, migration, opts, before)
            publish_gate(restored)
            if not restored.passed:
                raise GateFailed(restored)
            again = apply_and_check(scratch, migration, opts, gates, data)
            detail = {"gates": [r.name for r in first + again], "tables": len(before),
                      "server": with_database(ctx.rehearsal_server_url, "").rsplit("@", 1)[-1]}
            ledger.record_rehearsal(ctx.database_url, migration.id, migration.checksum,
                                    ctx.flow_run_id, detail)
            return {"migration": migration.id, "checksum": migration.checksum, **detail}
        finally:
            from runbook.expectations.gx.runner import dispose_runner

            dispose_runner(scratch)   # its cached connections die with the scratch database
            drop_database(ctx.rehearsal_server_url, ctx.rehearsal_db)
    return Step(f"{migration.id}:rehearsal", apply)

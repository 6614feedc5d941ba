"""Week 0, Day 3-4 of the plan: database integrity + connection pooling.

Task 2.1  migration 015: orphans to quarantine (reversible), FKs NOT VALID + VALIDATE
Task 2.2  duplicate table definitions removed from migrations 009/010 (schema/ kept)
Task 2.3  the plan's asyncpg pool (5-20, timeouts) with a health check in /health
Task 2.4  migration 016 (composite indexes) + an index for every unindexed FK (catalog)
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import psycopg
from prefect import flow

from runbook.tasks.steps.day import DayOutcome, DayPlan, run_day, smoke_step
from runbook.context import RunContext
from runbook.errors import GateFailed
from runbook.gate_result import GateResult
from runbook.pg import connect, database_name
from runbook.tasks.database import fk_indexes, migrate, migration_files, quarantine
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import code_update_step
from runbook.tasks.code.pool import POOL_SETTINGS, configure_pool
from runbook.tasks.target.deploy import api
from runbook.tasks.steps.migration import backup_step, migration_step, rehearsal_step
from runbook.tasks.code.schema_defs import compare_rebuild, dedupe, duplicates_gate
from runbook.tasks.steps.core import Step, gate_step, publish_gate

Environment = Literal["staging", "production"]

MIGRATION_015 = "015_add_fk_constraints"
MIGRATION_016 = "016_add_indexes"
# (child table, FK column, parent table) that 015 constrains
FKS_015 = [("lots", "security_id", "securities"), ("transactions", "security_id", "securities")]
QUARANTINED = [child for child, _col, _parent in FKS_015]


# -- Task 2.1: migration 015 and its integrity suite -------------------------------------------

def orphan_gates(url: str) -> list[GateResult]:
    from runbook.expectations.integrity import orphans_gate

    return [orphans_gate(url, child, col, parent) for child, col, parent in FKS_015]


def integrity_gates(url: str, data: dict) -> list[GateResult]:
    """0 orphans (one scan each), FKs present and validated, an orphan insert refused (rolled
    back), and every row either in its table or in quarantine."""
    from runbook.expectations.gx.runner import dispose_runner
    from runbook.expectations.integrity import fk_catalog_gate, invalid_insert_rejected

    dispose_runner(url)   # the rehearsal database is recreated under the same name: no stale pool
    try:
        out = orphan_gates(url) + [fk_catalog_gate(url, FKS_015)]
        out += [invalid_insert_rejected(url, child, quarantine.row_breaking_fk(url, child, col))
                for child, col, _parent in FKS_015]
        out.append(quarantine.accounted_gate(url, QUARANTINED, MIGRATION_015, (data or {}).get("rows")))
        return out
    finally:
        dispose_runner(url)


def fk_migration_step() -> Step:
    """migration_step(015), plus: a VALIDATE refused because the app wrote an orphan after the
    quarantine becomes the orphans gate's failure (with that row in the sample), and a revert
    proves no quarantined row was left behind."""
    inner = migration_step(migration_files.load(MIGRATION_015), integrity_gates)

    def apply(ctx: RunContext, adopted: dict | None) -> dict:
        try:
            return inner.apply(ctx, adopted)
        except psycopg.errors.ForeignKeyViolation:
            failed = [g for g in orphan_gates(ctx.database_url) if not g.passed]
            if failed:
                raise GateFailed(publish_gate(failed[0])) from None
            raise

    def revert(ctx: RunContext, data: dict) -> None:
        inner.revert(ctx, data)
        check = publish_gate(quarantine.emptied_gate(ctx.database_url, QUARANTINED, MIGRATION_015))
        ctx.extra.setdefault("restore_checks", []).append(check)
        check.raise_if_failed()

    return Step(inner.name, apply, revert, revert_partial=True)


# -- Task 2.4: indexes -------------------------------------------------------------------------

def no_gates(_url: str, _data: dict) -> list[GateResult]:
    return []   # 016's verify.sql checks the indexes; nothing data-level to gate


def fk_index_step() -> Step:
    """An index for every FK that lacks one, from the catalog; their names go to the ledger."""
    def apply(ctx: RunContext, adopted: dict | None) -> dict:
        earlier = (adopted or {}).get("created", [])
        return {"created": earlier + fk_indexes.create_missing(ctx.database_url, ctx.lock_timeout_ms)}

    def revert(ctx: RunContext, data: dict) -> None:
        fk_indexes.drop(ctx.database_url, data.get("created", []), ctx.lock_timeout_ms)

    return Step("indexes:fk", apply, revert)


def fk_indexes_gate(ctx: RunContext) -> list[GateResult]:
    from runbook.expectations.integrity import fk_index_gate

    url = ctx.database_url
    probes = list(fk_indexes.COMMON_QUERIES) + fk_indexes.fk_probes(url)
    return [fk_index_gate(url), fk_indexes.explain_gate(url, probes)]


# -- Task 2.3: connection pool -----------------------------------------------------------------

def pool_transform(checkout, dry_run: bool) -> dict:
    report = configure_pool(Path(checkout), dry_run=dry_run)
    return {"files": len(report.changed), "changed": report.changed,
            "create_pool_calls": report.calls_configured, "diff": report.diff()}


def pool_health_gate(ctx: RunContext) -> GateResult:
    """The restarted API's /health reports the plan's pool settings and a healthy pool."""
    health = api(ctx).health()
    pool = health.get("pool") or {}
    want = {kw: value for kw, value, _comment in POOL_SETTINGS.values()}
    want |= {"pool_min_size": want["min_size"], "pool_max_size": want["max_size"], "healthy": True}
    wrong = [{"setting": k, "reported": pool.get(k), "expected": v} for k, v in want.items() if pool.get(k) != v]
    if health.get("status") != "ok":
        wrong.append({"setting": "status", "reported": health.get("status"), "expected": "ok"})
    return GateResult(name="pool-health", passed=not wrong,
                      expectation="/health reports status ok and a healthy pool with min 5, max 20, "
                                  "timeout 30 s, command timeout 60 s",
                      observed=pool or "no pool in /health", expected=want, sample=wrong)


# -- Task 2.2: duplicate table definitions ------------------------------------------------------

def dedupe_transform(checkout, dry_run: bool) -> dict:
    report = dedupe(Path(checkout), dry_run=dry_run)
    return {"files": len(report.diffs), "removed": [f"{d.table} from {d.path}:{d.line}" for d in report.removed],
            "unresolved": report.unresolved, "diff": report.diff()}


def applied_runbook_migrations(url: str) -> list[str]:
    with connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT id FROM runbook.migrations WHERE status = 'applied' ORDER BY id").fetchall()]


def schema_gate(ctx: RunContext) -> list[GateResult]:
    """Each table defined once in the deployed SQL, and the dedupe lost nothing: a scratch
    database built from the deployed schema/ + migrations, plus the runbook's applied
    migrations and FK indexes, has the live catalog exactly. (Day 1-2 leaves the schema DDL and
    the migration history alone until the contract, so the deployed SQL still builds.)"""
    applied = applied_runbook_migrations(ctx.database_url)

    def runbook_changes(scratch: str) -> None:
        for mid in applied:
            migrate.apply(scratch, migration_files.load(mid),
                          migrate.MigrationOptions(lock_timeout_ms=ctx.lock_timeout_ms))
        fk_indexes.create_missing(scratch, ctx.lock_timeout_ms)

    scratch_db = f"rb_schema_{database_name(ctx.database_url)}"[:63]
    rebuilt = compare_rebuild(ctx.database_url, ctx.rehearsal_server_url, scratch_db, ctx.deploy_dir,
                              after_build=runbook_changes)
    rebuilt.details["runbook_migrations"] = applied
    return [duplicates_gate(ctx.deploy_dir), rebuilt]


# -- the day -----------------------------------------------------------------------------------

def day3_4_steps(ctx: RunContext) -> list[Step]:
    m015, m016 = migration_files.load(MIGRATION_015), migration_files.load(MIGRATION_016)
    return [
        backup_step(),
        rehearsal_step(m015, integrity_gates),
        rehearsal_step(m016, no_gates),
        approval_step("migrations 015 (quarantine orphans, FKs) and 016 (indexes)"),
        fk_migration_step(),
        migration_step(m016, no_gates),
        fk_index_step(),
        gate_step("gate:fk-indexes", fk_indexes_gate),
        code_update_step("code:pool-config", pool_transform,
                         "Week 0 Day 3-4: connection pool (min 5, max 20, timeout 30 s, command "
                         "timeout 60 s) with a health check in /health"),
        gate_step("gate:pool-health", pool_health_gate),
        code_update_step("code:dedupe-schema", dedupe_transform,
                         "Week 0 Day 3-4: remove duplicate table definitions from migrations "
                         "(backend/db/schema/ is the one definition)"),
        gate_step("gate:schema-defined-once", schema_gate),
        smoke_step("smoke"),
    ]


DAY_3_4 = DayPlan("week0-day3-4-integrity-pooling", [MIGRATION_015, MIGRATION_016], day3_4_steps,
                  [("pool-config", pool_transform), ("dedupe-schema", dedupe_transform)])


@flow(name="week0-day3-4-integrity-pooling",
      description="Week 0, Day 3-4: Database integrity + connection pooling. Migration 015 "
                  "(orphans to quarantine, FKs NOT VALID + VALIDATE), GX integrity suite, "
                  "migration 016 + FK indexes (EXPLAIN-checked), pool codemod + /health gate, "
                  "duplicate table definitions removed (rebuild compared), 13-pattern smoke.")
def integrity_and_pooling(environment: Environment = "staging", dry_run: bool = False,
                          require_approval: bool | None = None, batch_size: int = 2000,
                          lock_timeout_ms: int = 2000) -> DayOutcome:
    return run_day(DAY_3_4, environment=environment, dry_run=dry_run, require_approval=require_approval,
                   batch_size=batch_size, lock_timeout_ms=lock_timeout_ms)

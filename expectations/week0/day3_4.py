"""Gates of Week 0, Day 3-4: integrity after 015 (orphans, FKs, quarantine accounted for), the
FK indexes of 016 (catalog + EXPLAIN), the pool's health, and the schema defined once."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.gx.runner import dispose_runner
from runbook.expectations.integrity import (
    explain_gate,
    fk_catalog_gate,
    fk_index_gate,
    invalid_insert_rejected,
    orphans_gate,
)
from runbook.expectations.quarantine import accounted_gate, reasons_gate
from runbook.expectations.schema import compare_rebuild, duplicates_gate
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect, database_name
from runbook.plan import MIGRATION_015
from runbook.target import DAWSOS
from runbook.tasks.code.pool import POOL_SETTINGS
from runbook.tasks.database import fk_indexes, migrate, migration_files, quarantine
from runbook.tasks.target.deploy import api


def orphan_gates(url: str) -> list[GateResult]:
    return [orphans_gate(url, fk.child, fk.column, fk.parent) for fk in DAWSOS.foreign_keys]


def integrity_suite(url: str) -> list[GateResult]:
    """0 orphans (one scan each), FKs present and validated, an orphan insert refused (rolled
    back)."""
    out = orphan_gates(url) + [fk_catalog_gate(url, DAWSOS.foreign_keys)]
    out += [invalid_insert_rejected(url, fk.child, quarantine.row_breaking_fk(url, fk.child, fk.column))
            for fk in DAWSOS.foreign_keys]
    return out


def integrity_gates(url: str, data: dict) -> list[GateResult]:
    """After 015: the integrity suite, and every row either in its table or in quarantine."""
    dispose_runner(url)   # the rehearsal database is recreated under the same name: no stale pool
    try:
        rows_before = (data or {}).get("rows")
        held = quarantine.tables(url)
        return integrity_suite(url) + [accounted_gate(url, held, MIGRATION_015, rows_before),
                                       reasons_gate(url, held, MIGRATION_015)]
    finally:
        dispose_runner(url)


def no_gates(_url: str, _data: dict) -> list[GateResult]:
    return []   # 016's verify.sql checks the indexes; nothing data-level to gate


def fk_index_gates(url: str) -> list[GateResult]:
    """Every FK has a covering index, and EXPLAIN of the hot queries and FK lookups uses one."""
    probes = list(fk_indexes.COMMON_QUERIES) + fk_indexes.fk_probes(url)
    return [fk_index_gate(url), explain_gate(url, probes)]


def fk_indexes_gate(ctx: RunContext) -> list[GateResult]:
    return fk_index_gates(ctx.database_url)


@gate('pool-health', checks="the running API's /health reports a healthy pool with the plan's sizes and timeouts, read from the live pool",
      runs_in='Week 0 Day 3-4; scheduled verification')
def pool_health_gate(ctx: RunContext) -> GateResult:
    """The restarted API's /health reports the plan's pool settings and a healthy pool."""
    return pool_health_verdict(api(ctx).health())


def pool_health_verdict(health: dict) -> GateResult:
    """The plan's sizes and timeouts as the running service reads them back from its live pool
    (pool_*), besides the constants its code declares."""
    pool = health.get("pool") or {}
    want = {kw: value for kw, value, _comment in POOL_SETTINGS.values()}
    want |= {f"pool_{kw}": want[kw] for kw in ("min_size", "max_size", "timeout", "command_timeout")}
    want["healthy"] = True
    wrong = [{"setting": k, "reported": pool.get(k), "expected": v} for k, v in want.items() if pool.get(k) != v]
    if health.get("status") != "ok":
        wrong.append({"setting": "status", "reported": health.get("status"), "expected": "ok"})
    return GateResult(name="pool-health", passed=not wrong,
                      expectation="/health reports status ok and a healthy pool with min 5, max 20, "
                                  "timeout 30 s, command timeout 60 s",
                      observed=pool or "no pool in /health", expected=want, sample=wrong)


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

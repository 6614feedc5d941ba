"""Week 0, Day 3-4 of the plan: Database Integrity + Connection Pooling.

Task 2.1  migration 015: orphans to quarantine (reversible), FKs NOT VALID + VALIDATE
Task 2.2  duplicate table definitions removed from migrations 009/010 (schema/ kept)
Task 2.3  the plan's asyncpg pool (5-20, timeouts) with a health check in /health
Task 2.4  migration 016 (composite indexes) + an index for every unindexed FK (catalog)
"""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.week0.day3_4 import (
    fk_indexes_gate,
    integrity_gates,
    no_gates,
    pool_health_gate,
    schema_gate,
)
from runbook.plan import MIGRATION_015, MIGRATION_016, WEEK0_DAY3_4
from runbook.tasks.code.transforms import DEDUPE_SCHEMA, POOL_CONFIG
from runbook.tasks.database import migration_files
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import code_update
from runbook.tasks.steps.core import Step, gate_step
from runbook.tasks.steps.day import smoke_step
from runbook.tasks.steps.day_flow import plan_day_flow
from runbook.tasks.steps.integrity import fk_index_step, fk_migration_step
from runbook.tasks.steps.migration import backup_step, migration_step, rehearsal_step


def steps(ctx: RunContext) -> list[Step]:
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
        code_update(POOL_CONFIG),
        gate_step("gate:pool-health", pool_health_gate),
        code_update(DEDUPE_SCHEMA),
        gate_step("gate:schema-defined-once", schema_gate),
        smoke_step("smoke"),
    ]


integrity_and_pooling = plan_day_flow(
    WEEK0_DAY3_4, steps, code_updates=[POOL_CONFIG, DEDUPE_SCHEMA],
    description="Week 0, Day 3-4: Database integrity + connection pooling. Migration 015 "
                "(orphans to quarantine, FKs NOT VALID + VALIDATE), GX integrity suite, "
                "migration 016 + FK indexes (EXPLAIN-checked), pool codemod + /health gate, "
                "duplicate table definitions removed (rebuild compared), 13-pattern smoke.")

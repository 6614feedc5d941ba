"""Steps of Week 0, Day 3-4 beyond the generic migration step: 015 with its quarantine
proofs, and the catalog-driven FK indexes."""
from __future__ import annotations

import psycopg

from runbook.context import RunContext
from runbook.errors import GateFailed
from runbook.expectations.quarantine import emptied_gate
from runbook.expectations.week0.day3_4 import integrity_gates, orphan_gates
from runbook.plan import MIGRATION_015
from runbook.tasks.database import fk_indexes, migration_files, quarantine
from runbook.tasks.steps.core import Step, publish_gate
from runbook.tasks.steps.migration import migration_step


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
        check = publish_gate(emptied_gate(ctx.database_url, quarantine.tables(ctx.database_url), MIGRATION_015))
        ctx.extra.setdefault("restore_checks", []).append(check)
        check.raise_if_failed()

    return Step(inner.name, apply, revert, revert_partial=True)


def fk_index_step() -> Step:
    """An index for every FK that lacks one, from the catalog; their names go to the ledger."""
    def apply(ctx: RunContext, adopted: dict | None) -> dict:
        earlier = (adopted or {}).get("created", [])
        return {"created": earlier + fk_indexes.create_missing(ctx.database_url, ctx.lock_timeout_ms)}

    def revert(ctx: RunContext, data: dict) -> None:
        fk_indexes.drop(ctx.database_url, data.get("created", []), ctx.lock_timeout_ms)

    return Step("indexes:fk", apply, revert)

"""Contract phase of 014: drop lots.qty_open / qty_original and their sync trigger (017).

Allowed only after `min_green_days` consecutive calendar days of green verification runs on
the same environment since 014 was applied (read from Prefect's flow-run history), with no
old name left in the deployed code and no database function, view or trigger still using the
old columns (other than those 017 itself rewrites). Backup first; staging rehearsal
(apply -> revert -> restored -> apply); reversible until its own gates and smoke pass.
"""
from __future__ import annotations

from prefect import flow

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.expectations.contract import contract_gates, preconditions
from runbook.plan import CONTRACT_FLOW, MIGRATION_017, Environment
from runbook.tasks.database import migration_files
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.core import Step, gate_step
from runbook.tasks.steps.day import DayOutcome, DayPlan, run_day, smoke_step
from runbook.tasks.steps.migration import backup_step, migration_step, rehearsal_step


def contract_steps(min_green_days: int):
    def steps(ctx: RunContext) -> list[Step]:
        m = migration_files.load(MIGRATION_017)
        return [gate_step("contract:preconditions", preconditions(min_green_days)),
                backup_step(),
                rehearsal_step(m, contract_gates),
                approval_step("migration 017 (drop qty_open, qty_original)"),
                migration_step(m, contract_gates),
                smoke_step("smoke")]
    return steps


@flow(name=CONTRACT_FLOW, description="Contract 014: drop lots.qty_open/qty_original and the lots "
      "sync trigger (017), only after N consecutive green verification days, no old name in code "
      "and no database object using the old columns. Backup, rehearsal, approval, smoke.")
def contract_quantity_fields(environment: Environment = "staging", min_green_days: int = 2,
                             dry_run: bool = False, require_approval: bool | None = None,
                             lock_timeout_ms: int = 2000) -> DayOutcome:
    if min_green_days < 1 or min_green_days > 60:
        raise RunbookError(f"parameter min_green_days must be between 1 and 60, not {min_green_days}")
    plan = DayPlan(CONTRACT_FLOW, [MIGRATION_017], contract_steps(min_green_days))
    return run_day(plan, environment=environment, dry_run=dry_run, require_approval=require_approval,
                   lock_timeout_ms=lock_timeout_ms)


contract = contract_quantity_fields   # the name deployments/catalog.py serves

"""Contract phase of 014: drop lots.qty_open / qty_original and their sync trigger (017).

Allowed only after `min_green_days` consecutive calendar days of green verification runs on
the same environment since 014 was applied (read from Prefect's flow-run history), with no
old name left in the deployed code and no database function, view or trigger still using the
old columns (other than those 017 itself rewrites). Backup first; staging rehearsal
(apply -> revert -> restored -> apply); reversible until its own gates and smoke pass.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from prefect import flow, get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterStartTime,
)

from runbook.tasks.steps.day import DayOutcome, DayPlan, run_day, smoke_step
from runbook.flows.standup import read_all
from runbook.flows.verification import VERIFICATION_FLOW
from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.gate_result import GateResult
from runbook.tasks.database import ledger, migrate, migration_files
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.migration import backup_step, migration_step, rehearsal_step
from runbook.tasks.steps.core import Step, gate_step
from runbook.expectations.verification import (
    MIGRATION_014,
    MIGRATION_017,
    column_references,
)

CONTRACT_FLOW = "contract-quantity-fields"
OLD_COLUMNS = ["qty_open", "qty_original"]
# database objects 017 itself rewrites or drops: their references don't block the contract
REWRITTEN_BY_017 = {("view", "v_open_lots"), ("trigger", "lots_sync_014 ON lots")}
Environment = Literal["staging", "production"]


# -- the verification period -------------------------------------------------------------------

def green_streak(runs: list[tuple[datetime, str]], today: date) -> int:
    """Consecutive calendar days (UTC) of green verification ending today — or yesterday when
    today's run has not happened yet. A day is green when it has a completed run and no failed
    or crashed one. `runs`: (start time, state type)."""
    days: dict[date, bool] = {}
    for start, state in runs:
        d = start.date()
        if state == "COMPLETED":
            days.setdefault(d, True)
        elif state in ("FAILED", "CRASHED"):
            days[d] = False
    day = today if today in days else today - timedelta(days=1)
    n = 0
    while days.get(day):
        n += 1
        day -= timedelta(days=1)
    return n


def verification_history(environment: str, after: datetime) -> list[tuple[datetime, str]]:
    with get_client(sync_client=True) as client:
        runs = read_all(client.read_flow_runs,
                        flow_filter=FlowFilter(name=FlowFilterName(any_=[VERIFICATION_FLOW])),
                        flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=after)))
    return [(r.start_time, r.state.type.value) for r in runs
            if r.start_time and r.state and r.start_time > after
            and (r.parameters or {}).get("environment") == environment]


def green_days_gate(ctx: RunContext, needed: int) -> GateResult:
    state = ledger.migration_state(ctx.database_url, MIGRATION_014)
    if not state or state["status"] != "applied":
        return GateResult("contract:green-days", False, f"{MIGRATION_014} is applied (the expand phase)",
                          observed=state["status"] if state else "not applied", expected="applied")
    streak = green_streak(verification_history(ctx.environment, state["applied_at"]),
                          datetime.now(state["applied_at"].tzinfo).date())
    return GateResult("contract:green-days", streak >= needed,
                      f"{needed} consecutive days of green verification on {ctx.environment} since "
                      f"{MIGRATION_014} was applied ({state['applied_at']:%Y-%m-%d %H:%M})",
                      observed=f"{streak} of {needed} days", expected=f">= {needed} days")


def old_column_references_gate(url: str, ignore: set[tuple[str, str]] = REWRITTEN_BY_017) -> GateResult:
    refs = [r for r in column_references(url, "lots", OLD_COLUMNS) if (r["kind"], r["object"]) not in ignore]
    return GateResult("catalog:old-column-references", not refs,
                      "no database function, view or trigger references lots." + "/".join(OLD_COLUMNS),
                      observed=len(refs), expected=0, sample=refs[:10])


def preconditions(min_green_days: int):
    from runbook.flows.week0.day1_2 import old_names_gate

    def check(ctx: RunContext) -> list[GateResult]:
        if migrate.applied_state(ctx.database_url, migration_files.load(MIGRATION_017)) == "applied":
            # a re-run after 017 went in: the period was checked by the run that applied it
            return [GateResult("contract:green-days", True, "017 already applied", "applied", "applied")]
        return [green_days_gate(ctx, min_green_days), old_names_gate(ctx),
                old_column_references_gate(ctx.database_url)]
    return check


def contract_gates(url: str, _data: dict) -> list[GateResult]:
    return [old_column_references_gate(url, ignore=set())]


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

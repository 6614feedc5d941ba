"""Gates of the contract phase of 014 (migration 017): the verification period held, and nothing
still uses the old columns."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterStartTime,
)

from runbook.context import RunContext
from runbook.expectations.week0.day1_2 import old_names_gate
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.plan import MIGRATION_014, MIGRATION_017, VERIFICATION_FLOW
from runbook.target import DAWSOS
from runbook.tasks.database import ledger, migrate, migration_files
from runbook.tasks.database.catalog import column_references
from runbook.tasks.history import read_all


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



@gate('contract:green-days', checks='N consecutive days of green verification since 014 was applied',
      runs_in='contract flow (017)')
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



@gate('catalog:old-column-references', checks='no database function, view or trigger references the contracted columns',
      runs_in='contract flow (017)')
def old_column_references_gate(url: str, ignore: frozenset[tuple[str, str]] = DAWSOS.contract_rewrites) -> GateResult:
    refs = [r for r in column_references(url, DAWSOS.contract_table, list(DAWSOS.contract_columns)) if (r["kind"], r["object"]) not in ignore]
    return GateResult("catalog:old-column-references", not refs,
                      f"no database function, view or trigger references {DAWSOS.contract_table}." + "/".join(DAWSOS.contract_columns),
                      observed=len(refs), expected=0, sample=refs[:10])



def preconditions(min_green_days: int):
    def check(ctx: RunContext) -> list[GateResult]:
        if migrate.applied_state(ctx.database_url, migration_files.load(MIGRATION_017)) == "applied":
            # a re-run after 017 went in: the period was checked by the run that applied it
            return [GateResult("contract:green-days", True, "017 already applied", "applied", "applied")]
        return [green_days_gate(ctx, min_green_days), old_names_gate(ctx),
                old_column_references_gate(ctx.database_url)]
    return check



def contract_gates(url: str, _data: dict) -> list[GateResult]:
    return [old_column_references_gate(url, ignore=frozenset())]

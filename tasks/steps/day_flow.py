"""The one shape of a plan day's flow: the same parameters for every day, its steps from the
flow module. (No `from __future__ import annotations` here: Prefect builds the UI form from
these annotations, which must be objects, not strings to resolve elsewhere.)"""
import inspect
from collections.abc import Callable

from prefect import Flow, flow

from runbook.context import RunContext
from runbook.parameters import BatchSize, ChangeRef, LockTimeoutMs, SessionTimeoutMs
from runbook.plan import Environment, PlanDay
from runbook.tasks.code.transforms import CodeUpdate
from runbook.tasks.steps.core import Step
from runbook.tasks.steps.day import DayOutcome, DayPlan, run_day


def plan_day_flow(day: PlanDay, steps: Callable[[RunContext], list[Step]], *, description: str,
                  code_updates: list[CodeUpdate] | None = None,
                  parameters: list[inspect.Parameter] | None = None) -> Flow:
    """A Prefect flow for `day`, registered under the module and name the plan registry gives
    (so deployments point at it), running `steps` through `run_day`; a dry run previews
    `code_updates`. `parameters` are the day's own, after the common ones (keyword-only,
    annotated, with defaults): the UI form shows them, steps read them from `ctx.parameters`."""
    plan = DayPlan(day.flow_name, list(day.migrations), steps, [(u.preview, u.transform) for u in code_updates or []],
                   change_set=day.change_set is not None)
    if day.change_set:   # the team's branch to merge, gated (expectations/change_set.py)
        parameters = [inspect.Parameter("change_ref", inspect.Parameter.KEYWORD_ONLY, default=day.change_set,
                                        annotation=ChangeRef), *(parameters or [])]

    def run_plan_day(environment: Environment = "staging", dry_run: bool = False,
                     require_approval: bool | None = None, batch_size: BatchSize = 2000,
                     lock_timeout_ms: LockTimeoutMs = 2000, statement_timeout_ms: SessionTimeoutMs = 600_000,
                     idle_in_transaction_timeout_ms: SessionTimeoutMs = 60_000,
                     accept_trigger_effects: list[str] | None = None, target: str | None = None,
                     **own: object) -> DayOutcome:
        return run_day(plan, environment=environment, dry_run=dry_run, require_approval=require_approval,
                       batch_size=batch_size, lock_timeout_ms=lock_timeout_ms,
                       statement_timeout_ms=statement_timeout_ms,
                       idle_in_transaction_timeout_ms=idle_in_transaction_timeout_ms,
                       accept_trigger_effects=accept_trigger_effects, target=target, parameters=own)

    common = [p for p in inspect.signature(run_plan_day).parameters.values() if p.kind != p.VAR_KEYWORD]
    run_plan_day.__signature__ = inspect.Signature(
        [*common, *(p.replace(kind=p.KEYWORD_ONLY) for p in parameters or [])],
        return_annotation=DayOutcome)

    module, name = day.entrypoint.split(":")
    run_plan_day.__module__, run_plan_day.__name__, run_plan_day.__qualname__ = module, name, name
    day_flow = flow(name=day.flow_name, description=description)(run_plan_day)
    day_flow.plan = plan
    return day_flow

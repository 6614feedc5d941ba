"""Week 0, Day 5 of the plan: Security Fixes. eval() -> simpleeval (Task 3.1), authorization
(Task 3.2), and their validation (Task 3.3). No migration; the same shape as Day 1-2:
preflight, baseline smoke, backup, approval, code updates (each a commit, deployed, reverted
on failure), gates, 13-pattern smoke.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow

from runbook.tasks.steps.day import DayOutcome, DayPlan, run_day, smoke_step
from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.gate_result import GateResult
from runbook.tasks.code import git_ops
from runbook.tasks.steps.approval import approval_step
from runbook.expectations.authorization import authorization_gate
from runbook.tasks.steps.code_update import code_update_step
from runbook.tasks.code.authorization import add_authorization
from runbook.tasks.code.simpleeval import convert
from runbook.tasks.target.deploy import api, deployed_commit
from runbook.expectations.evaluator import capture_states, differential_gate, escape_gate, no_eval_gate
from runbook.tasks.steps.migration import backup_step
from runbook.expectations.smoke import sample_inputs
from runbook.tasks.steps.core import Step, gate_step

Environment = Literal["staging", "production"]
FLOW_NAME = "week0-day5-security-fixes"


def simpleeval_transform(checkout, dry_run: bool) -> dict:
    return convert(Path(checkout), dry_run=dry_run).as_dict()


def authorization_transform(checkout, dry_run: bool) -> dict:
    return add_authorization(Path(checkout), dry_run=dry_run).as_dict()


def _states_file(ctx: RunContext) -> Path:
    return ctx.workspace / "tmp" / f"day5-states-{ctx.environment}-{ctx.flow_run_id[:8]}.pkl"


def capture_step() -> Step:
    """Before the change: the deployed (old) code runs every pattern on this environment's
    database; the states its conditions saw are kept for the differential gate."""
    def apply(ctx: RunContext, _adopted) -> dict:
        commit = deployed_commit(ctx)
        report = capture_states(ctx.deploy_dir, ctx.database_url, sample_inputs(ctx.database_url),
                                _states_file(ctx))
        ctx.extra["day5_old_commit"] = commit
        return {"old_commit": commit, "captured": report["captured"], "samples": report["samples"]}
    return Step("evaluator:capture-states", apply)


def differential_check(ctx: RunContext) -> GateResult:
    old_commit = ctx.extra.get("day5_old_commit")
    if not old_commit:
        raise RunbookError("gate:evaluator-differential: no pre-change commit recorded "
                           "(step evaluator:capture-states did not run)")
    old = ctx.workspace / "tmp" / f"day5-old-{ctx.environment}-{ctx.flow_run_id[:8]}"
    git_ops.worktree(ctx.repo, old, old_commit)
    try:
        return differential_gate(old, ctx.deploy_dir, _states_file(ctx))
    finally:
        git_ops.remove_worktree(ctx.repo, old)


def authorization_check(ctx: RunContext) -> GateResult:
    server = api(ctx)
    server.start()
    return authorization_gate(server.base_url, ctx.database_url, ctx.deploy_dir, server.headers())


def day5_steps(ctx: RunContext) -> list[Step]:
    return [
        backup_step(),
        capture_step(),
        approval_step("security fixes (simpleeval condition evaluator, pattern authorization)"),
        code_update_step("code:simpleeval", simpleeval_transform,
                         "Week 0 Day 5: replace eval() in the pattern orchestrator with simpleeval"),
        gate_step("gate:no-eval", lambda c: no_eval_gate(c.deploy_dir)),
        gate_step("gate:evaluator-differential", differential_check),
        gate_step("gate:escape-corpus", lambda c: escape_gate(c.deploy_dir)),
        code_update_step("code:authorization", authorization_transform,
                         "Week 0 Day 5: check the caller's rights (X-DawsOS-Rights) in the "
                         "orchestrator and the pattern API"),
        gate_step("gate:authorization", authorization_check),
        smoke_step("smoke"),
    ]


DAY_5 = DayPlan(FLOW_NAME, [], day5_steps,
                [("simpleeval", simpleeval_transform), ("authorization", authorization_transform)])


@flow(name=FLOW_NAME,
      description="Week 0, Day 5: Security fixes. eval() in the pattern orchestrator replaced "
                  "by simpleeval (no-eval AST gate, old/new differential over real pattern "
                  "states, escape-corpus gate), rights checked in the orchestrator and the API "
                  "(403 + audit gate), 13-pattern smoke.")
def security_fixes(environment: Environment = "staging", dry_run: bool = False,
                   require_approval: bool | None = None, batch_size: int = 2000,
                   lock_timeout_ms: int = 2000) -> DayOutcome:
    return run_day(DAY_5, environment=environment, dry_run=dry_run, require_approval=require_approval,
                   batch_size=batch_size, lock_timeout_ms=lock_timeout_ms)

"""Week 0, Day 5 of the plan: Security Fixes. eval() -> simpleeval (Task 3.1), authorization
(Task 3.2), and their validation (Task 3.3). No migration; the same shape as Day 1-2:
preflight, baseline smoke, backup, approval, code updates (each a commit, deployed, reverted
on failure), gates, 13-pattern smoke.
"""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.week0.day5 import (
    authorization_check,
    differential_check,
    escape_check,
    no_eval_check,
)
from runbook.plan import WEEK0_DAY5
from runbook.tasks.code.transforms import AUTHORIZATION, SIMPLEEVAL
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import code_update
from runbook.tasks.steps.core import Step, gate_step
from runbook.tasks.steps.day import smoke_step
from runbook.tasks.steps.day_flow import plan_day_flow
from runbook.tasks.steps.evaluator import capture_step
from runbook.tasks.steps.migration import backup_step


def steps(ctx: RunContext) -> list[Step]:
    return [
        backup_step(),
        capture_step(),
        approval_step("security fixes (simpleeval condition evaluator, pattern authorization)"),
        code_update(SIMPLEEVAL),
        gate_step("gate:no-eval", no_eval_check),
        gate_step("gate:evaluator-differential", differential_check),
        gate_step("gate:escape-corpus", escape_check),
        code_update(AUTHORIZATION),
        gate_step("gate:authorization", authorization_check),
        smoke_step("smoke"),
    ]


security_fixes = plan_day_flow(
    WEEK0_DAY5, steps, code_updates=[SIMPLEEVAL, AUTHORIZATION],
    description="Week 0, Day 5: Security fixes. eval() in the pattern orchestrator replaced "
                "by simpleeval (no-eval AST gate, old/new differential over real pattern "
                "states, escape-corpus gate), rights checked in the orchestrator and the API "
                "(403 + audit gate), 13-pattern smoke.")

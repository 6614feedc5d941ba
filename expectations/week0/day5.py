"""Gates of Week 0, Day 5 (security fixes): no eval left, the new evaluator decides every real
condition as the old one did, the escape corpus is refused, and rights are enforced."""
from __future__ import annotations

from pathlib import Path

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.expectations.authorization import authorization_gate
from runbook.expectations.deployed import served_checkout
from runbook.expectations.evaluator import differential_gate, escape_gate, no_eval_gate
from runbook.gate_result import GateResult
from runbook.tasks.code import git_ops
from runbook.tasks.target.deploy import api


def states_file(ctx: RunContext) -> Path:
    """Where the condition states the old code saw are kept for the differential gate."""
    return ctx.workspace / "tmp" / f"day5-states-{ctx.slot}-{ctx.flow_run_id[:8]}.pkl"


def no_eval_check(ctx: RunContext) -> GateResult:
    return no_eval_gate(served_checkout(ctx))


def escape_check(ctx: RunContext) -> GateResult:
    return escape_gate(served_checkout(ctx))


def differential_check(ctx: RunContext) -> GateResult:
    old_commit = ctx.extra.get("day5_old_commit")
    if not old_commit:
        raise RunbookError("gate:evaluator-differential: no pre-change commit recorded "
                           "(step evaluator:capture-states did not run)")
    old = ctx.workspace / "tmp" / f"day5-old-{ctx.slot}-{ctx.flow_run_id[:8]}"
    git_ops.worktree(ctx.repo, old, old_commit)
    try:
        return differential_gate(old, served_checkout(ctx), states_file(ctx))
    finally:
        git_ops.remove_worktree(ctx.repo, old)


def authorization_check(ctx: RunContext) -> GateResult:
    checkout = served_checkout(ctx)
    server = api(ctx)
    return authorization_gate(server.base_url, ctx.database_url, checkout, server.jwt_secret)

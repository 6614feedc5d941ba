"""Step of Week 0, Day 5 that runs before the code changes: the old evaluator's view of every
real condition, kept for the differential gate."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.evaluator import capture_states
from runbook.expectations.smoke import sample_inputs
from runbook.expectations.week0.day5 import states_file
from runbook.tasks.steps.core import Step
from runbook.tasks.target.deploy import deployed_commit


def capture_step() -> Step:
    """Before the change: the deployed (old) code runs every pattern on this environment's
    database; the states its conditions saw are kept for the differential gate."""
    def apply(ctx: RunContext, _adopted) -> dict:
        commit = deployed_commit(ctx)
        report = capture_states(ctx.deploy_dir, ctx.database_url, sample_inputs(ctx.database_url),
                                states_file(ctx))
        ctx.extra["day5_old_commit"] = commit
        return {"old_commit": commit, "captured": report["captured"], "samples": report["samples"]}
    return Step("evaluator:capture-states", apply)

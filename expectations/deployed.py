"""What the service runs: a code gate judges the deployed checkout only once the running
service proves (its /health names the commit) that it serves that checkout. With a remote
target (TARGET_API_URL) a deploy command that failed, or "forgot" to restart the service,
would otherwise let the gates pass on code nobody runs."""
from __future__ import annotations

from pathlib import Path

import httpx

from runbook.context import RunContext
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.target import DAWSOS
from runbook.tasks.target.api_server import ApiServer
from runbook.tasks.target.deploy import api, deployed_commit


@gate("target:served-commit", checks="the running target service's /health names the commit the "
      "environment deployed (a remote service really was deployed and restarted)",
      runs_in="before every code gate (Day 1-2 old names, Day 5, Week 1 pattern files, "
              "verification); with TARGET_API_URL, after TARGET_DEPLOY_CMD")
def served_commit_gate(server: ApiServer, expected: str) -> GateResult:
    try:
        served = server.served_commit()
        problem = None if served else f"/health names no {DAWSOS.health_commit_field!r}"
    except (httpx.HTTPError, ValueError) as exc:
        served, problem = None, f"/health unreadable ({type(exc).__name__})"
    if served and served != expected:
        problem = f"the service runs {served}, the environment deployed {expected}"
    return GateResult(
        name="target:served-commit", passed=problem is None,
        expectation="the service at the target API URL runs the deployed commit",
        observed=served, expected=expected,
        sample=[{"problem": problem, "served": served, "deployed": expected}] if problem else [],
        details={"managed": server.managed})


def served_checkout(ctx: RunContext) -> Path:
    """The deployed checkout, for a code gate, once the service proves it runs it."""
    server = api(ctx)
    server.start()
    served_commit_gate(server, deployed_commit(ctx)).raise_if_failed()
    return ctx.deploy_dir

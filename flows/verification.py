"""Scheduled verification: re-run every gate that should hold so far, change nothing.

Which gates are due comes from the target's ledger (migrations applied, code steps applied and
not reverted). Each failing gate is published and alerted on Slack; the run ends Failed when
any gate failed, so the flow-run history is the green/red record the contract flow reads.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from runbook.context import build_context
from runbook.errors import RunbookError
from runbook.expectations.verification import Check, LedgerView, due_checks, read_ledger
from runbook.gate_result import GateResult
from runbook.plan import VERIFICATION_FLOW, Environment
from runbook.tasks.notify import notify_failure
from runbook.tasks.steps.core import publish_gate
from runbook.tasks.steps.day import current_run_id
from runbook.tasks.target.deploy import shutdown

log = logging.getLogger("runbook.verification")


@dataclass
class VerificationOutcome:
    environment: str
    checks: list[str]
    results: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.results if not r["passed"]]


def _run_check(check: Check, ctx, view: LedgerView) -> list[GateResult]:
    def body() -> list[dict]:
        try:
            results = check.run(ctx, view)
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is a failed gate
            results = [GateResult(check.name, False, f"{check.name} can be checked",
                                  observed=f"{type(exc).__name__}: {exc}"[:500], expected="the check runs")]
        for r in results:
            publish_gate(r)
        return [r.to_dict() for r in results]
    t = task(body, name=f"verify:{check.name}", cache_policy=None, persist_result=False)
    return [GateResult(**d) for d in t()]


@flow(name=VERIFICATION_FLOW, description="Read-only: re-run every gate of the steps the ledger "
      "records as applied (verify.sql, parity, integrity, catalog, code, smoke); Slack alert and a "
      "Failed run on any drift.")
def verification(environment: Environment = "staging") -> VerificationOutcome:
    ctx = build_context(VERIFICATION_FLOW, environment, current_run_id())
    view = read_ledger(ctx.database_url)
    checks = due_checks(view, ctx)
    outcome = VerificationOutcome(environment, [c.name for c in checks])
    try:
        for check in checks:
            outcome.results += [r.to_dict() for r in _run_check(check, ctx, view)]
    finally:
        shutdown(ctx)
    try:
        create_table_artifact(key="verification", description=f"verification on {environment}", table=[
            {"gate": r["name"], "passed": r["passed"], "observed": str(r["observed"])[:200],
             "expected": str(r["expected"])[:200]} for r in outcome.results])
    except Exception:  # a view only
        log.debug("no verification artifact", exc_info=True)
    for r in outcome.failed:
        notify_failure(title=f"Drift: gate {r['name']} failed", flow_name=VERIFICATION_FLOW,
                       environment=environment, gate=GateResult(**r), rolled_back=["nothing (read-only)"],
                       flow_run_id=ctx.flow_run_id)
    if outcome.failed:
        names = ", ".join(r["name"] for r in outcome.failed)
        raise RunbookError(f"verification on {environment}: {len(outcome.failed)} gate(s) failed: {names}")
    return outcome

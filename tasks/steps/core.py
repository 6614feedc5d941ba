"""Steps (apply / verify / revert) and how a flow runs them.

In process, a Prefect transaction drives rollback: each applied step's revert is its task's
on_rollback hook, called in reverse order when a later step fails. Every apply and revert is
also written to the ledger, so a run killed outright (no hook runs) can be resumed or rolled
back by the next run from what the ledger says.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.transactions import get_transaction, transaction

from runbook import failpoints
from runbook.context import RunContext
from runbook.errors import GateFailed
from runbook.gate_result import GateResult
from runbook.tasks.database import ledger
from runbook.tasks.notify.redact import configured_secrets, redact

log = logging.getLogger("runbook.steps")

# (ctx, adopted data) -> data; data with "noop": True says the step found nothing to apply (so
# there is nothing to revert, and the ledger records nothing)
Apply = Callable[[RunContext, dict | None], dict | None]
Revert = Callable[[RunContext, dict], None]


@dataclass
class Step:
    name: str                          # ledger name, e.g. "014:migrate"
    apply: Apply
    revert: Revert | None = None
    retries: int = 0
    # revert even a failed apply (its partial effect), e.g. a half-applied migration
    revert_partial: bool = False


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def publish_gate(result: GateResult) -> GateResult:
    """Keep a gate's structured result as a Prefect artifact (no-op outside a run)."""
    try:
        create_markdown_artifact(key=f"gate-{_slug(result.name)}"[:100],
                                 markdown=redact(result.to_markdown(), configured_secrets()),
                                 description=f"gate {result.name}: {'passed' if result.passed else 'FAILED'}")
    except Exception:  # artifacts are a view; never fail a step for one
        log.debug("could not create artifact for %s", result.name, exc_info=True)
    return result


class RunState:
    """What one run applied (in order) and reverted; read by the flow for alerts and reports."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.applied: list[str] = []
        self.reverted: list[str] = []
        self.revert_errors: list[str] = []
        self.timings: dict[str, float] = {}
        self.adoptable = {r["step"]: r for r in ledger.unreverted_steps(ctx.database_url, ctx.flow_name)
                          if r["flow_run_id"] != ctx.flow_run_id}


def _make_task(step: Step, state: RunState):
    ctx = state.ctx

    def body() -> dict:
        adopted = state.adoptable.get(step.name)
        started = time.perf_counter()
        failpoints.reached(f"before:{step.name}")
        try:
            data = step.apply(ctx, adopted["data"] if adopted else None) or {}
        except Exception:
            if step.revert_partial and step.revert:
                log.warning("step %s failed; reverting its partial effect", step.name)
                try:
                    step.revert(ctx, {})
                    ledger.record_step(ctx.database_url, ctx.flow_run_id, ctx.flow_name, step.name,
                                       "reverted", {"partial": True})
                    state.reverted.append(f"{step.name} (partial)")
                except Exception as exc:  # noqa: BLE001 - the alert must say so
                    log.exception("revert of the partial %s failed", step.name)
                    state.revert_errors.append(f"{step.name} (partial): {exc}")
            raise
        failpoints.reached(f"applied:{step.name}")
        if step.revert and data.get("noop"):
            get_transaction().set("data", data)      # nothing applied: nothing to take back
        elif step.revert:
            ledger.record_step(ctx.database_url, ctx.flow_run_id, ctx.flow_name, step.name, "applied", data)
            if adopted:  # the crashed run's record is now this run's responsibility
                ledger.record_step(ctx.database_url, adopted["flow_run_id"], ctx.flow_name, step.name,
                                   "reverted", {"adopted_by": ctx.flow_run_id})
            get_transaction().set("data", data)
        failpoints.reached(f"recorded:{step.name}")
        state.applied.append(step.name)
        state.timings[step.name] = round(time.perf_counter() - started, 2)
        log.info("step %s done in %.2fs", step.name, state.timings[step.name])
        return data

    def on_rollback(txn) -> None:
        data = txn.get("data", {})
        if data.get("noop"):
            return
        try:
            step.revert(ctx, data)
            ledger.record_step(ctx.database_url, ctx.flow_run_id, ctx.flow_name, step.name, "reverted", data)
            state.reverted.append(step.name)
        except Exception as exc:  # keep reverting the rest; report this one
            log.exception("revert of %s failed", step.name)
            state.revert_errors.append(f"{step.name}: {exc}")

    t = task(body, name=step.name, retries=step.retries, retry_delay_seconds=2,
             cache_policy=None, persist_result=False)
    if step.revert:
        t.on_rollback(on_rollback)
    return t


def run_steps(state: RunState, steps: list[Step]) -> dict[str, Any]:
    """Run steps in order inside one Prefect transaction; a failure reverts what was applied."""
    results: dict[str, Any] = {}
    with transaction():
        for step in steps:
            results[step.name] = _make_task(step, state)()
    return results


def gate_step(name: str, check: Callable[[RunContext], GateResult | list[GateResult]], retries: int = 0) -> Step:
    """A step that only checks: publishes each result and fails the run if any did not hold."""
    def apply(ctx: RunContext, _adopted) -> dict:
        out = check(ctx)
        results = out if isinstance(out, list) else [out]
        for r in results:
            publish_gate(r)
        for r in results:
            if not r.passed:
                raise GateFailed(r)
        return {"gates": [r.name for r in results]}
    return Step(name, apply, retries=retries)

"""The plan's Rollback Procedures as flows (deployments-to-be), each timed against its budget.

* `rollback_migration`: a migration's down.sql by id, with the plan's 014 procedure around it:
  the code steps of the run that applied it are reverted first (old code runs on both column
  sets while the sync trigger exists; new code would break once the new columns are gone),
  then down.sql, a per-column restore proof, the ledger, and a smoke of the application.
* `rollback_code`: `git revert` of the code steps one run applied (from the ledger's
  run_steps) and redeploy, then smoke.

Budgets are the plan's: migration 014 rollback < 15 min, code rollback < 5 min. The elapsed
time is in the artifact and the return value; Slack hears about it when over budget.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from runbook.context import RunContext, build_context
from runbook.errors import GateFailed, RunbookError
from runbook.expectations.restore import restore_proof, surviving_columns_unchanged
from runbook.gate_result import GateResult
from runbook.plan import ENVIRONMENTS, ROLLBACK_CODE_FLOW, ROLLBACK_MIGRATION_FLOW, Environment
from runbook.tasks.database import lease, ledger, migrate, migration_files, restore_baseline
from runbook.tasks.database.catalog import column_checksums
from runbook.tasks.notify import notify_failure, post_alert
from runbook.tasks.steps.code_update import code_update_step
from runbook.tasks.steps.core import publish_gate
from runbook.tasks.steps.day import current_run_id, smoke_step
from runbook.tasks.steps.migration import options
from runbook.tasks.steps.recovery import close_crashed, recover_crashed
from runbook.tasks.target.deploy import shutdown

log = logging.getLogger("runbook.rollback")
MIGRATION_BUDGET_S = 15 * 60
CODE_BUDGET_S = 5 * 60


@dataclass
class RollbackReport:
    what: str
    environment: str
    elapsed_s: float
    budget_s: float
    reverted: list[str] = field(default_factory=list)
    gates: list[dict] = field(default_factory=list)

    @property
    def within_budget(self) -> bool:
        return self.elapsed_s <= self.budget_s

    def to_dict(self) -> dict:
        return {**asdict(self), "within_budget": self.within_budget}

    def to_markdown(self) -> str:
        mark = "✅" if self.within_budget else "⚠️"
        lines = [f"# Rollback: {self.what} ({self.environment})", "",
                 f"{mark} **{self.elapsed_s:.1f} s** against the plan's budget of {self.budget_s / 60:.0f} min", "",
                 "**Reverted:** " + (", ".join(self.reverted) or "nothing")]
        lines += [f"- {'✅' if g['passed'] else '❌'} {g['name']}: {g['observed']}" for g in self.gates]
        return "\n".join(lines)


def _finish(report: RollbackReport, ctx: RunContext) -> dict:
    try:
        create_markdown_artifact(key="rollback-timing", markdown=report.to_markdown(),
                                 description=f"rollback of {report.what}: {report.elapsed_s:.1f}s")
    except Exception:  # a view only
        log.debug("no rollback artifact", exc_info=True)
    if not report.within_budget:
        post_alert(f"Rollback of {report.what} on {report.environment} took {report.elapsed_s / 60:.1f} min, "
                   f"over the plan's budget of {report.budget_s / 60:.0f} min")
    return report.to_dict()


def code_steps(url: str, flow_run_id: str | None = None, flow_name: str | None = None) -> list[dict]:
    """Code steps (data has a commit) still applied, newest first: of one run, or of every run of
    a flow (a re-run may have adopted what a killed run committed)."""
    with ledger.cursor(url) as cur:
        cur.execute("""SELECT DISTINCT ON (flow_run_id, step) id, flow_run_id, flow_name, step, status, data
                         FROM runbook.run_steps
                        WHERE (%(run)s::text IS NULL OR flow_run_id = %(run)s)
                          AND (%(flow)s::text IS NULL OR flow_name = %(flow)s)
                        ORDER BY flow_run_id, step, id DESC""", {"run": flow_run_id, "flow": flow_name})
        rows = cur.fetchall()
    return sorted([r for r in rows if r["status"] == "applied" and r["data"].get("commit")],
                  key=lambda r: r["id"], reverse=True)


def revert_code_steps(ctx: RunContext, rows: list[dict]) -> list[str]:
    done = []
    for row in rows:
        step = code_update_step(row["step"], lambda _wt, _dry: {}, "")
        step.revert(ctx, row["data"])           # git revert on the env branch + redeploy previous
        ledger.record_step(ctx.database_url, row["flow_run_id"], row["flow_name"], row["step"], "reverted",
                           {"rolled_back_by": ctx.flow_run_id})
        done.append(f"{row['step']} ({row['data']['commit'][:12]})")
    return done


def _flow_of_run(url: str, flow_run_id: str) -> str | None:
    with ledger.cursor(url) as cur:
        cur.execute("SELECT flow_name FROM runbook.runs WHERE flow_run_id = %s UNION ALL "
                    "SELECT flow_name FROM runbook.run_steps WHERE flow_run_id = %s LIMIT 1",
                    (flow_run_id, flow_run_id))
        row = cur.fetchone()
    return row["flow_name"] if row else None


def _smoke(ctx: RunContext) -> GateResult:
    step = smoke_step("smoke:after-rollback")
    step.apply(ctx, None)          # raises GateFailed when a pattern fails
    return GateResult("smoke:after-rollback", True, "every pattern runs through the API", "ok", "ok")


def _guarded(ctx: RunContext, flow_name: str, environment: str, body):
    try:
        return body()
    except Exception as exc:
        notify_failure(flow_name=flow_name, environment=environment,
                       gate=exc.result if isinstance(exc, GateFailed) else None, error=exc,
                       rolled_back=["rollback incomplete: see the run"], flow_run_id=ctx.flow_run_id)
        raise
    finally:
        shutdown(ctx)


@flow(name=ROLLBACK_MIGRATION_FLOW, description="Roll back one migration by id: revert the code "
      "of the run that applied it, down.sql, per-column restore proof, ledger, smoke. Timed "
      "against the plan's budget (< 15 min).")
def rollback_migration(migration_id: str, environment: Environment = "staging",
                       revert_code: bool = True, lock_timeout_ms: int = 2000) -> dict:
    ctx = build_context(ROLLBACK_MIGRATION_FLOW, environment, current_run_id(), lock_timeout_ms=lock_timeout_ms)
    m = migration_files.load(migration_id)
    ledger.ensure(ctx.database_url)
    with lease.held(ctx.database_url, ctx.flow_run_id, ROLLBACK_MIGRATION_FLOW):
        recover_crashed(ctx)   # what killed runs left: commits the ledger never heard of, …
        state = ledger.migration_state(ctx.database_url, m.id)
        if not state or state["status"] not in ("applied", "applying"):
            close_crashed(ctx)     # a killed run that applied none of it: nothing of it to take back
    if not state or state["status"] not in ("applied", "applying"):
        raise RunbookError(f"migration {m.id} is not applied on {environment} "
                           f"(ledger: {state['status'] if state else 'no record'}); nothing to roll back")
    started = time.monotonic()
    report = RollbackReport(f"migration {m.id}", environment, 0.0, MIGRATION_BUDGET_S)

    def body() -> dict:
        with lease.held(ctx.database_url, ctx.flow_run_id, ROLLBACK_MIGRATION_FLOW):
            applier = _flow_of_run(ctx.database_url, state["flow_run_id"]) if state["flow_run_id"] else None
            if revert_code and applier:
                # the code of every run of the plan day that applied it (re-runs included)
                report.reverted += revert_code_steps(ctx, code_steps(ctx.database_url, flow_name=applier))
            baseline = restore_baseline.load(ctx.database_url, m.id)
            before = column_checksums(ctx.database_url) if baseline is None else None
            migrate.revert(ctx.database_url, m, options(ctx, m))
            report.reverted.append(f"migration {m.id}")
            _mark_migration_steps_reverted(ctx, m.id)
            # against the baseline taken before the apply; an apply older than restore
            # baselines gets the per-column comparison around the revert (quiet databases)
            proof = publish_gate(
                restore_proof(ctx.database_url, baseline, name=f"restored:{m.id}") if baseline is not None
                else surviving_columns_unchanged(f"restored:{m.id}", before, column_checksums(ctx.database_url)))
            report.gates.append(proof.to_dict())
            proof.raise_if_failed()
            if baseline is not None:
                restore_baseline.discard(ctx.database_url, baseline)
            report.gates.append(_smoke(ctx).to_dict())
            close_crashed(ctx)      # what killed runs applied is rolled back: they are history
        report.elapsed_s = time.monotonic() - started
        return _finish(report, ctx)
    return _guarded(ctx, ROLLBACK_MIGRATION_FLOW, environment, body)


def _mark_migration_steps_reverted(ctx: RunContext, migration_id: str) -> None:
    """Runs that applied the migration must not adopt or re-check it as applied."""
    with ledger.cursor(ctx.database_url) as cur:
        cur.execute("""SELECT DISTINCT ON (flow_run_id) flow_run_id, flow_name, status FROM runbook.run_steps
                        WHERE step = %s ORDER BY flow_run_id, id DESC""", (f"{migration_id}:apply",))
        rows = cur.fetchall()
    for r in rows:
        if r["status"] == "applied":
            ledger.record_step(ctx.database_url, r["flow_run_id"], r["flow_name"], f"{migration_id}:apply",
                               "reverted", {"rolled_back_by": ctx.flow_run_id})


def environment_of_run(flow_run_id: str) -> str:
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
    except Exception as exc:  # noqa: BLE001 - name the run, not the HTTP detail
        raise RunbookError(f"flow run {flow_run_id!r} not found in the Prefect API ({type(exc).__name__})") from None
    env = (run.parameters or {}).get("environment")
    if env not in ENVIRONMENTS:
        raise RunbookError(f"flow run {flow_run_id!r} has no environment parameter; pass --environment")
    return env


@flow(name=ROLLBACK_CODE_FLOW, description="Roll back a run's code changes: git revert of each "
      "code step it applied (ledger run_steps), redeploy, smoke. Timed against the plan's "
      "budget (< 5 min).")
def rollback_code(run: str, environment: Environment | None = None) -> dict:
    environment = environment or environment_of_run(run)
    ctx = build_context(ROLLBACK_CODE_FLOW, environment, current_run_id())
    ledger.ensure(ctx.database_url)
    with lease.held(ctx.database_url, ctx.flow_run_id, ROLLBACK_CODE_FLOW):
        recover_crashed(ctx)   # a killed run's commits the ledger never heard of count as its own
    if not code_steps(ctx.database_url, run):
        raise RunbookError(f"flow run {run} has no applied code step on {environment} "
                           "(ledger runbook.run_steps); nothing to roll back")
    started = time.monotonic()
    report = RollbackReport(f"code of run {run}", environment, 0.0, CODE_BUDGET_S)

    def body() -> dict:
        with lease.held(ctx.database_url, ctx.flow_run_id, ROLLBACK_CODE_FLOW):
            report.reverted += revert_code_steps(ctx, code_steps(ctx.database_url, run))
            report.gates.append(_smoke(ctx).to_dict())
        report.elapsed_s = time.monotonic() - started
        return _finish(report, ctx)
    return _guarded(ctx, ROLLBACK_CODE_FLOW, environment, body)


rollback = rollback_migration   # the name deployments/catalog.py serves (rollback_code: see README)

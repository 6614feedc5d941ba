"""How every plan day runs: context, lock, preflight, steps in a transaction, and on failure
rollback + proof of restore + Slack alert, ending the run Failed."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from runbook.context import RunContext, build_context
from runbook.errors import GateFailed
from runbook.expectations.preflight import preflight
from runbook.expectations.privileges import privileges
from runbook.expectations.smoke import smoke
from runbook.gate_result import GateResult
from runbook.tasks.code import git_ops
from runbook.tasks.database import lease, ledger, migration_files
from runbook.tasks.database.migration_files import Migration
from runbook.tasks.notify import notify_failure
from runbook.tasks.notify.redact import install_run_log_redaction
from runbook.expectations.change_set import change_set_gates
from runbook.tasks.steps.code_update import Transform, change_ref, change_set_diff, preview
from runbook.tasks.steps.core import RunState, Step, gate_step, publish_gate, run_steps
from runbook.tasks.steps.recovery import close_crashed, recover_crashed
from runbook.tasks.target.deploy import api, deployed_commit, shutdown

log = logging.getLogger("runbook.flows")


@dataclass
class DayPlan:
    """A plan day: its migrations (for preflight), its steps, and dry-run previews."""
    flow_name: str
    migration_ids: list[str]
    steps: Callable[[RunContext], list[Step]]
    transforms: list[tuple[str, Transform]] = field(default_factory=list)
    change_set: bool = False      # its code is the team's branch (parameter change_ref), gated before it merges

    def migrations(self) -> list[Migration]:
        return [migration_files.load(mid) for mid in self.migration_ids]


@dataclass
class DayOutcome:
    flow_name: str
    environment: str
    status: str                       # "completed" | "dry-run"
    applied: list[str]
    timings: dict = field(default_factory=dict)   # step -> seconds


def smoke_step(name: str = "smoke") -> Step:
    def check(ctx: RunContext) -> GateResult:
        server = api(ctx)
        server.start()
        result, runs = smoke(server.base_url, ctx.deploy_dir, ctx.database_url, server.headers())
        try:
            create_table_artifact(key=f"{name.replace(':', '-')}-latency", table=[
                {"pattern": r.pattern, "status": r.status, "rows": r.rows, "ms": round(r.ms, 1)} for r in runs],
                description="pattern smoke: status, rows and latency per pattern")
        except Exception:
            pass
        ctx.extra.setdefault("smoke_runs", {})[name] = runs
        return result
    return gate_step(name, check)


def preflight_step(plan: DayPlan) -> Step:
    def check(ctx: RunContext) -> list[GateResult]:
        out = change_set_gates(ctx) if plan.change_set else []
        migrations = plan.migrations()
        if not migrations or not all(r.passed for r in out):
            return out
        out.append(privileges(ctx, rehearses=True))
        if not out[-1].passed:   # the other checks would stop at the first object they may not read
            return out
        for m in migrations:
            out += preflight(ctx, m)
        return out
    return gate_step("preflight", check)


def current_run_id() -> str:
    rid = flow_run.get_id()
    return str(rid) if rid else f"local-{uuid.uuid4()}"


def dry_run_report(ctx: RunContext, plan: DayPlan) -> dict:
    parts = []
    for m in plan.migrations():
        for s in m.up_sections(ctx.database_url):
            parts.append(f"-- {m.id} / {s.name}{'' if s.transactional else ' (no transaction)'}\n{s.preview()}")
    sql_text = "\n\n".join(parts)
    previews = preview(ctx, plan.transforms) if plan.transforms else {}
    if plan.change_set:
        previews[f"change set {change_ref(ctx)}"] = {"diff": change_set_diff(ctx)}
    md = ["# Dry run", "", "## SQL", "```sql", sql_text, "```"]
    for name, rep in previews.items():
        md += ["", f"## Code: {name}", "```diff", (rep.get("diff") or "(no change)")[:60000], "```"]
    try:
        create_markdown_artifact(key="dry-run", markdown="\n".join(md), description="SQL and code diff of this run")
    except Exception:
        pass
    print("\n".join(md))
    return {"sql": sql_text, "code": previews}


def _baseline(ctx: RunContext) -> dict:
    return {"commit": deployed_commit(ctx)}


def restore_report(ctx: RunContext, baseline: dict, state: RunState) -> GateResult:
    """After a rollback: is the environment back where the run found it?"""
    problems = []
    now = deployed_commit(ctx)
    if now != baseline["commit"]:
        problems.append({"what": "deployed commit", "before": baseline["commit"][:12], "after": now[:12]})
    for check in ctx.extra.get("restore_checks", []):
        problems += check.sample
    problems += [{"what": "revert error", "detail": e} for e in state.revert_errors]
    return GateResult(name="rollback:restored", passed=not problems,
                      expectation="code, schema and data are back to their state before the run",
                      observed=f"{len(problems)} differences", expected="0 differences", sample=problems)


def _summary_artifact(state: RunState) -> None:
    try:
        create_table_artifact(key="run-summary", description="steps of this run and their duration",
                              table=[{"step": k, "seconds": v} for k, v in state.timings.items()])
    except Exception:
        pass


def run_day(plan: DayPlan, *, environment: str, dry_run: bool = False, require_approval: bool | None = None,
            batch_size: int = 2000, lock_timeout_ms: int = 2000, target: str | None = None,
            parameters: dict | None = None, **database: object) -> DayOutcome:
    """`database`: the statement/idle timeouts and accepted trigger effects (build_context);
    `parameters`: the day's own parameters (ctx.parameters); `target`: a fleet target."""
    install_run_log_redaction()
    ctx = build_context(plan.flow_name, environment, current_run_id(), dry_run=dry_run,
                        batch_size=batch_size, lock_timeout_ms=lock_timeout_ms, target=target, **database)
    ctx.parameters = dict(parameters or {})
    ctx.extra["require_approval"] = (environment == "production") if require_approval is None else require_approval
    ledger.ensure(ctx.database_url)
    git_ops.ensure_repo(ctx.repo)
    with lease.held(ctx.database_url, ctx.flow_run_id, plan.flow_name):
        if dry_run:
            run_steps(RunState(ctx), [preflight_step(plan)])
            dry_run_report(ctx, plan)
            return DayOutcome(plan.flow_name, environment, "dry-run", [])
        recover_crashed(ctx)   # before anything is adopted: what killed runs left, in the ledger
        baseline = _baseline(ctx)
        state = RunState(ctx)
        try:
            run_steps(state, [preflight_step(plan), smoke_step("smoke:baseline"), *plan.steps(ctx)])
            _summary_artifact(state)
            # it adopted what killed runs of its flow left: those are history now
            close_crashed(ctx, ctx.flow_name)
            return DayOutcome(plan.flow_name, environment, "completed", state.applied,
                              timings=state.timings)
        except Exception as exc:
            restored = publish_gate(restore_report(ctx, baseline, state))
            gate = exc.result if isinstance(exc, GateFailed) else None
            rolled_back = list(state.reverted) + [f"NOT restored: {e}" for e in state.revert_errors]
            if not restored.passed:
                rolled_back.append(f"restore check failed: {restored.observed}")
            notify_failure(flow_name=plan.flow_name, environment=f"{ctx.target} ({environment})" if ctx.target else environment, gate=gate, error=exc,
                           rolled_back=rolled_back or ["nothing had been applied"],
                           flow_run_id=ctx.flow_run_id)
            raise
        finally:
            shutdown(ctx)


__all__ = ["DayOutcome", "DayPlan", "run_day", "smoke_step"]

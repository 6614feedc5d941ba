"""One plan day across the fleet (targets.toml), on a Prefect work pool: staging targets first,
then one canary, then the rest with bounded concurrency. The first failure halts the rollout:
targets that finished stay as they are, the failed one has rolled itself back (its own run's
rollback), the rest are not started. Production waves wait for one approval in the UI."""
from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from runbook.errors import RunbookError
from runbook.plan import ROLLOUT_FLOW, by_key
from runbook.settings import get_settings
from runbook.targets import load_targets, rollout_waves
from runbook.tasks.steps.approval import ask_approval
from runbook.tasks.steps.fleet import NOT_STARTED, TargetRun, run_wave


@flow(name=ROLLOUT_FLOW, description="Roll one plan day out across the fleet in targets.toml: "
      "staging, one canary, then the rest (bounded concurrency); halts at the first failure.")
def rollout(plan_day: str, max_parallel: int = 2, require_approval: bool = True,
            batch_size: int = 2000, lock_timeout_ms: int = 2000) -> list[dict]:
    day = by_key(plan_day)
    if not 1 <= max_parallel <= 32:
        raise RunbookError(f"parameter max_parallel must be between 1 and 32, not {max_parallel}")
    waves = rollout_waves(load_targets(get_settings().runbook_targets))
    deployment = f"{day.flow_name}/{day.key}"
    parameters = {"require_approval": False, "batch_size": batch_size, "lock_timeout_ms": lock_timeout_ms}
    runs: list[TargetRun] = []
    for wave in waves:
        if runs and not all(r.ok for r in runs):
            runs += [TargetRun(t.name, t.role, NOT_STARTED) for t in wave]
            continue
        if require_approval and wave[0].environment == "production" and not _asked(runs):
            ask_approval(f"{day.key} on the production fleet", ", ".join(t.name for t in wave),
                         "Staging passed; the canary goes first.")
        runs += run_wave(deployment, wave, parameters, max_parallel)
    table = [vars(r) for r in runs]
    create_table_artifact(key="fleet-rollout", table=table, description=f"{day.key} across the fleet")
    failed = [r for r in runs if not r.ok and r.state != NOT_STARTED]
    if failed:
        skipped = [r.target for r in runs if r.state == NOT_STARTED]
        raise RunbookError(f"rollout of {day.key} halted: {failed[0].target} ended {failed[0].state}"
                           + (f"; not started: {', '.join(skipped)}" if skipped else "")
                           + (f" ({failed[0].message[:300]})" if failed[0].message else ""))
    return table


def _asked(runs: list[TargetRun]) -> bool:
    """The production approval is asked once, before the first production wave."""
    return any(r.role != "staging" for r in runs)

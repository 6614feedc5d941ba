"""Running one plan day on fleet targets: each target's run is a run of the day's deployment
on the work pool (a subflow run of the rollout), waves with bounded concurrency, and nothing new
started after the first failure."""
from __future__ import annotations

import contextvars
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from runbook.targets import FleetTarget

NOT_STARTED = "NOT STARTED"


@dataclass
class TargetRun:
    target: str
    role: str
    state: str                     # COMPLETED | FAILED | CRASHED | CANCELLED | NOT STARTED
    flow_run_id: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"


def run_on_target(deployment: str, target: FleetTarget, parameters: dict) -> TargetRun:
    from prefect.deployments import run_deployment

    run = run_deployment(name=deployment, parameters={**parameters, "environment": target.environment,
                                                      "target": target.name},
                         flow_run_name=f"{target.name}", timeout=None, poll_interval=2, as_subflow=True)
    state = run.state
    return TargetRun(target.name, target.role, state.type.value if state else "UNKNOWN", str(run.id),
                     (state.message or "") if state else "")


def run_wave(deployment: str, wave: list[FleetTarget], parameters: dict, max_parallel: int) -> list[TargetRun]:
    """At most `max_parallel` targets at once; after a failure no further target starts (those
    already running finish, each rolling itself back if it fails)."""
    done: list[TargetRun] = []
    queue = list(wave)
    with ThreadPoolExecutor(max_workers=max_parallel) as pool:
        running: set[Future] = set()
        while queue or running:
            while queue and len(running) < max_parallel and all(r.ok for r in done):
                # each thread runs in a copy of this context: the runs stay subflows of the rollout
                running.add(pool.submit(contextvars.copy_context().run, run_on_target, deployment,
                                        queue.pop(0), parameters))
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            done += [f.result() for f in finished]
    return done + [TargetRun(t.name, t.role, NOT_STARTED) for t in queue]

"""Turn the catalog into Prefect RunnerDeployments, without touching any server.

Flows are imported one by one: a flow module that does not exist yet, or does not import,
is skipped with its reason, so the rest are still served.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from prefect import Flow
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

from runbook.deployments.catalog import DeploymentSpec, catalog
from runbook.deployments.settings import ServeSettings


class FlowUnavailable(Exception):
    """A catalog flow cannot be loaded (yet); the reason is one line."""


@dataclass(frozen=True)
class Skipped:
    entrypoint: str
    reason: str


def load_flow(entrypoint: str) -> Flow:
    module_name, func = entrypoint.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name + ".").startswith(exc.name + "."):
            raise FlowUnavailable(f"module {module_name} does not exist yet") from None
        raise FlowUnavailable(f"{module_name} does not import: {exc}") from None
    except Exception as exc:  # noqa: BLE001  (a module being written may be broken: serve the rest)
        raise FlowUnavailable(f"{module_name} does not import: {type(exc).__name__}: {exc}") from None
    obj = getattr(module, func, None)
    if not isinstance(obj, Flow):
        raise FlowUnavailable(f"{module_name} has no @flow named {func!r}")
    return obj


def description(spec: DeploymentSpec, flow: Flow) -> str:
    return spec.description + (f"\n\n{flow.description}" if flow.description else "")


def _slug(spec: DeploymentSpec, run: dict) -> str:
    # a stable slug per schedule: re-serving updates the schedule instead of adding one
    return "-".join([spec.schedule or "", *(str(v) for v in run.values())])


def to_deployment(spec: DeploymentSpec, flow: Flow, settings: ServeSettings) -> RunnerDeployment:
    schedules = [Cron(settings.cron_for(spec.schedule), timezone=settings.schedule_timezone,
                      parameters=dict(run), slug=_slug(spec, run))
                 for run in spec.schedule_runs] if spec.schedule else None
    # module path entrypoints: runs import the installed package, whatever the runner's cwd
    return flow.to_deployment(
        name=spec.name, tags=list(spec.tags), description=description(spec, flow),
        schedules=schedules, parameters=dict(spec.parameters), enforce_parameter_schema=True,
        entrypoint_type=EntrypointType.MODULE_PATH)


def collect(settings: ServeSettings) -> tuple[list[RunnerDeployment], list[Skipped]]:
    built, skipped = [], []
    for spec in catalog():
        try:
            flow = load_flow(spec.entrypoint)
            built.append(to_deployment(spec, flow, settings))
        except FlowUnavailable as exc:
            skipped.append(Skipped(spec.entrypoint, str(exc)))
        except (TypeError, ValueError) as exc:   # e.g. a parameter type with no JSON schema
            skipped.append(Skipped(spec.entrypoint, f"cannot be deployed: {exc}"))
    return built, skipped


def build_deployments(settings: ServeSettings) -> list[RunnerDeployment]:
    """One RunnerDeployment per catalog flow that imports (pure: no server needed)."""
    return collect(settings)[0]

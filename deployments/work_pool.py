"""`runbook deploy --work-pool NAME`: every flow's deployment registered on a Prefect work pool,
so any number of workers (`prefect worker start --pool NAME`, or Docker/Kubernetes pools) run
them — the distributed counterpart of `runbook serve`, which runs them in one process.

Deployments point at the installed package by module path: a worker needs `dawsos-runbook`
installed and the target's settings (or a targets file) in its environment."""
from __future__ import annotations

from runbook.deployments.build import collect
from runbook.deployments.serve import api_url, check_api
from runbook.deployments.settings import ServeSettings
from runbook.errors import RunbookError


def ensure_pool(name: str, pool_type: str = "process") -> bool:
    """The work pool exists (created as `pool_type` if not); True when this call created it."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type))
            return True
    if pool.type != pool_type:
        raise RunbookError(f"work pool {name!r} exists with type {pool.type!r}, not {pool_type!r}")
    return False


def deploy_to_pool(settings: ServeSettings, pool: str, *, on_skip=None) -> list[str]:
    """Register every loadable flow's deployment on `pool`; their FLOW/DEPLOYMENT names."""
    check_api(api_url())
    deployments, skipped = collect(settings)
    for s in skipped:
        if on_skip:
            on_skip(s)
    if not deployments:
        raise RunbookError("no flow could be loaded to deploy: " + "; ".join(s.reason for s in skipped))
    ensure_pool(pool)
    for d in deployments:
        d.apply(work_pool_name=pool)
    return [f"{d.flow_name}/{d.name}" for d in deployments]

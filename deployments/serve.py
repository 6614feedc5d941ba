"""`runbook serve`: serve every available flow to the Prefect server at PREFECT_API_URL."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

from runbook.deployments.build import Skipped, build_deployments, collect
from runbook.deployments.settings import ServeSettings
from runbook.errors import RunbookError

__all__ = ["Skipped", "api_url", "build_deployments", "check_api", "serve"]


def api_url() -> str:
    """PREFECT_API_URL as Prefect resolves it (env var, else the active profile)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise RunbookError("PREFECT_API_URL is not set: start a server (`prefect server start`) "
                           "and export PREFECT_API_URL=http://127.0.0.1:4200/api")
    return url.rstrip("/")


def _shown(url: str) -> str:
    # a URL may carry credentials: show scheme, host, port and path only
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))


def check_api(url: str, timeout: float = 5.0) -> None:
    """The server answers /health, or one clear line says why not."""
    try:
        response = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError as exc:
        raise RunbookError(f"PREFECT_API_URL {_shown(url)} is not reachable ({type(exc).__name__}): "
                           "is `prefect server start` running?") from None
    if response.status_code != 200:
        raise RunbookError(f"PREFECT_API_URL {_shown(url)} is not a healthy Prefect API "
                           f"(GET /health answered {response.status_code})")


def serve(settings: ServeSettings, *, limit: int | None = None, on_skip=None) -> None:
    """Register the deployments and run their flow runs until interrupted (blocks)."""
    from prefect import serve as prefect_serve

    check_api(api_url())
    deployments, skipped = collect(settings)
    for s in skipped:
        if on_skip:
            on_skip(s)
    if not deployments:
        raise RunbookError("no flow could be loaded to serve: " + "; ".join(s.reason for s in skipped))
    prefect_serve(*deployments, limit=limit)

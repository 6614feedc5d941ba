"""The environment's deployed code: a worktree of TARGET_REPO, and the API serving it.

A managed API (no TARGET_API_URL) is restarted by the runbook on the deployed worktree. A
remote one is deployed by the configured TARGET_DEPLOY_CMD, given the commit; what it then
serves is read back from its /health (see expectations/deployed.py), never assumed."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.redaction import mask_url_password
from runbook.tasks.code import git_ops
from runbook.tasks.target.api_server import ApiServer
from runbook.tasks.target.redis_server import RedisServer
from runbook.tasks.target.upstream import UpstreamControl, UpstreamStandIn

DEPLOY_TIMEOUT_S = 900
# ctx.extra keys: what else the run started beside its API, stopped with it (callables); the
# run's upstream stand-in
ON_SHUTDOWN, UPSTREAM, REDIS = "on_shutdown", "upstream_standin", "redis_server"
REDIS_URL_SETTING = "REDIS_URL"
# the deploy command's environment: these of the runbook's, plus what names the deployment
DEPLOY_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")


def ensure_deployed(ctx: RunContext) -> Path:
    """First use: the environment runs what TARGET_REPO has checked out."""
    if not (ctx.deploy_dir / ".git").exists():
        git_ops.worktree(ctx.repo, ctx.deploy_dir, git_ops.head(ctx.repo))
    return ctx.deploy_dir


def deployed_commit(ctx: RunContext) -> str:
    return git_ops.head(ensure_deployed(ctx))


def api_pid_file(ctx: RunContext) -> Path:
    """Where the environment's managed API keeps its pid: outlives a killed run."""
    return ctx.workspace / "deploy" / f"{ctx.slot}.api.pid"


def redis_dir(ctx: RunContext) -> Path:
    """Where the environment's throwaway Redis keeps its files and pid: outlives a killed run."""
    return ctx.workspace / "redis" / ctx.slot


def api(ctx: RunContext) -> ApiServer:
    """One API per run and environment: managed (uvicorn from the deploy worktree, its market
    data from the run's upstream stand-in, its cache in the run's Redis) or external."""
    server = ctx.extra.get("api")
    if server is None:
        log = ctx.workspace / "logs" / f"api-{ctx.slot}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        server = ApiServer(ensure_deployed(ctx), ctx.database_url, url=ctx.api_url,
                           token=ctx.api_token, jwt_secret=ctx.jwt_secret, log_path=log,
                           pid_file=api_pid_file(ctx),
                           environment=None if ctx.api_url else managed_environment(ctx))
        ctx.extra["api"] = server
    return server


def managed_environment(ctx: RunContext) -> dict[str, str]:
    """A managed API's market data from the run's stand-in, its cache in the run's Redis. With
    no Redis at hand (no REDIS_URL, no redis-server on PATH) it runs uncached, as the target does
    without REDIS_URL: only Week 4's cache gate needs one, and it fails on the bypassed cache;
    the days before Week 4 never needed a Redis and do not start to."""
    env = dict(upstream_standin(ctx).provider_settings())
    if ctx.redis_url or shutil.which("redis-server"):
        env[REDIS_URL_SETTING] = redis_url(ctx)
    return env


def upstream_standin(ctx: RunContext) -> UpstreamStandIn:
    """The run's stand-in for FMP, Polygon and FRED that a managed API is pointed at (stopped
    with the run)."""
    standin = ctx.extra.get(UPSTREAM)
    if standin is None:
        standin = ctx.extra[UPSTREAM] = UpstreamStandIn().start()
        ctx.extra.setdefault(ON_SHUTDOWN, []).append(standin.stop)
    return standin


def redis_url(ctx: RunContext) -> str:
    """The Redis a managed API caches in: REDIS_URL, else a redis-server started for the run in
    its workspace (stopped with the run)."""
    if ctx.redis_url:
        return ctx.redis_url
    server = ctx.extra.get(REDIS)
    if server is None:
        server = ctx.extra[REDIS] = RedisServer(redis_dir(ctx)).start()

        def stop() -> None:
            ctx.extra.pop(REDIS, None)
            server.stop()
        ctx.extra.setdefault(ON_SHUTDOWN, []).append(stop)
    return server.url


def upstream(ctx: RunContext) -> UpstreamControl:
    """The control API of the stand-in the target's API calls for market data: the run's own
    for a managed API; for an external one, TARGET_UPSTREAM_URL (its provider base URLs must
    point there while the gates run; README). None configured: the gates that need it fail,
    naming the setting."""
    if not ctx.api_url:
        return UpstreamControl(upstream_standin(ctx).base_url)
    if not ctx.upstream_url:
        raise RunbookError("the target API is external and TARGET_UPSTREAM_URL is not set: the gates "
                           "that break a provider on purpose need the stand-in its provider base URLs "
                           "point at (runbook upstream --port N)")
    return UpstreamControl(ctx.upstream_url)


def run_deploy_command(ctx: RunContext, commit: str) -> None:
    """TARGET_DEPLOY_CMD with the commit as its last argument (and DEPLOY_COMMIT, DEPLOY_CHECKOUT,
    DEPLOY_ENVIRONMENT in its environment); a non-zero exit fails the deploy."""
    if not ctx.deploy_cmd:
        return     # nothing deploys: the served-commit gate names what still runs
    env = {k: os.environ[k] for k in DEPLOY_ENVIRONMENT if k in os.environ}
    env.update(DEPLOY_COMMIT=commit, DEPLOY_CHECKOUT=str(ctx.deploy_dir), DEPLOY_ENVIRONMENT=ctx.slot)
    try:
        proc = subprocess.run([*shlex.split(ctx.deploy_cmd), commit], check=False, env=env, capture_output=True,
                              text=True, timeout=DEPLOY_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunbookError(f"TARGET_DEPLOY_CMD could not deploy {commit[:12]}: {type(exc).__name__}") from None
    if proc.returncode != 0:
        tail = mask_url_password((proc.stderr or proc.stdout).strip().splitlines()[-1:][0]
                                 if (proc.stderr or proc.stdout).strip() else "")
        raise RunbookError(f"TARGET_DEPLOY_CMD exited {proc.returncode} deploying {commit[:12]}"
                           + (f": {tail[:200]}" if tail else ""))


def deploy(ctx: RunContext, commit: str) -> None:
    """Point the environment at commit and restart its API on that code (managed), or run the
    deploy command (remote)."""
    git_ops.worktree(ctx.repo, ensure_deployed(ctx), commit)
    server = api(ctx)
    if server.managed:
        server.restart(ctx.deploy_dir)
    else:
        run_deploy_command(ctx, commit)
        server.wait_healthy()




def shutdown(ctx: RunContext) -> None:
    server = ctx.extra.pop("api", None)
    if server is not None:
        server.stop()
    for stop in reversed(ctx.extra.pop(ON_SHUTDOWN, [])):
        stop()

"""The environment's deployed code: a worktree of TARGET_REPO, and the API serving it."""
from __future__ import annotations

from pathlib import Path

from runbook.context import RunContext
from runbook.tasks.code import git_ops
from runbook.tasks.target.api_server import ApiServer


def ensure_deployed(ctx: RunContext) -> Path:
    """First use: the environment runs what TARGET_REPO has checked out."""
    if not (ctx.deploy_dir / ".git").exists():
        git_ops.worktree(ctx.repo, ctx.deploy_dir, git_ops.head(ctx.repo))
    return ctx.deploy_dir


def deployed_commit(ctx: RunContext) -> str:
    return git_ops.head(ensure_deployed(ctx))


def api(ctx: RunContext) -> ApiServer:
    """One API per run and environment: managed (uvicorn from the deploy worktree) or external."""
    server = ctx.extra.get("api")
    if server is None:
        log = ctx.workspace / "logs" / f"api-{ctx.slot}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        server = ApiServer(ensure_deployed(ctx), ctx.database_url, url=ctx.api_url,
                           token=ctx.api_token, log_path=log,
                           pid_file=ctx.workspace / "deploy" / f"{ctx.slot}.api.pid")
        ctx.extra["api"] = server
    return server


def deploy(ctx: RunContext, commit: str) -> None:
    """Point the environment at commit and restart its API on that code."""
    git_ops.worktree(ctx.repo, ensure_deployed(ctx), commit)
    server = api(ctx)
    if server.managed:
        server.restart(ctx.deploy_dir)
    else:
        server.wait_healthy()


# ctx.extra key: what else the run started beside its API, stopped with it (callables)
ON_SHUTDOWN = "on_shutdown"


def shutdown(ctx: RunContext) -> None:
    server = ctx.extra.pop("api", None)
    if server is not None:
        server.stop()
    for stop in reversed(ctx.extra.pop(ON_SHUTDOWN, [])):
        stop()

"""What a killed run left behind, put in order by the next run that takes the database's lease.

A SIGKILL can land between any two effects of a step, so the ledger may not know everything the
run did. Before the next run adopts or rolls back anything:

* code commits the killed run made (found on the environment's branch by their Runbook-Run
  trailer) that the ledger never heard of are recorded as that run's applied steps — so a
  re-run adopts them and a rollback reverts them, instead of finding "nothing changed";
* the killed run's scratch worktrees are removed (and git's worktree list pruned);
* its incomplete backup files are deleted, and its API (still serving) and Redis are stopped.
"""
from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from runbook.context import RunContext
from runbook.tasks import history
from runbook.tasks.code import git_ops
from runbook.tasks.database import lease, ledger
from runbook.tasks.database.backup import clear_partial_backups
from runbook.tasks.steps.code_update import RUN_TRAILER, STEP_TRAILER, env_branch
from runbook.tasks.target.api_server import stop_leftover
from runbook.tasks.target.deploy import REDIS, api_pid_file, redis_dir
from runbook.tasks.target.redis_server import RedisServer

log = logging.getLogger("runbook.recovery")


def recover_crashed(ctx: RunContext) -> dict[str, list[str]]:
    """Call holding the database's lease: every run that took it before and never ended was
    killed (lease.crashed_runs)."""
    killed = {r: f for r, f in lease.crashed_runs(ctx.database_url).items() if r != ctx.flow_run_id}
    done: dict[str, list[str]] = {"recorded": [], "worktrees": [], "backups": []}
    if not killed:
        return done
    if ctx.extra.get("api") is None and (pid := stop_leftover(api_pid_file(ctx))):
        done["api"] = [str(pid)]         # the killed run's API, still serving its code
    if ctx.extra.get(REDIS) is None and (pid := RedisServer(redis_dir(ctx)).stop_leftover()):
        done["redis"] = [str(pid)]       # the killed run's Redis (a run that starts its own stops it too)
    done["recorded"] = _record_unledgered_commits(ctx, killed)
    done["worktrees"] = _remove_worktrees(ctx, killed)
    for run in killed:
        done["backups"] += [p.name for p in clear_partial_backups(ctx.backup_dir, run)]
    if any(done.values()):
        log.warning("recovered after killed run(s) %s: %s", ", ".join(killed), done)
    return done


def _record_unledgered_commits(ctx: RunContext, killed: dict[str, str]) -> list[str]:
    branch = env_branch(ctx)
    if not git_ops.ref_exists(ctx.repo, branch):
        return []
    reverted = git_ops.reverted_commits(ctx.repo, branch)
    recorded = []
    for c in reversed(git_ops.commits_with_trailer(ctx.repo, branch, RUN_TRAILER)):   # oldest first
        run, step = c[RUN_TRAILER], c.get(STEP_TRAILER)
        if run not in killed or not step or c["sha"] in reverted:
            continue
        if _ledger_knows(ctx.database_url, run, step, c["sha"]):
            continue
        ledger.record_step(ctx.database_url, run, killed[run], step, "applied",
                           {"previous": c["parent"], "commit": c["sha"], "branch": branch, "recovered": True})
        recorded.append(f"{step} ({c['sha'][:12]})")
    return recorded


def _ledger_knows(url: str, run: str, step: str, sha: str) -> bool:
    with ledger.cursor(url) as cur:
        cur.execute("SELECT data FROM runbook.run_steps WHERE flow_run_id = %s AND step = %s", (run, step))
        return any((r["data"] or {}).get("commit") == sha for r in cur.fetchall())


def _remove_worktrees(ctx: RunContext, killed: dict[str, str]) -> list[str]:
    tmp = (ctx.workspace / "tmp").resolve()
    suffixes = tuple(f"-{run[:8]}" for run in killed)
    removed = []
    for line in git_ops.git(ctx.repo, "worktree", "list", "--porcelain").splitlines():
        if not line.startswith("worktree "):
            continue
        path = Path(line.split(" ", 1)[1]).resolve()
        if path.parent == tmp and path.name.endswith(suffixes):
            _stop_processes_in(path)   # e.g. a baseline API the latency gate served from it
            git_ops.remove_worktree(ctx.repo, path)
            removed.append(path.name)
    git_ops.git(ctx.repo, "worktree", "prune")
    return removed


def close_crashed(ctx: RunContext, flow_name: str | None = None) -> list[str]:
    """After a run took over what killed runs (of `flow_name`, or any) left — adopted or rolled
    back — they are history: Crashed in the ledger and in Prefect."""
    killed = [r for r in lease.crashed_runs(ctx.database_url, flow_name) if r != ctx.flow_run_id]
    if killed:
        lease.mark_crashed(ctx.database_url, killed)
        history.mark_crashed(killed, by=ctx.flow_run_id)
    return killed


def _stop_processes_in(path: Path) -> None:
    """Stop what still runs from inside a killed run's worktree (its process group)."""
    import psutil

    for proc in psutil.process_iter(["cwd"]):
        try:
            cwd = proc.info["cwd"]
            group = os.getpgid(proc.pid)
            if cwd and Path(cwd).is_relative_to(path) and group != os.getpgrp():   # never our own
                os.killpg(group, signal.SIGTERM)
                proc.wait(10)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue

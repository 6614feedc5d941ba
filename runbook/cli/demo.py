"""`runbook demo`: the whole of what is built so far, on the embedded defaults."""
from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from runbook.plan import ENVIRONMENTS, PLAN
from runbook.settings import get_settings
from runbook.tasks.code import git_ops


def point_settings_at(env: dict[str, str]) -> None:
    os.environ.update(env)
    get_settings.cache_clear()


def smoke_table(runs, title: str) -> Table:
    table = Table("pattern", "status", "rows", "ms", title=title)
    for r in runs:
        style = "green" if r.status == "ok" else "red"
        table.add_row(r.pattern, f"[{style}]{r.status}[/]", str(r.rows), f"{r.ms:.0f}")
    return table


def final_smoke(ws_env: dict[str, str]):
    """All patterns through the production API, on the code production now runs."""
    from runbook.context import build_context
    from runbook.expectations.smoke import smoke
    from runbook.tasks.target.deploy import api, shutdown

    ctx = build_context("demo-smoke", "production", "demo-smoke")
    try:
        server = api(ctx)
        server.start()
        return smoke(server.base_url, ctx.deploy_dir, ctx.database_url, server.headers())
    finally:
        shutdown(ctx)


def standup_text(since: datetime):
    """The plan's standup, from the runs this demo just made (task-run events are delivered
    asynchronously: give the API a moment to have them all)."""
    from rich.markdown import Markdown

    from runbook.flows.standup import collect
    from runbook.tasks.notify.standup import to_markdown

    time.sleep(2)
    return Markdown(to_markdown(collect(since, since_last=False)))


def _own_prefect_home(root: Path) -> Path | None:
    """The workspace's own Prefect history (no server configured), or None."""
    home = os.environ.get("PREFECT_HOME")
    if home and not os.environ.get("PREFECT_API_URL") and Path(home).resolve() == root / "prefect":
        return Path(home)
    return None


def prepare(workspace: Path, *, rows: int, keep: bool, reset: bool, console: Console):
    from runbook.demo.workspace import open_workspace

    with console.status("preparing the demo workspace (embedded PostgreSQL, seed, repo)…"):
        ws = open_workspace(workspace, rows=rows, keep_running=keep, reset=reset)
    home = _own_prefect_home(ws.root)
    if home and ws.reused and reset:
        shutil.rmtree(home, ignore_errors=True)      # the run history restarts with the databases
    if home:
        home.mkdir(parents=True, exist_ok=True)
    state = f"built in {ws.built_s:.1f}s" if not ws.reused else \
        "reused, reset to its seed" if reset else "reused as the last run left it"
    console.print(f"workspace {ws.root} ({state}, {ws.rows} lots)")
    point_settings_at(ws.env())
    return ws


def run_plan(console: Console, repo: Path, through: str | None = None) -> list[tuple[str, str, float, str]]:
    timings = []
    days = PLAN[:[d.key for d in PLAN].index(through) + 1] if through else PLAN
    for day in days:
        if day.change_set and not git_ops.ref_exists(repo, day.change_set):
            console.print(f"▷ {day.week} {day.day} — {day.title}: no change set {day.change_set} shipped yet")
            continue
        if day.needs_redis and not (get_settings().redis_url or shutil.which("redis-server")):
            console.print(f"▷ {day.week} {day.day} — {day.title}: skipped, it needs Redis "
                          "(apt install redis-server, or REDIS_URL)")
            continue
        for environment in ENVIRONMENTS:
            start = time.perf_counter()
            console.print(f"▶ {day.week} {day.day} — {day.title} on [bold]{environment}[/]")
            outcome = day.load()(environment=environment, require_approval=False)
            timings.append((day.key, environment, time.perf_counter() - start, outcome.status))
    return timings


def run_demo(workspace: Path, *, rows: int, console: Console, keep: bool = False,
             reset: bool = True, drill: bool = False, through: str | None = None) -> int:
    t0 = time.perf_counter()
    started_at = datetime.now(UTC)
    # the demo's patterns are a few ms each: fewer latency passes keep it quick
    os.environ.setdefault("RUNBOOK_LATENCY_REPEATS", "3")
    ws = prepare(workspace, rows=rows, keep=keep, reset=reset, console=console)
    try:
        if drill:
            from runbook.cli.drill import run_drill

            return run_drill(console)
        timings = run_plan(console, ws.repo, through)
        result, runs = final_smoke(ws.env())
        console.print(smoke_table(runs, "pattern smoke on production"))
        console.print(standup_text(started_at))
        t = Table("flow", "environment", "status", "seconds", title="flows")
        for key, env, secs, status in timings:
            t.add_row(key, env, status, f"{secs:.1f}")
        console.print(t)
        console.print(f"demo finished in {time.perf_counter() - t0:.1f}s")
        if not result.passed:
            console.print(f"[red]smoke failed:[/] {result.summary}")
            return 1
        return 0
    finally:
        stop_or_keep(ws, console)


def stop_or_keep(ws, console: Console) -> None:
    if ws.server is None or ws.server.cleanup_mode is None:
        console.print(f"embedded PostgreSQL kept running for {ws.root} "
                      f"(stop it with: runbook demo --stop --workspace {ws.root})")
    else:
        ws.stop()
        console.print("embedded PostgreSQL stopped")


def stop_demo(workspace: Path, console: Console) -> int:
    from runbook.demo.workspace import stop_workspace_server

    if stop_workspace_server(workspace):
        console.print(f"embedded PostgreSQL of {Path(workspace).resolve()} stopped")
    else:
        console.print(f"no embedded PostgreSQL was running for {Path(workspace).resolve()}")
    return 0

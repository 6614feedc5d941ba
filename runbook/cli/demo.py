"""`runbook demo`: the whole of what is built so far, on the embedded defaults."""
from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from runbook.plan import ENVIRONMENTS, PLAN
from runbook.settings import get_settings


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


def standup_text() -> str:
    """The plan's standup, from the runs this demo just made (task-run events are delivered
    asynchronously: give the API a moment to have them all)."""
    from rich.markdown import Markdown

    from runbook.flows.standup import collect
    from runbook.tasks.notify.standup import to_markdown

    time.sleep(2)
    return Markdown(to_markdown(collect(None, since_last=False)))


def run_demo(workspace: Path, *, fresh: bool, rows: int, console: Console) -> int:
    from runbook.demo.workspace import open_workspace

    t0 = time.perf_counter()
    with console.status("preparing the demo workspace (embedded PostgreSQL, seed, repo)…"):
        ws = open_workspace(workspace, fresh=fresh, rows=rows)
    if os.environ.get("PREFECT_HOME"):      # --fresh may have removed it with the workspace
        Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    console.print(f"workspace {ws.root} ({'reused' if ws.reused else f'built in {ws.built_s:.1f}s'}, "
                  f"{ws.rows} lots)")
    point_settings_at(ws.env())
    timings = []
    for day in PLAN:
        for environment in ENVIRONMENTS:
            start = time.perf_counter()
            console.print(f"▶ {day.week} {day.day} — {day.title} on [bold]{environment}[/]")
            outcome = day.load()(environment=environment, require_approval=False)
            timings.append((day.key, environment, time.perf_counter() - start, outcome.status))
    result, runs = final_smoke(ws.env())
    console.print(smoke_table(runs, "pattern smoke on production"))
    console.print(standup_text())
    t = Table("flow", "environment", "status", "seconds", title="flows")
    for key, env, secs, status in timings:
        t.add_row(key, env, status, f"{secs:.1f}")
    console.print(t)
    console.print(f"demo finished in {time.perf_counter() - t0:.1f}s")
    if not result.passed:
        console.print(f"[red]smoke failed:[/] {result.summary}")
        return 1
    return 0

"""`runbook ui`: the release manager's one command. A local Prefect server, every flow served
against the configured target (or the demo workspace when nothing is configured, built if
needed), the UI's URL printed; Ctrl-C (or SIGTERM) stops all of it."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import typer
from rich.console import Console

from runbook.cli import processes
from runbook.cli.app import app, guarded
from runbook.errors import RunbookError

# `runbook serve` as a child, with this interpreter (whatever is on PATH)
SERVE = [sys.executable, "-c", "from runbook.cli.app import main; main()", "serve"]
PREFECT = [sys.executable, "-m", "prefect", "server", "start"]


class Stop(Exception):
    """SIGINT / SIGTERM received."""


def _on_signal(signum, _frame) -> None:
    raise Stop(signal.Signals(signum).name)


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def _wait(check, child: processes.Child, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if not child.alive():
            raise RunbookError(f"{what}: {child.name} exited ({child.proc.returncode}); see {child.log}")
        if time.monotonic() > deadline:
            raise RunbookError(f"{what}: not within {timeout_s:.0f}s; see {child.log}")
        time.sleep(0.5)


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _deployment_count(api: str) -> int:
    try:
        return httpx.post(f"{api}/deployments/count", json={}, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return 0


def _all_served(api: str):
    """A check: every catalog deployment registered (or, when some flow cannot be served, the
    count has stopped growing for 10 s: `runbook serve` logged why)."""
    from runbook.deployments.catalog import catalog

    expected, seen = len(catalog()), {"count": -1, "since": time.monotonic()}

    def check() -> bool:
        count = _deployment_count(api)
        if count != seen["count"]:
            seen.update(count=count, since=time.monotonic())
        return count >= expected or (count > 0 and time.monotonic() - seen["since"] > 10)
    return check


def _target_env(workspace: Path, rows: int, console: Console, stack: list) -> tuple[dict[str, str], Path, str]:
    """(settings for the served flows, folder for logs, what is targeted)."""
    from runbook.settings import get_settings

    settings = get_settings()
    if settings.database_url is not None:
        return {}, Path(settings.runbook_workspace), "the configured target (DATABASE_URL)"
    from runbook.demo.workspace import open_workspace

    with console.status("preparing the demo workspace (embedded PostgreSQL, seed, repo)…"):
        ws = open_workspace(workspace, rows=rows, keep_running=False)
    stack.append(ws.stop)
    return ws.env(), ws.root, f"the demo workspace {ws.root}"


def run_ui(workspace: Path, rows: int, host: str, port: int, console: Console) -> int:
    stack: list = []          # what to undo, in reverse order
    children: list[processes.Child] = []
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        if not _port_free(host, port):
            raise RunbookError(f"port {port} on {host} is in use (another Prefect server?): pass --port")
        env, folder, what = _target_env(workspace, rows, console, stack)
        logs = folder / "logs"
        api, ui = f"http://{host}:{port}/api", f"http://{host}:{port}"
        home = os.environ.get("PREFECT_HOME") or (str(folder / "prefect") if env else None)
        server_env = {**os.environ, "PREFECT_SERVER_API_HOST": host, "PREFECT_SERVER_API_PORT": str(port),
                      "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                      "PREFECT_SERVER_LOGGING_LEVEL": "WARNING", "PREFECT_UI_API_URL": api,
                      **({"PREFECT_HOME": home} if home else {})}
        if not {"PREFECT_SERVER_DATABASE_TIMEOUT", "PREFECT_API_DATABASE_TIMEOUT"} & server_env.keys():
            # on SQLite this is how long a write waits for the lock: at Prefect's 10 s, an
            # approval's Resume failed ("database is locked") while flows logged under load
            server_env["PREFECT_SERVER_DATABASE_TIMEOUT"] = "60"
        with console.status(f"starting the Prefect server on {ui}…"):
            server = processes.start("prefect server", PREFECT, server_env, logs / "ui-prefect-server.log")
            children.append(server)
            _wait(lambda: _healthy(api), server, "prefect server start", 180)
        serve_env = {**server_env, **env, "PREFECT_UI_URL": ui}
        serve_env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "5")
        with console.status(f"serving every flow against {what}…"):
            serve = processes.start("runbook serve", SERVE, serve_env, logs / "ui-serve.log")
            children.append(serve)
            _wait(_all_served(api), serve, "runbook serve", 240)
        console.print(f"Prefect UI: [bold]{ui}[/]   (flows served against {what})", highlight=False)
        console.print(f"logs: {server.log}, {serve.log}", highlight=False)
        console.print("Ctrl-C stops the server, the flows and everything they started.")
        while all(c.alive() for c in children):
            for c in children:
                c.remember_descendants()
            time.sleep(1)
        dead = next(c for c in children if not c.alive())
        raise RunbookError(f"{dead.name} exited ({dead.proc.returncode}); its log {dead.log} ends:\n{dead.tail()}")
    except Stop as why:
        console.print(f"{why}: stopping…")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # a second Ctrl-C must not cut the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for c in reversed(children):
            processes.stop(c)
        for undo in reversed(stack):
            undo()
        if children or stack:
            console.print("stopped: " + ", ".join([c.name for c in reversed(children)]
                                                 + (["embedded PostgreSQL"] if stack else [])))


@app.command()
def ui(workspace: Path = typer.Option(Path(".runbook-demo"), help="the demo workspace, used when no "
                                      "target is configured (DATABASE_URL unset); built if missing"),
       rows: int = typer.Option(10_000, help="lots to seed when the demo workspace is built"),
       host: str = typer.Option("127.0.0.1", help="address the Prefect server listens on"),
       port: int = typer.Option(4200, help="port of the Prefect server and its UI")) -> None:
    """Start a local Prefect server, serve every flow against the configured target (or the demo
    workspace), and print the UI's URL; Ctrl-C stops everything it started."""
    from runbook.cli.quiet import divert_output, log_path
    from runbook.settings import get_settings

    folder = workspace if get_settings().database_url is None else get_settings().runbook_workspace
    term = divert_output(log_path(folder, "ui"))
    shown = Console(file=term.out)
    code = guarded(lambda: run_ui(workspace, rows, host, port, shown), term)
    shown.print(f"details: {term.log}", highlight=False)
    sys.exit(code)

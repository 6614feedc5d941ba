"""`runbook upstream --port N`: the market-data stand-in in the foreground, for an external
staging whose provider base URLs (FMP_BASE_URL, POLYGON_BASE_URL, FRED_BASE_URL) point at it
while the Week 3-4 gates run; TARGET_UPSTREAM_URL points the gates at its control API.
Ctrl-C (or SIGTERM) stops it."""
from __future__ import annotations

import signal
import threading

import typer

from runbook.cli.app import app, console
from runbook.errors import RunbookError


@app.command()
def upstream(port: int = typer.Option(8765, help="port to listen on"),
             host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0 for a remote "
                                                        "staging)")) -> None:
    """Serve the stand-in for FMP, Polygon and FRED (faults set through its /_control API) until
    Ctrl-C; prints the provider base URLs to give the target and the TARGET_UPSTREAM_URL."""
    from runbook.tasks.target.upstream import UpstreamStandIn

    try:
        standin = UpstreamStandIn(host, port)
    except OSError as exc:
        raise RunbookError(f"runbook upstream: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with standin:
        for setting, url in standin.provider_settings().items():
            console.print(f"{setting}={url}", markup=False, highlight=False)
        console.print(f"TARGET_UPSTREAM_URL={standin.base_url}", markup=False, highlight=False)
        console.print("serving; Ctrl-C stops", markup=False)
        stop.wait()
    console.print("stopped", markup=False)

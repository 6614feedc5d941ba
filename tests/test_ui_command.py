"""`runbook ui` as a user starts it, with nothing configured: it builds the demo workspace,
starts a Prefect server, serves every flow, prints the UI's URL; SIGINT stops every process it
started (server, serve, their children, the embedded PostgreSQL)."""
from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx
import psutil
import pytest
from prefect_processes import free_port, printed_url
from test_demo_cli import RUNBOOK, demo_env
from workspace_processes import workspace_processes

pytestmark = pytest.mark.timeout(600)


def test_ui_serves_every_flow_and_sigint_stops_everything():
    base = Path(tempfile.mkdtemp(prefix="rbui-"))
    workspace, out = base / "ws", base / "ui.out"
    port = free_port()
    with open(out, "wb") as sink:
        proc = subprocess.Popen([RUNBOOK, "ui", "--workspace", str(workspace), "--rows", "600",
                                 "--port", str(port)], env=demo_env(), cwd=base, stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        url = printed_url(out, proc)
        assert url == f"http://127.0.0.1:{port}"
        assert httpx.get(url, timeout=10).status_code == 200                 # the UI itself
        api = f"{url}/api"
        names = {d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()}
        assert {"week0-day1-2", "week0-day3-4", "week0-day5", "week1-day3-5", "nightly",
                "weekday-mornings", "rollback-code"} <= names
        started = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(started) >= 2 and any("postgres" in p for p in workspace_processes(workspace))

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, out.read_text()[-3000:]
        shown = out.read_text()
        assert "stopped: runbook serve, prefect server, embedded PostgreSQL" in shown
        assert "Traceback" not in shown
        assert [pid for pid in started if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []
        assert workspace_processes(workspace) == []
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{api}/health", timeout=3)
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run([RUNBOOK, "demo", "--workspace", str(workspace), "--stop"], env=demo_env(),
                       capture_output=True, timeout=120, check=False)
        shutil.rmtree(base, ignore_errors=True)

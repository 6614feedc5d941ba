"""`runbook upstream --port N` as a release manager starts it beside an external staging: the
stand-in served in the foreground, its provider URLs and control URL printed, faults set and
the request log read through its control API, SIGINT stops it cleanly; a port in use is one
line naming it."""
from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest
from prefect_processes import free_port
from test_demo_cli import RUNBOOK, demo_env

from runbook.tasks.target.upstream import UpstreamControl

pytestmark = pytest.mark.timeout(120)


def _printed(out, proc: subprocess.Popen, key: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in out.read_text().splitlines():
            if line.startswith(key + "="):
                return line.split("=", 1)[1]
        assert proc.poll() is None, out.read_text()
        time.sleep(0.2)
    raise AssertionError(f"{key} never printed: {out.read_text()}")


def test_upstream_serves_the_stand_in_in_the_foreground_until_sigint(tmp_path):
    port, out = free_port(), tmp_path / "upstream.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([RUNBOOK, "upstream", "--port", str(port)], env=demo_env(),
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        control_url = _printed(out, proc, "TARGET_UPSTREAM_URL")
        assert control_url == f"http://127.0.0.1:{port}"
        polygon = _printed(out, proc, "POLYGON_BASE_URL")
        assert polygon == f"{control_url}/polygon"
        control = UpstreamControl(control_url)
        control.clear_log()
        news = httpx.get(f"{polygon}/v2/reference/news", params={"ticker": "MSFT", "limit": 2}, timeout=10)
        assert len(news.json()["results"]) == 2
        control.set_fault("polygon", status=503)
        assert httpx.get(f"{polygon}/v2/reference/news", params={"ticker": "MSFT"}, timeout=10).status_code == 503
        control.heal("polygon")
        assert [(e["provider"], e["status"]) for e in control.log()] == [("polygon", 200), ("polygon", 503)]
        assert control.inflight() == {"fmp": 0, "polygon": 0, "fred": 0}

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, out.read_text()
        assert "Traceback" not in out.read_text()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{control_url}/_control", timeout=3)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_upstream_on_a_port_in_use_names_it(tmp_path):
    port, out = free_port(), tmp_path / "first.out"
    with open(out, "wb") as sink:
        first = subprocess.Popen([RUNBOOK, "upstream", "--port", str(port)], env=demo_env(),
                                 stdout=sink, stderr=subprocess.STDOUT)
    try:
        _printed(out, first, "TARGET_UPSTREAM_URL")
        second = subprocess.run([RUNBOOK, "upstream", "--port", str(port)], env=demo_env(), check=False,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert second.stderr.strip() == (f"error: runbook upstream: cannot listen on 127.0.0.1:{port} "
                                         "(Address already in use)")
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=30)

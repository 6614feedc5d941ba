"""The target API: started (uvicorn on a free 127.0.0.1 port) and restarted by the runbook for
a managed checkout, or simply health-checked when TARGET_API_URL points at a running one."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from runbook.errors import RunbookError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """A DawsOS API process serving `checkout`/backend against `database_url`."""

    def __init__(self, checkout: Path | None, database_url: str, *, url: str | None = None,
                 token: str | None = None, log_path: Path | None = None, pid_file: Path | None = None):
        self.checkout = Path(checkout) if checkout else None
        self.database_url = database_url
        self.external_url = url
        self.token = token
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.pid_file = pid_file      # survives a killed run, so the next run can stop its API

    @property
    def managed(self) -> bool:
        return self.external_url is None

    @property
    def base_url(self) -> str:
        if self.external_url:
            return self.external_url
        if self.port is None:
            raise RunbookError("target API is not running")
        return f"http://127.0.0.1:{self.port}"

    def headers(self) -> dict:
        # the runbook's own calls carry full pattern rights: the API enforces them from Day 5 on
        h = {"X-DawsOS-Rights": "patterns:execute"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def start(self, timeout_s: float = 60) -> str:
        if not self.managed:
            self.wait_healthy(timeout_s)
            return self.base_url
        if self.proc and self.proc.poll() is None:
            return self.base_url
        backend = self.checkout / "backend"
        if not (backend / "app" / "main.py").exists():
            raise RunbookError(f"TARGET_REPO {self.checkout}: backend/app/main.py not found")
        self._stop_leftover()
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": self.database_url, "PYTHONPATH": str(backend)}
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            cwd=backend, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if self.pid_file:
            self.pid_file.write_text(str(self.proc.pid))
        self.wait_healthy(timeout_s)
        return self.base_url

    def _stop_leftover(self) -> None:
        """An API a killed run left behind (no hook ran to stop it) must not keep serving."""
        if not self.pid_file or not self.pid_file.exists():
            return
        import psutil

        try:
            proc = psutil.Process(int(self.pid_file.read_text().strip()))
            if "uvicorn" in " ".join(proc.cmdline()):
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
        except (ValueError, psutil.Error, ProcessLookupError, PermissionError):
            pass
        self.pid_file.unlink(missing_ok=True)

    def wait_healthy(self, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RunbookError(f"target API exited with code {self.proc.returncode} while starting"
                                   + (f"; see {self.log_path}" if self.log_path else ""))
            try:
                r = httpx.get(self.base_url + "/health", headers=self.headers(), timeout=5)
                if r.status_code == 200:
                    return r.json()
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise RunbookError(f"target API at {self.base_url} not healthy after {timeout_s:.0f}s ({last})")

    def health(self) -> dict:
        return httpx.get(self.base_url + "/health", headers=self.headers(), timeout=10).json()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        if self.pid_file:
            self.pid_file.unlink(missing_ok=True)

    def restart(self, checkout: Path | None = None) -> str:
        if checkout is not None:
            self.checkout = Path(checkout)
        self.stop()
        return self.start()

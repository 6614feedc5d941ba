"""The target API: started (uvicorn on a free 127.0.0.1 port) and restarted by the runbook for
a managed checkout, or simply health-checked when TARGET_API_URL points at a running one."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from runbook.errors import RunbookError
from runbook.pg import with_application_name
from runbook.target import DAWSOS
from runbook.tasks.target.auth_tokens import bearer, mint
from runbook.tasks.target.upstream import BASE_URL_SETTINGS, UpstreamStandIn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """A DawsOS API process serving `checkout`/backend against `database_url`."""

    def __init__(self, checkout: Path | None, database_url: str, *, url: str | None = None,
                 token: str | None = None, jwt_secret: str | None = None,
                 log_path: Path | None = None, pid_file: Path | None = None,
                 environment: dict[str, str] | None = None):
        self.checkout = Path(checkout) if checkout else None
        self.database_url = database_url
        self.external_url = url
        self.token = token
        # the API's signing secret: given (TARGET_JWT_SECRET), else one per managed API
        self.jwt_secret = jwt_secret or (secrets.token_urlsafe(32) if url is None else None)
        self.log_path = log_path
        self.environment = dict(environment or {})   # e.g. provider base URLs (the stand-in's)
        self.own_upstream = None   # a stand-in this server started for itself (none was given)
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

    def __repr__(self) -> str:
        return f"ApiServer(url={self.external_url or self.port!r}, managed={self.managed})"

    def headers(self, sub: str = "runbook", role: str = DAWSOS.operator_role) -> dict:
        """The runbook's own calls: a token for `sub` in `role` (the operator role holds every
        right), signed with the API's secret; else the configured TARGET_API_TOKEN."""
        if self.jwt_secret:
            return bearer(mint(self.jwt_secret, sub, role))
        return bearer(self.token) if self.token else {}

    def process_environment(self, backend: Path) -> dict[str, str]:
        """Only what the API needs, never the runbook's own environment (its secrets). Its market
        data comes from the given provider URLs, else from a stand-in of its own: a managed API
        never calls out of the machine."""
        env = {k: os.environ[k] for k in DAWSOS.api_environment if k in os.environ}
        if not any(k in self.environment or k in env for k in BASE_URL_SETTINGS.values()):
            if self.own_upstream is None:
                self.own_upstream = UpstreamStandIn().start()
            self.environment.update(self.own_upstream.provider_settings())
        return {**env, **self.environment, "PYTHONPATH": str(backend),
                "DATABASE_URL": with_application_name(self.database_url, DAWSOS.api_application_name),
                "PYTHONDONTWRITEBYTECODE": "1", DAWSOS.auth_secret_env: self.jwt_secret or ""}

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
        env = self.process_environment(backend)
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
        if self.pid_file:
            stop_leftover(self.pid_file)

    def wait_healthy(self, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RunbookError(f"target API exited with code {self.proc.returncode} while starting"
                                   + (f"; see {self.log_path}" if self.log_path else ""))
            try:
                r = httpx.get(self.base_url + "/health", timeout=5)
                if r.status_code == 200:
                    return r.json()
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise RunbookError(f"target API at {self.base_url} not healthy after {timeout_s:.0f}s ({last})")

    def health(self) -> dict:
        return httpx.get(self.base_url + "/health", timeout=10).json()

    def served_commit(self) -> str | None:
        """The commit the running service reports (its /health), None if it names none."""
        return self.health().get(DAWSOS.health_commit_field)

    def stop(self) -> None:
        """Stop the environment's API: the one this object started, else the one its pid file
        names (an earlier run's, still serving). The pid file goes only with the process it
        names: unlinking another run's would leave that API running with nothing to find it."""
        mine = self.proc.pid if self.proc else None
        if self.proc is None:
            self._stop_leftover()
        elif self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        if self.own_upstream is not None:
            self.own_upstream.stop()
            self.own_upstream = None
            self.environment = {k: v for k, v in self.environment.items() if k not in BASE_URL_SETTINGS.values()}
        if self.pid_file and mine is not None and self.pid_file.exists() \
                and self.pid_file.read_text().strip() == str(mine):
            self.pid_file.unlink(missing_ok=True)

    def restart(self, checkout: Path | None = None) -> str:
        if checkout is not None:
            self.checkout = Path(checkout)
        self.stop()
        return self.start()


def stop_leftover(pid_file: Path, program: str = "uvicorn") -> int | None:
    """A process a killed run left behind (no hook ran to stop it: its API, its Redis) must not
    keep running: stop the process its pid file names (if it is still `program`); the pid it
    stopped, if any."""
    if not pid_file.exists():
        return None
    import psutil

    stopped = None
    try:
        proc = psutil.Process(int(pid_file.read_text().strip()))
        if program in " ".join(proc.cmdline()):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
            stopped = proc.pid
    except (ValueError, psutil.Error, ProcessLookupError, PermissionError):
        pass
    pid_file.unlink(missing_ok=True)
    return stopped

"""Real Prefect processes for the deployment and UI tests: a `prefect server start` on a free
port and a `runbook serve` against it, each in its own process group, logs in files."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def executable(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)   # the group: the process and what it started
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_until(check, *, timeout: float, what: str, proc: subprocess.Popen, log: Path, every: float = 0.5):
    """Poll check() until it returns something truthy; fail early if proc exits."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with {proc.returncode}\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s\n{log_tail(log)}")
        time.sleep(every)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """`prefect server start` on a free port with its own PREFECT_HOME; yields the API URL."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_API_HOST": "127.0.0.1",
           "PREFECT_SERVER_API_PORT": str(port), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_KEY", None)
    log = home / "server.log"
    with process([executable("prefect"), "server", "start"], env, log, home) as proc:
        wait_until(lambda: answers(f"{api}/health"), timeout=180, what="prefect server start",
                   proc=proc, log=log)
        yield api


@contextmanager
def runbook_serve(api: str, workdir: Path, extra_args: list[str] = (),
                  env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, Path]]:
    """`runbook serve` against api, with this process's environment (the target's settings)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "serve.log"
    full_env = {**os.environ, **(env or {}), "PREFECT_API_URL": api}
    with process([executable("runbook"), "serve", *extra_args], full_env, log, workdir) as proc:
        yield proc, log


def printed_url(out: Path, proc: subprocess.Popen, timeout_s: float = 400) -> str:
    """The UI URL `runbook ui` prints once everything is served."""
    import re

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = re.search(r"Prefect UI: (http://\S+)", out.read_text(errors="replace"))
        if m:
            return m.group(1)
        if proc.poll() is not None:
            raise AssertionError(f"runbook ui exited {proc.returncode}:\n{log_tail(out)}")
        time.sleep(1)
    raise AssertionError(f"runbook ui printed no URL:\n{log_tail(out)}")


@contextmanager
def runbook_ui(workdir: Path, args: list[str] = (), env: dict[str, str] | None = None,
               ) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """`runbook ui` (its own Prefect server, every flow served); yields (UI URL, process, its
    terminal output). Stopped by SIGINT, as a user's Ctrl-C."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "ui.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([executable("runbook"), "ui", "--port", str(free_port()), *args],
                                env=env if env is not None else dict(os.environ), cwd=workdir,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield printed_url(out, proc), proc, out
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

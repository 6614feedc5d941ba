"""A throwaway Redis for a run's managed API (Week 4's pattern cache) when no REDIS_URL is
configured: Debian's `redis-server` from PATH on a free 127.0.0.1 port, nothing persisted,
its directory in the workspace, stopped with the run."""
from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time
from pathlib import Path

from runbook.errors import RunbookError
from runbook.processes import stop_process
from runbook.tasks.target.api_server import free_port, stop_leftover

START_TIMEOUT_S = 10


class RedisServer:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def pid_file(self) -> Path:
        """Survives a killed run, so the next run in this directory stops its Redis."""
        return self.directory / "redis.pid"

    def stop_leftover(self) -> int | None:
        """Stop a killed run's Redis, left running in this directory; its pid, if there was one."""
        return stop_leftover(self.pid_file, "redis-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RunbookError("redis-server is not on PATH (Debian package redis-server) and REDIS_URL "
                               "is not set: the Week 4 pattern cache needs a Redis")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stop_leftover()
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid_file.write_text(str(self.proc.pid))
        atexit.register(self.stop)     # a run that never shut down (a caller of api() alone) leaks none
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RunbookError(f"redis-server exited with code {self.proc.returncode}; see "
                                   f"{self.directory / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RunbookError(f"redis-server did not answer on port {self.port} within {START_TIMEOUT_S}s")

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None
        self.pid_file.unlink(missing_ok=True)

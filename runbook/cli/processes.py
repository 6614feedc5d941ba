"""Child processes a command starts and must stop: each in its own session (a terminal's Ctrl-C
reaches the command, which then stops them in order), output to a log file. Stopping takes the
child's process group and every descendant it had (e.g. a target API started by a flow run in
its own session)."""
from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path
    descendants: set[int] = field(default_factory=set)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def remember_descendants(self) -> None:
        try:
            self.descendants |= {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start(name: str, args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> Child:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return Child(name, proc, log)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(child: Child, timeout_s: float = 20) -> None:
    """SIGTERM to the child's group, SIGKILL after timeout_s; then any descendant left over."""
    child.remember_descendants()
    if child.alive():
        _signal_group(child.proc.pid, signal.SIGTERM)
        try:
            child.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
    leftovers = []
    for pid in child.descendants:
        try:
            p = psutil.Process(pid)
            _signal_group(pid, signal.SIGTERM) if os.getpgid(pid) == pid else p.terminate()
            leftovers.append(p)
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    _gone, alive = psutil.wait_procs(leftovers, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass

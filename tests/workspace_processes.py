"""Which processes belong to a demo workspace: its embedded PostgreSQL (data directory in the
workspace), the target's uvicorn (run from a deploy worktree in it), an ephemeral Prefect
server (PREFECT_HOME in it) — matched on command line, working directory and environment."""
from __future__ import annotations

from pathlib import Path

import psutil

NAMES = ("postgres", "prefect", "uvicorn", "python")


def workspace_processes(root: Path) -> list[str]:
    root_s = str(Path(root).resolve())
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            if not any(n in (proc.info["name"] or "") or n in cmd for n in NAMES):
                continue
            where = [cmd, proc.cwd(), *proc.environ().values()]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if any(root_s in w for w in where):
            found.append(f"{proc.info['pid']} {cmd[:160]}")
    return found

"""A quiet terminal for long commands: everything libraries and child processes write goes to a
log file, the command's own progress and results to the terminal.

Redirection is at the file-descriptor level, not only Python's `logging`: the ephemeral Prefect
server, the embedded PostgreSQL and the target's uvicorn are child processes that inherit fds 1
and 2, and their tracebacks and warnings would otherwise land on the user's screen."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

# settings read by Prefect and GX at import/start: details for the log, no phoning home
LIBRARY_DEFAULTS = {
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_LOGGING_COLORS": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "GX_ANALYTICS_ENABLED": "false",
}


@dataclass
class Terminal:
    out: TextIO        # the user's stdout
    err: TextIO        # the user's stderr
    log: Path          # where everything else went


def log_path(folder: Path, what: str) -> Path:
    return Path(folder).resolve() / "logs" / f"{what}-{datetime.now(UTC):%Y%m%d-%H%M%S}.log"


def divert_output(log: Path) -> Terminal:
    """From now on fds 1 and 2 (this process and every child it starts) write to `log`; the
    returned streams still reach the terminal. Not undone: what runs at exit (atexit hooks
    stopping servers) is logged too."""
    for key, value in LIBRARY_DEFAULTS.items():
        os.environ.setdefault(key, value)
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return Terminal(os.fdopen(saved_out, "w", buffering=1), os.fdopen(saved_err, "w", buffering=1), log)

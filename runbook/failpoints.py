"""Failpoints for the fault suite: with RUNBOOK_FAILPOINTS=name[,name…] set, the process kills
itself (SIGKILL: no hook, no finally, no rollback runs) when it reaches a named point — the
worst a crash can do there. Unset (always, outside the suite) a point costs one lookup.

Points: ``before:STEP``, ``applied:STEP`` (applied, not yet in the ledger), ``recorded:STEP``
(in the ledger), ``code:branch-moved`` (a code commit on the environment's branch, not yet
deployed), ``backup:dumped`` (the dump written, not yet renamed into place)."""
from __future__ import annotations

import os
import signal

ENV = "RUNBOOK_FAILPOINTS"


def reached(name: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)

"""What the live-traffic tests share: the live writer (bench/live_writer.py, shared with the
benches) importable from tests, and a demo database copied from the session's template."""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.live_writer import (
    LiveWriter,
    all_committed_writes_present,
    keys_written,
)
from runbook.pg import connect, drop_database, with_database

__all__ = ["LiveWriter", "all_committed_writes_present", "demo_db", "keys_written", "wait_for"]


@pytest.fixture
def demo_db(admin_url, seeded_template):
    """A copy of the seeded DawsOS demo database (2000 lots); dropped afterwards."""
    name = f"rblive_{uuid.uuid4().hex[:8]}"
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(seeded_template)))
    yield with_database(admin_url, name)
    drop_database(admin_url, name)


def wait_for(writer: LiveWriter, n: int, timeout: float = 60) -> None:
    """Until the writer has committed `n` writes in all."""
    deadline = time.monotonic() + timeout
    while writer.committed() < n and time.monotonic() < deadline:
        time.sleep(0.1)

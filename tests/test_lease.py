"""The database lease: one run at a time changes a target database, whatever the flow; a dead
holder (expired, or its process gone on this host) is taken over; every run's end is recorded,
so only runs that never ended count as crashed."""
from __future__ import annotations

import subprocess
import sys

import pytest

from runbook.errors import RunbookError
from runbook.pg import connect
from runbook.tasks.database import lease, ledger


@pytest.fixture
def db(fresh_db):
    ledger.ensure(fresh_db)
    return fresh_db


def test_a_second_run_is_refused_naming_the_holder(db):
    with lease.held(db, "run-a", "week0-day1-2-standardize-fields"):
        with pytest.raises(RunbookError, match="in use by run run-a of week0-day1-2-standardize-fields"):
            lease.acquire(db, "run-b", "rollback-migration")
    lease.acquire(db, "run-b", "rollback-migration")          # released at the end of the block
    assert list(lease.crashed_runs(db)) == ["run-b"]           # run-a ended; run-b has not


def test_an_expired_lease_is_taken_over(db):
    lease.acquire(db, "run-a", "f", ttl_s=1)
    with connect(db, autocommit=True) as conn:
        conn.execute("UPDATE runbook.lease SET expires_at = now() - interval '1 second'")
    lease.acquire(db, "run-b", "f")
    with connect(db) as conn:
        assert conn.execute("SELECT owner FROM runbook.lease").fetchone()[0] == "run-b"


def test_a_holder_whose_process_died_is_taken_over_at_once(db):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    lease.acquire(db, "run-a", "f")
    with connect(db, autocommit=True) as conn:
        conn.execute("UPDATE runbook.lease SET pid = %s", (int(dead),))
    lease.acquire(db, "run-b", "f")                            # no wait for the expiry
    assert set(lease.crashed_runs(db)) == {"run-a", "run-b"}
    lease.mark_crashed(db, ["run-a"])
    assert list(lease.crashed_runs(db)) == ["run-b"]


def test_the_outcome_is_recorded_and_the_lease_renewed(db):
    with pytest.raises(ValueError):
        with lease.held(db, "run-a", "f", ttl_s=3):
            assert lease.renew(db, "run-a", ttl_s=3) and not lease.renew(db, "run-x", ttl_s=3)
            raise ValueError("a step failed")
    with connect(db) as conn:
        assert conn.execute("SELECT outcome FROM runbook.runs WHERE flow_run_id = 'run-a'").fetchone()[0] == "failed"
        assert conn.execute("SELECT count(*) FROM runbook.lease").fetchone()[0] == 0

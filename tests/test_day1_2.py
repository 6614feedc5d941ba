"""Week 0 Day 1-2 end to end: real PostgreSQL, real Prefect server, real git, real API,
Slack stand-in. Each gate made to fail ends rolled back: table checksums equal to before,
the deployed commit restored, the alert received, the run Failed."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from prefect.settings import PREFECT_API_URL

from runbook.errors import RunbookError
from runbook.flows.week0.day1_2 import standardize_fields
from runbook.pg import connect, database_name
from runbook.plan import MIGRATION_014
from runbook.tasks.code import git_ops
from runbook.tasks.database import checksums, lease, ledger

pytestmark = pytest.mark.usefixtures("prefect_server")
SERVICE = "backend/app/services/ledger.py"


def lots_parity(url: str) -> tuple[int, int]:
    with connect(url) as conn:
        return conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE quantity_open IS DISTINCT FROM qty_open"
            " OR quantity_original IS DISTINCT FROM qty_original) FROM lots").fetchone()


def commit_to_target(repo: Path, path: str, old: str, new: str) -> None:
    f = repo / path
    text = f.read_text()
    assert old in text, f"{old!r} not in {path}"
    f.write_text(text.replace(old, new, 1))
    git_ops.commit_all(repo, "test: change the target")


def column_exists(url: str, table: str, column: str) -> bool:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = %s"
                            " AND column_name = %s", (table, column)).fetchone()[0] == 1


def assert_rolled_back(target, before: dict, head_before: str, slack_standin, state, gate_word: str):
    assert state.is_failed(), state
    assert checksums.table_checksums(target.staging_url) == before
    assert not column_exists(target.staging_url, "lots", "quantity_open")
    deploy = target.deploy["staging"]
    assert git_ops.head(deploy) == head_before
    assert "qty_open" in (deploy / "backend/app/services/trade_execution.py").read_text()
    bodies = slack_standin.bodies()
    assert gate_word in bodies and "Rolled back" in bodies
    with connect(target.staging_url) as conn:
        status = conn.execute("SELECT status FROM runbook.migrations WHERE id = %s", (MIGRATION_014,)).fetchone()
    assert status is None or status[0] == "reverted"


def test_staging_then_production_then_rerun(target, slack_standin):
    before = checksums.table_checksums(target.database_url)
    out = standardize_fields(environment="staging")
    assert out.status == "completed"
    out = standardize_fields(environment="production", require_approval=False)
    assert "014_standardize_quantity_fields:apply" in out.applied
    n, mismatched = lots_parity(target.database_url)
    assert n == int(before["lots"].split(":")[0]) and mismatched == 0
    assert ledger.rehearsal_passed(target.database_url, MIGRATION_014,
                                   ledger.migration_state(target.database_url, MIGRATION_014)["checksum"])
    prod = target.deploy["production"]
    code = (prod / "backend/app/services/trade_execution.py").read_text()
    assert "quantity_open" in code and "qty_open" not in code.replace("qty_opened_at", "")
    assert (prod / "backend/db/migrations/007_add_lot_qty_tracking.sql").read_text().count("qty_open") > 0
    with connect(target.database_url) as conn:     # database code carried, no second overload
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE proname = 'reduce_lot'").fetchone()[0] == 1
        assert "quantity_open" in conn.execute(
            "SELECT prosrc FROM pg_proc WHERE oid = 'reduce_lot(uuid,numeric,date)'::regprocedure").fetchone()[0]
    assert git_ops.head(target.repo) == git_ops.git(target.repo, "rev-parse", "main")  # source untouched
    # a re-run is a no-op that still proves every gate
    again = standardize_fields(environment="production", require_approval=False)
    assert again.status == "completed"
    assert checksums.table_checksums(target.database_url)["lots"].startswith(f"{n}:")
    assert slack_standin.requests == []
    # a re-run that fails a late gate takes back only what it applied itself: the completed
    # runs' 014 and code are history, never adopted or reverted
    staging = target.deploy["staging"]
    deployed, branch = git_ops.head(staging), git_ops.git(target.repo, "rev-parse", "runbook/staging")
    common = staging / "backend/app/services/common.py"
    common.write_text(common.read_text() + "\n# legacy: qty_open\n")     # dirt only the gate sees
    failed = standardize_fields(environment="staging", return_state=True)
    assert failed.is_failed() and "code:old-names" in str(failed.message) + slack_standin.bodies()
    assert ledger.migration_state(target.staging_url, MIGRATION_014)["status"] == "applied"
    assert column_exists(target.staging_url, "lots", "quantity_open")
    assert git_ops.head(staging) == deployed
    assert git_ops.git(target.repo, "rev-parse", "runbook/staging") == branch
    assert "014_standardize_quantity_fields:apply" not in slack_standin.bodies().split("Rolled back")[-1]


def test_parity_failure_on_target_rolls_back(target, slack_standin):
    """A row that mismatches on the target only (the rehearsal passes): apply is reverted. The
    mismatch is a write that bypasses the sync trigger (as a replication apply would), landing
    on the target between the backfill and the parity gate."""
    dbname = database_name(target.staging_url)
    ledger.ensure(target.staging_url)
    with connect(target.staging_url) as conn:
        lot = conn.execute("SELECT id FROM lots WHERE qty_open > 1 ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute(f"""
            CREATE FUNCTION public.corrupt_one() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF current_database() = '{dbname}' AND NEW.id = '{MIGRATION_014}' AND NEW.status = 'applied' THEN
                PERFORM set_config('session_replication_role', 'replica', true);
                UPDATE public.lots SET quantity_open = qty_open - 0.5 WHERE id = '{lot}';
                PERFORM set_config('session_replication_role', 'origin', true);
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER zz_corrupt AFTER INSERT OR UPDATE ON runbook.migrations FOR EACH ROW
              EXECUTE FUNCTION public.corrupt_one();""")
    before = checksums.table_checksums(target.staging_url)
    from runbook.context import build_context
    from runbook.tasks.target.deploy import ensure_deployed
    head_before = git_ops.head(ensure_deployed(build_context("t", "staging", "t")))
    state = standardize_fields(environment="staging", return_state=True)
    assert_rolled_back(target, before, head_before, slack_standin, state, "parity")
    assert str(lot) in slack_standin.bodies()          # the mismatching row is in the sample


@pytest.mark.gate_fails("code:old-names")
def test_old_name_left_in_code_rolls_back(target, slack_standin):
    """The deployment re-introduces an old name (a post-checkout hook in the deploy worktree)."""
    hook = target.repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\ncase \"$PWD\" in */deploy/*) "
                    "printf 'LEGACY_FIELD = \"qty_open\"\\n' >> backend/app/services/common.py;; esac\n")
    hook.chmod(0o755)
    before = checksums.table_checksums(target.staging_url)
    head_before = git_ops.head(target.repo)
    state = standardize_fields(environment="staging", return_state=True)
    hook.unlink()
    assert_rolled_back(target, before, head_before, slack_standin, state, "code:old-names")
    assert "common.py" in slack_standin.bodies()


@pytest.mark.gate_fails("smoke:patterns")
def test_failing_pattern_rolls_back(target, slack_standin):
    """Code that builds a column name from pieces (the plan's risk 2) breaks after the rename."""
    commit_to_target(target.repo, SERVICE, 'lot["status"] = "closed" if lot["qty_open"] == 0',
                     'lot["status"] = "closed" if lot["qty_" + "open"] == 0')
    before = checksums.table_checksums(target.staging_url)
    head_before = git_ops.head(target.repo)
    state = standardize_fields(environment="staging", return_state=True)
    assert_rolled_back(target, before, head_before, slack_standin, state, "smoke")
    # the code commit was reverted on the environment's branch, history kept
    log = git_ops.git(target.repo, "log", "--format=%s", "runbook/staging")
    assert log.splitlines()[0].startswith("Revert")


def test_concurrent_run_refused(target):
    """One lease per database for every flow that changes it: a run holding it is named."""
    ledger.ensure(target.staging_url)
    with lease.held(target.staging_url, "rollback-run-1", "rollback-migration"):
        with pytest.raises(RunbookError, match="in use by run rollback-run-1 of rollback-migration"):
            standardize_fields(environment="staging")


def test_killed_mid_backfill_then_rerun_converges(target):
    """SIGKILL during the target's backfill (no hook runs); the re-run resumes from the ledger."""
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_LEVEL": "ERROR"}
    code = ("from runbook.flows.week0.day1_2 import standardize_fields\n"
            "standardize_fields(environment='staging', batch_size=20)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            cp = None
            try:
                cp = ledger.backfill_progress(target.staging_url, MIGRATION_014).get("lots")
            except Exception:
                pass                                    # ledger not created yet
            if cp and 0 < cp["rows_done"] and not cp["finished"]:
                break
            assert proc.poll() is None, "flow ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("backfill never started")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    pid_file = target.workspace / "deploy" / "staging.api.pid"
    leftover = int(pid_file.read_text())            # the killed run's API: still serving
    assert psutil.pid_exists(leftover)
    redis_pid_file = target.workspace / "redis" / "staging" / "redis.pid"
    assert redis_pid_file.exists() or shutil.which("redis-server") is None
    leftover_redis = int(redis_pid_file.read_text()) if redis_pid_file.exists() else None
    killed_at = ledger.backfill_progress(target.staging_url, MIGRATION_014)["lots"]["rows_done"]
    assert ledger.migration_state(target.staging_url, MIGRATION_014)["status"] == "applying"
    out = standardize_fields(environment="staging")
    assert out.status == "completed"
    for pid in (leftover, leftover_redis):          # its API and its Redis: stopped by the re-run
        assert pid is None or not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    n, mismatched = lots_parity(target.staging_url)
    assert mismatched == 0 and n == 2000
    cp = ledger.backfill_progress(target.staging_url, MIGRATION_014)["lots"]
    assert cp["finished"] and cp["rows_done"] == n and killed_at > 0
    assert json.loads(json.dumps(ledger.migration_state(target.staging_url, MIGRATION_014)["baseline"]))


def test_writes_through_old_and_new_names(fresh_db):
    """While old and new code run side by side, either name's writes show through both."""
    from runbook.demo.seed import seed
    from runbook.demo.workspace import TEMPLATE
    from runbook.tasks.database import migrate, migration_files
    from runbook.tasks.database.schema_build import load_schema

    load_schema(fresh_db, TEMPLATE)
    seed(fresh_db, 400)
    migrate.apply(fresh_db, migration_files.load(MIGRATION_014))
    with connect(fresh_db) as conn:
        a, b = [r[0] for r in conn.execute("SELECT id FROM lots WHERE qty_open > 2 ORDER BY id LIMIT 2")]
        conn.execute("UPDATE lots SET qty_open = 1.5 WHERE id = %s", (a,))            # old code
        conn.execute("UPDATE lots SET quantity_open = 2.5 WHERE id = %s", (b,))       # new code
        conn.execute("SELECT reduce_lot(%s, 0.5, '2025-11-03')", (a,))                # database code
        pid, sid = conn.execute("SELECT portfolio_id, security_id FROM lots LIMIT 1").fetchone()
        old_row = conn.execute(
            "INSERT INTO lots (portfolio_id, security_id, symbol, quantity, cost_basis, cost_basis_per_share,"
            " acquisition_date, qty_original, qty_open) VALUES (%s, %s, 'X', 3, 30, 10, '2025-01-02', 3, 3)"
            " RETURNING id", (pid, sid)).fetchone()[0]
        new_row = conn.execute(
            "INSERT INTO lots (portfolio_id, security_id, symbol, quantity, cost_basis, cost_basis_per_share,"
            " acquisition_date, quantity_original, quantity_open) VALUES (%s, %s, 'X', 4, 40, 10, '2025-01-02', 4, 2)"
            " RETURNING id", (pid, sid)).fetchone()[0]
        rows = dict((r[0], r[1:]) for r in conn.execute(
            "SELECT id, qty_open, quantity_open, qty_original, quantity_original FROM lots WHERE id = ANY(%s)",
            ([a, b, old_row, new_row],)))
    assert rows[a][:2] == (1, 1) and rows[b][:2] == (2.5, 2.5)
    assert rows[old_row] == (3, 3, 3, 3) and rows[new_row] == (2, 2, 4, 4)


@pytest.mark.parametrize("mode", ["down", "500", "slow"])
def test_broken_slack_never_changes_the_outcome(target, slack_standin, mode):
    """Slack down, failing or slow: the run still rolls back and ends Failed, in bounded time."""
    {"down": slack_standin.down, "500": lambda: slack_standin.fail(status=500),
     "slow": lambda: slack_standin.slow(120)}[mode]()
    hook = target.repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\ncase \"$PWD\" in */deploy/*) "
                    "printf 'LEGACY_FIELD = \"qty_open\"\\n' >> backend/app/services/common.py;; esac\n")
    hook.chmod(0o755)
    before = checksums.table_checksums(target.staging_url)
    started = time.monotonic()
    state = standardize_fields(environment="staging", return_state=True)
    elapsed = time.monotonic() - started
    hook.unlink()
    assert state.is_failed()
    assert checksums.table_checksums(target.staging_url) == before
    assert not column_exists(target.staging_url, "lots", "quantity_open")
    assert elapsed < 600          # a hang guard, not a benchmark: delivery is bounded (~20 s)


def test_production_refuses_what_staging_has_not_applied(target, slack_standin):
    before = checksums.table_checksums(target.database_url)
    state = standardize_fields(environment="production", require_approval=False, return_state=True)
    assert state.is_failed()
    assert "run this flow on staging first" in str(state.message) + slack_standin.bodies()
    assert checksums.table_checksums(target.database_url) == before
    assert not column_exists(target.database_url, "lots", "quantity_open")

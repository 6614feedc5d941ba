"""Bad input at the command line is refused before anything starts: every `runbook run -p`
value is checked against the flow's own signature, unknown names are refused, and a TARGET_REPO
with uncommitted changes is refused naming the files. Through the real CLI (a subprocess): exit
2, one line, no traceback, and nothing changed (no Prefect started, no flow run, the database
and the checkout as they were)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.pg import connect

RUNBOOK = [str(Path(sys.executable).with_name("runbook"))]


@pytest.fixture
def setup(fresh_db, tmp_path):
    """A database with one table, a clean one-commit checkout, and a Prefect home of its own."""
    with connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE lots (id int PRIMARY KEY, qty_open numeric)")
        conn.execute("INSERT INTO lots VALUES (1, 5)")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.py").write_text("QTY = 'qty_open'\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    env = {"DATABASE_URL": fresh_db, "STAGING_DATABASE_URL": fresh_db, "TARGET_REPO": str(repo),
           "RUNBOOK_WORKSPACE": str(tmp_path / "ws"), "PREFECT_HOME": str(tmp_path / "prefect")}
    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, **env}
    return {"url": fresh_db, "repo": repo, "env": env, "tmp": tmp_path}


def run_cli(setup, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RUNBOOK, "run", "week0-day1-2", *args], env=setup["env"], cwd=setup["tmp"],
                          capture_output=True, text=True, timeout=300, check=False)


def state(setup) -> tuple:
    """What a start would change: the database's schemas and rows, Prefect's database (a flow
    run needs one), the workspace, the checkout's commit."""
    with connect(setup["url"]) as conn:
        schemas = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' ORDER BY 1").fetchall()
        rows = conn.execute("SELECT * FROM lots ORDER BY id").fetchall()
    prefect_dbs = sorted(str(p) for p in (setup["tmp"] / "prefect").rglob("*.db")) \
        if (setup["tmp"] / "prefect").exists() else []
    head = subprocess.run(["git", "-C", str(setup["repo"]), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout
    return schemas, rows, prefect_dbs, (setup["tmp"] / "ws").exists(), head


def assert_refused(setup, result, message: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr + result.stdout
    assert lines == [f"error: {message}"], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("param,message", [
    ("lock_timeout_ms=abc", "parameter lock_timeout_ms must be an integer from 10 to 600000, not 'abc'"),
    ("batch_size=-5", "parameter batch_size must be an integer from 1 to 1000000, not '-5'"),
    ("batch_size=0", "parameter batch_size must be an integer from 1 to 1000000, not '0'"),
    ("dry_run=perhaps", "parameter dry_run must be true or false, not 'perhaps'"),
    ("backfill_batch_budget_ms=-1", "parameter backfill_batch_budget_ms must be a number from 0 to 60000, not '-1'"),
    ("backfill_max_wal_mb_s=0", "parameter backfill_max_wal_mb_s must be a number greater than 0 and at most 10000"
                                " (or unset), not '0'"),
    ("backfill_workers=0", "parameter backfill_workers must be an integer from 1 to 16, not '0'"),
    ("backfill_max_commit_ms=0", "parameter backfill_max_commit_ms must be a number greater than 0 and at most 60000"
                                 " (or unset), not '0'"),
    ("environment=prod", "parameter environment must be 'staging' or 'production', not 'prod'"),
    ("batch_sise=100", ("parameter batch_sise is not a parameter of week0-day1-2; it takes: environment, dry_run, "
                        "require_approval, batch_size, lock_timeout_ms, statement_timeout_ms, "
                        "idle_in_transaction_timeout_ms, accept_trigger_effects, target, "
                        "backfill_batch_budget_ms, backfill_workers, backfill_max_wal_mb_s, "
                        "backfill_max_commit_ms")),
])
def test_a_bad_parameter_is_refused_in_one_line_before_anything_starts(setup, param, message):
    before = state(setup)
    assert_refused(setup, run_cli(setup, "-p", param), message)
    assert state(setup) == before and before[2] == [] and not before[3]


def test_a_dirty_target_repo_is_refused_naming_the_files(setup):
    (setup["repo"] / "app.py").write_text("QTY = 'quantity_open'\n")         # modified, not committed
    (setup["repo"] / "notes.txt").write_text("untracked\n")
    before = state(setup)
    result = run_cli(setup, "-p", "environment=staging")
    assert_refused(setup, result, f"TARGET_REPO {setup['repo'].resolve()} has uncommitted changes a run would "
                                  "not deploy: app.py, notes.txt; commit or stash them, or pass --allow-dirty")
    assert state(setup) == before and before[2] == []
    assert (setup["repo"] / "app.py").read_text() == "QTY = 'quantity_open'\n"    # the edit left alone


def test_allow_dirty_runs_past_the_refusal(setup):
    """--allow-dirty is the explicit way past: the run starts (a dry run: Prefect's database
    appears in its home) and the checkout is left as it was."""
    (setup["repo"] / "notes.txt").write_text("untracked\n")
    result = run_cli(setup, "--allow-dirty", "-p", "dry_run=true")
    assert "uncommitted" not in result.stderr
    assert list((setup["tmp"] / "prefect").rglob("*.db")), result.stderr[-2000:]
    assert (setup["repo"] / "notes.txt").read_text() == "untracked\n"

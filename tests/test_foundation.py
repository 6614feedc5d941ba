"""The foundation: settings fail fast in one line, the schema loads on PostgreSQL 15 and the
embedded 16, and `runbook demo` works on the embedded defaults from nothing."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from runbook.demo.workspace import TEMPLATE
from runbook.pg import EmbeddedPostgres, connect, recreate_database
from runbook.tasks.database.schema_build import load_schema

RUNBOOK = [sys.executable, "-c", "from runbook.cli.app import main; main()"]
ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], env: dict, cwd: Path | None = None, timeout: int = 120):
    return subprocess.run(RUNBOOK + args, env={**os.environ, **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("url, expected", [
    ("postgresql://dawsos:s3cretpw@127.0.0.1:1/dawsos", "DATABASE_URL: cannot connect to postgresql://dawsos:***@127.0.0.1:1/dawsos"),
    ("mysql://dawsos:s3cretpw@127.0.0.1/dawsos", "setting DATABASE_URL is invalid"),
])
def test_bad_database_url_is_one_clear_line(tmp_path, url, expected):
    r = run_cli(["run", "week0-day1-2", "--param", "environment=production"],
                {"DATABASE_URL": url, "TARGET_REPO": str(tmp_path)}, cwd=tmp_path)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert expected in lines[0] and "s3cretpw" not in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


def test_bad_parameter_names_the_parameter(tmp_path):
    r = run_cli(["run", "week0-day1-2", "--param", "environment=prod"], {}, cwd=tmp_path)
    assert r.returncode == 2 and "parameter environment must be 'staging' or 'production'" in r.stderr


def _catalog(url: str) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY 1, 2").fetchall()


def test_schema_loads_on_the_machine_server_and_embedded_16(fresh_db):
    load_schema(fresh_db, TEMPLATE)
    here = _catalog(fresh_db)
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="rb-pg16-")), keep_running=False)
    try:
        admin = server.start()
        with connect(admin) as conn:
            assert conn.info.server_version // 10000 == 16
        url = recreate_database(admin, "schema16")
        load_schema(url, TEMPLATE)
        assert _catalog(url) == here
        assert any(t == "lots" and c == "qty_open" for t, c, *_ in here)
    finally:
        server.stop()


def test_runbook_demo_on_embedded_defaults(tmp_path, installed_python):
    """The README's main command, from nothing, on the embedded defaults, run from a
    non-editable install (migrations, demo template, catalog SQL and the change sets' patches
    come as package data). Through the first change-set day: tests/test_demo_cli.py runs the
    whole plan."""
    python = str(installed_python)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "STAGING_", "TARGET_", "SLACK_", "BACKUP_", "RUNBOOK_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    env.pop("PREFECT_API_URL", None)
    env.pop("PYTHONPATH", None)
    where = subprocess.run([python, "-c", "import runbook.flows, runbook.migrations; "
                            "print(runbook.flows.__file__, runbook.migrations.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert str(ROOT) not in where and where.count(str(installed_python.parents[1])) == 2, where
    workspace = Path(tempfile.mkdtemp(prefix="rb-demo-")) / "demo"   # pgserver's user must reach it
    try:
        r = subprocess.run([python, "-c", "from runbook.cli.app import main; main()",
                            "demo", "--workspace", str(workspace), "--rows", "2000", "--through", "week3-day1-2"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1500)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert r.stdout.count(" ok ") >= 13 and "portfolio_overview" in r.stdout
        assert "▶ Week 3 Days 1-2" in r.stdout and "shipped yet" not in r.stdout   # the patches came along
        prod = workspace / "deploy" / "production" / "backend"
        assert "quantity_open" in (prod / "app/services/trade_execution.py").read_text()
    finally:
        EmbeddedPostgres(workspace / "pg").stop_if_running()

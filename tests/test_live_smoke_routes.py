"""The smoke covers every API route, writes included: on data it creates and removes, the sell
route reduces a lot and the table shows it; a broken write path or a write route nobody wrote
a scenario for fails the smoke, named."""
from __future__ import annotations

import pytest
from live_support import demo_db  # noqa: F401

from runbook.demo.workspace import TEMPLATE, init_repo
from runbook.expectations import api_routes
from runbook.expectations.smoke import smoke
from runbook.pg import connect
from runbook.plan import MIGRATION_014
from runbook.tasks.database import migrate, migration_files
from runbook.tasks.target.api_server import ApiServer

SELL = "POST /api/portfolios/{portfolio_id}/sell"


@pytest.fixture
def api(demo_db, tmp_path):  # noqa: F811
    init_repo(TEMPLATE, tmp_path / "repo")
    server = ApiServer(tmp_path / "repo", demo_db)
    server.start()
    yield server, tmp_path / "repo", demo_db
    server.stop()


def smoke_data_left(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM securities WHERE symbol = 'RBSMOKE'").fetchone()[0] + \
            conn.execute("SELECT count(*) FROM lots WHERE symbol = 'RBSMOKE'").fetchone()[0] + \
            conn.execute("SELECT count(*) FROM transactions WHERE symbol = 'RBSMOKE'").fetchone()[0]


def test_every_route_read_and_written_before_and_during_the_rename(api):
    server, checkout, url = api
    result, runs = smoke(server.base_url, checkout, url, server.headers())
    assert result.passed, result.sample
    routes = {r.pattern for r in runs if " /" in r.pattern}
    assert SELL in routes and "GET /api/portfolios/{portfolio_id}/holdings" in routes
    assert smoke_data_left(url) == 0
    migrate.apply(url, migration_files.load(MIGRATION_014))     # old code, both names in the table
    result, _ = smoke(server.base_url, checkout, url, server.headers())
    assert result.passed, result.sample
    assert smoke_data_left(url) == 0


@pytest.mark.gate_fails("smoke:routes")
def test_a_broken_write_path_fails_the_smoke(api):
    server, checkout, url = api
    with connect(url) as conn:         # the sale's ledger row can no longer be written
        conn.execute("""CREATE FUNCTION no_sells() RETURNS trigger LANGUAGE plpgsql AS
                        $$ BEGIN RAISE EXCEPTION 'sells are broken'; END $$;
                        CREATE TRIGGER no_sells BEFORE INSERT ON transactions FOR EACH ROW
                        EXECUTE FUNCTION no_sells()""")
    result, _ = smoke(server.base_url, checkout, url, server.headers())
    assert not result.passed and [s["pattern"] for s in result.sample] == [SELL]
    assert smoke_data_left(url) == 0


@pytest.mark.gate_fails("smoke:routes")
def test_a_write_route_without_a_scenario_fails_the_smoke(api, monkeypatch):
    server, checkout, url = api
    monkeypatch.setattr(api_routes, "WRITE_SCENARIOS", {})
    result, _ = smoke(server.base_url, checkout, url, server.headers())
    assert not result.passed
    assert result.sample == [{"pattern": SELL, "status": "error", "http": None,
                              "problem": "a write route with no smoke scenario (expectations/api_routes.py)"}]


def test_restart_by_another_run_stops_the_api_it_did_not_start(demo_db, tmp_path):  # noqa: F811
    """An API a run left serving (its pid file names it) is stopped by the next run's restart,
    not orphaned: the pid file goes only with the process it names."""
    import psutil

    init_repo(TEMPLATE, tmp_path / "repo")
    pid_file = tmp_path / "staging.api.pid"
    earlier = ApiServer(tmp_path / "repo", demo_db, pid_file=pid_file)
    earlier.start()
    left = earlier.proc.pid
    later = ApiServer(tmp_path / "repo", demo_db, pid_file=pid_file)
    try:
        later.restart()
        assert not psutil.pid_exists(left) or psutil.Process(left).status() == psutil.STATUS_ZOMBIE
        assert pid_file.read_text() == str(later.proc.pid)
        earlier.stop()                               # its process is gone: the file is later's
        assert pid_file.read_text() == str(later.proc.pid)
    finally:
        later.stop()
        earlier.stop()
    assert not pid_file.exists()

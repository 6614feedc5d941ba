"""Week 0 Day 3-4 end to end (real PostgreSQL, Prefect server, git, API, Slack stand-in), and
the duplicate-definition detection and pool codemod on the template."""
from __future__ import annotations

import shutil
import threading
import time

import pytest

from runbook.demo.workspace import TEMPLATE
from runbook.errors import GateFailed, RunbookError
from runbook.flows.week0.day3_4 import integrity_and_pooling
from runbook.pg import connect
from runbook.tasks.code import git_ops
from runbook.tasks.code.pool import configure_pool
from runbook.tasks.code.schema_defs import dedupe, duplicates
from runbook.tasks.database import checksums
from runbook.tasks.target.api_server import ApiServer

FK_NAMES = ("lots_security_id_fkey", "transactions_security_id_fkey")


def _fks(url: str) -> dict[str, bool]:
    with connect(url) as conn:
        return dict(conn.execute("SELECT conname, convalidated FROM pg_constraint WHERE conname = ANY(%s)",
                                 (list(FK_NAMES),)).fetchall())


def _orphans(url: str) -> dict[str, int]:
    with connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t} x WHERE x.security_id IS NOT NULL AND NOT EXISTS "
                                f"(SELECT 1 FROM securities s WHERE s.id = x.security_id)").fetchone()[0]
                for t in ("lots", "transactions")}


# -- unit: the template's duplicates and the codemods -------------------------------------------

def test_duplicate_definitions_found_and_removed(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(TEMPLATE, repo)
    found = {t: sorted(d.path for d in ds) for t, ds in duplicates(repo).items()}
    assert found == {
        "public.audit_log": ["backend/db/migrations/009_jwt_auth.sql",
                             "backend/db/migrations/010_add_users_and_audit_log.sql", "backend/db/schema/auth.sql"],
        "public.position_factor_betas": ["backend/db/migrations/009_add_scenario_dar_tables.sql",
                                         "backend/db/schema/scenario_factor_tables.sql"],
        "public.scenario_shocks": ["backend/db/migrations/009_add_scenario_dar_tables.sql",
                                   "backend/db/schema/scenario_factor_tables.sql"],
        "public.users": ["backend/db/migrations/010_add_users_and_audit_log.sql", "backend/db/schema/auth.sql"]}
    m009 = repo / "backend/db/migrations/009_add_scenario_dar_tables.sql"
    before = m009.read_bytes()
    preview = dedupe(repo, dry_run=True)
    assert m009.read_bytes() == before and "-CREATE TABLE IF NOT EXISTS scenario_shocks" in preview.diff()
    report = dedupe(repo)
    assert len(report.removed) == 5 and not report.unresolved
    assert duplicates(repo) == {}
    text = m009.read_text()
    assert "CREATE TABLE IF NOT EXISTS" not in text and "CREATE TABLE dar_history" in text   # the rest stays
    assert (repo / "backend/db/schema/scenario_factor_tables.sql").read_text().count("CREATE TABLE") == 2
    assert dedupe(repo).removed == []      # idempotent


def test_pool_codemod_on_template(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(TEMPLATE, repo)
    db_py = repo / "backend/app/core/database.py"
    before = db_py.read_text()
    assert "min_size" in configure_pool(repo, dry_run=True).diff() and db_py.read_text() == before
    report = configure_pool(repo)
    assert report.changed == ["backend/app/core/database.py", "backend/app/main.py"]
    text = db_py.read_text()
    assert "min_size=POOL_MIN_SIZE" in text and "POOL_COMMAND_TIMEOUT = 60" in text
    assert '"pool": await database.pool_health()' in (repo / "backend/app/main.py").read_text()
    compile(text, str(db_py), "exec")
    assert configure_pool(repo).changed == []   # idempotent
    assert "min_size" not in (TEMPLATE / "backend/app/core/database.py").read_text()   # template untouched
    (repo / "backend/app/main.py").write_text("x = 1\n")
    with pytest.raises(RunbookError, match="main.py"):
        configure_pool(repo)


# -- end to end --------------------------------------------------------------------------------

@pytest.mark.usefixtures("prefect_server")
def test_staging_run_quarantines_constrains_indexes_and_pools(target, slack_standin):
    url = target.staging_url
    lots_before = int(checksums.table_checksums(url, ["lots"])["lots"].split(":")[0])
    orphans_before = _orphans(url)
    assert orphans_before["lots"] == lots_before // 200                      # 0.5%
    with connect(url) as conn:         # cash flows of orphan transactions must move with them
        flows = conn.execute("SELECT count(*) FROM portfolio_cash_flows c JOIN transactions t ON t.id = c.transaction_id"
                             " WHERE NOT EXISTS (SELECT 1 FROM securities s WHERE s.id = t.security_id)"
                             "   AND t.security_id IS NOT NULL").fetchone()[0]
    assert flows >= 1

    out = integrity_and_pooling(environment="staging")

    assert out.status == "completed"
    assert {"015_add_fk_constraints:apply", "indexes:fk", "gate:fk-indexes", "gate:pool-health",
            "code:dedupe-schema", "smoke"} <= set(out.applied)
    assert _orphans(url) == {"lots": 0, "transactions": 0}
    assert _fks(url) == {n: True for n in FK_NAMES}
    with connect(url) as conn:
        moved = dict(conn.execute(
            "SELECT 'lots', count(*) FROM quarantine.lots UNION ALL "
            "SELECT 'transactions', count(*) FROM quarantine.transactions UNION ALL "
            "SELECT 'portfolio_cash_flows', count(*) FROM quarantine.portfolio_cash_flows").fetchall())
        runs = {r[0] for r in conn.execute("SELECT flow_run_id FROM quarantine.lots").fetchall()}
        indexes = {r[0] for r in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indisvalid AND indrelid IN "
            "('lots'::regclass, 'transactions'::regclass)").fetchall()}
    assert moved == {**orphans_before, "portfolio_cash_flows": flows}
    assert len(runs) == 1 and None not in runs
    assert {"idx_lots_portfolio_security", "idx_transactions_portfolio_transaction_date",
            "idx_lots_security_id", "idx_transactions_security_id"} <= indexes
    # the deployed code: pool configured, reported by the running API; duplicates gone
    deployed = target.deploy["staging"]
    assert "max_size=POOL_MAX_SIZE" in (deployed / "backend/app/core/database.py").read_text()
    assert duplicates(deployed) == {}
    assert "CREATE TABLE" not in (deployed / "backend/db/migrations/010_add_users_and_audit_log.sql").read_text()
    assert "min_size" not in (target.repo / "backend/app/core/database.py").read_text()  # source HEAD unmoved
    server = ApiServer(deployed, url)          # the deployed API, as the pool gate saw it
    try:
        server.start()
        pool = server.health()["pool"]
    finally:
        server.stop()
    assert pool["healthy"] is True and (pool["pool_min_size"], pool["pool_max_size"]) == (5, 20)
    assert (pool["timeout"], pool["command_timeout"]) == (30, 60) and pool["size"] >= 5
    assert slack_standin.requests == []


def _inject_orphan_after_quarantine(url: str, injected: dict, ready: threading.Event) -> None:
    """The app writing an orphan lot between 015's quarantine and its FK: the FK section is held
    back by a lock on securities (it retries on lock_timeout) until the orphan is in."""
    hold = connect(url)
    try:
        hold.execute("LOCK TABLE securities IN SHARE ROW EXCLUSIVE MODE")   # blocks ADD FOREIGN KEY only
        ready.set()
        with connect(url, autocommit=True) as app:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = app.execute("SELECT count(*) FROM runbook.migration_sections WHERE migration_id = "
                                   "'015_add_fk_constraints' AND section = 'quarantine_rows'"
                                   ).fetchone()[0] if app.execute(
                    "SELECT to_regclass('runbook.migration_sections')").fetchone()[0] else 0
                if done:
                    break
                time.sleep(0.05)
            injected["id"] = app.execute(
                "INSERT INTO lots SELECT (jsonb_populate_record(NULL::lots, to_jsonb(l) || jsonb_build_object("
                "'id', gen_random_uuid(), 'security_id', gen_random_uuid()))).* FROM lots l LIMIT 1 RETURNING id::text"
            ).fetchone()[0]
    finally:
        hold.rollback()
        hold.close()


@pytest.mark.gate_fails("orphans")
@pytest.mark.usefixtures("prefect_server")
def test_orphan_written_after_quarantine_fails_and_rolls_everything_back(target, slack_standin):
    url = target.staging_url
    before = checksums.table_checksums(url)
    head_before = git_ops.head(target.repo)     # what staging runs before the flow
    injected: dict = {}
    ready = threading.Event()
    app = threading.Thread(target=_inject_orphan_after_quarantine, args=(url, injected, ready), daemon=True)
    app.start()
    assert ready.wait(30)

    with pytest.raises(GateFailed) as failed:
        integrity_and_pooling(environment="staging", lock_timeout_ms=200)
    app.join(30)

    gate = failed.value.result
    assert gate.name == "orphans:lots.security_id"
    assert [r["id"] for r in gate.sample] == [injected["id"]]        # the app's row, named
    # everything back: FKs gone, quarantine emptied into the tables, byte for byte
    assert _fks(url) == {}
    with connect(url) as conn:
        assert conn.execute("SELECT to_regnamespace('quarantine')").fetchone()[0] is None
        conn.execute("DELETE FROM lots WHERE id = %s", (injected["id"],))   # the app's write stays; set aside
    assert checksums.diff(before, checksums.table_checksums(url)) == []
    assert git_ops.head(target.deploy["staging"]) == head_before
    # the release manager heard about it: which gate, and the row
    assert slack_standin.requests
    alert = slack_standin.bodies()
    assert "orphans:lots.security_id" in alert and injected["id"] in alert


@pytest.mark.gate_fails("schema:rebuild-matches-live")
@pytest.mark.usefixtures("prefect_server")
def test_late_gate_failure_reverts_code_indexes_fks_and_quarantine(target, slack_standin):
    """A hand-made hotfix column on live (drift from the repo's SQL) fails the rebuild
    comparison, the last gate: every step before it is undone, in reverse order."""
    url = target.staging_url
    with connect(url) as conn:
        conn.execute("ALTER TABLE audit_log ADD COLUMN hotfix_note text")
    before = checksums.table_checksums(url)
    with connect(url) as conn:
        indexes_before = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'").fetchall()}

    with pytest.raises(GateFailed) as failed:
        integrity_and_pooling(environment="staging")

    gate = failed.value.result
    assert gate.name == "schema:rebuild-matches-live"
    assert {"kind": "columns", "name": "audit_log.hotfix_note", "live": "text", "rebuilt": "(missing)"} in gate.sample
    assert checksums.diff(before, checksums.table_checksums(url)) == []     # every orphan back, byte for byte
    assert _fks(url) == {}
    with connect(url) as conn:
        assert conn.execute("SELECT to_regnamespace('quarantine')").fetchone()[0] is None
        indexes_after = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'").fetchall()}
    assert indexes_after == indexes_before
    deployed = target.deploy["staging"]
    assert git_ops.head(deployed) == git_ops.head(target.repo)             # code reverted and redeployed
    assert "min_size" not in (deployed / "backend/app/core/database.py").read_text()
    assert "CREATE TABLE" in (deployed / "backend/db/migrations/010_add_users_and_audit_log.sql").read_text()
    alert = slack_standin.bodies()
    assert "schema:rebuild-matches-live" in alert and "hotfix_note" in alert
    assert "code:pool-config" in alert and "015_add_fk_constraints:apply" in alert   # what was rolled back

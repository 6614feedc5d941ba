"""The fleet: targets.toml read strictly; a plan day rolled out on a real Prefect server by a
process work pool with two workers over three databases — staging, a canary made to fail its
gate, and a production target: the rollout halts at the canary, the canary is left as it was,
the production target is never touched, staging keeps its migration."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from prefect_processes import executable, prefect_server, process, wait_until
from psycopg import sql

from runbook.errors import RunbookError
from runbook.pg import connect, with_database
from runbook.plan import MIGRATION_014, WEEK0_DAY1_2
from runbook.targets import load_targets, rollout_waves
from runbook.tasks.database import ledger

FLEET = """
[[target]]
name = "stg"
role = "staging"
database_url_env = "FLEET_STG_URL"

[[target]]
name = "canary"
role = "canary"
database_url_env = "FLEET_CANARY_URL"

[[target]]
name = "prod-b"
role = "production"
database_url_env = "FLEET_PROD_B_URL"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text)
    return path


def test_waves_go_staging_then_one_canary_then_the_rest(tmp_path):
    prod_c = '[[target]]\nname = "prod-c"\nrole = "production"\ndatabase_url_env = "FLEET_PROD_C_URL"\n'
    fleet = load_targets(write(tmp_path, FLEET + prod_c))
    assert [[t.name for t in w] for w in rollout_waves(fleet)] == [["stg"], ["canary"], ["prod-b", "prod-c"]]


@pytest.mark.parametrize("text, message", [
    (FLEET.replace('role = "canary"', 'role = "prod"'), "target canary: role must be one of staging, canary, production"),
    (FLEET.replace('"prod-b"', '"canary"'), "target name(s) used twice: canary"),
    (FLEET.replace('role = "staging"', 'role = "canary"'), "no target with role staging"),
    (FLEET.replace('database_url_env = "FLEET_STG_URL"', 'database_url = "postgresql://x"'),
     "target stg: unknown key(s) database_url"),
    ("[[target]]\nname = 1", "key name is missing"),
])
def test_a_bad_targets_file_names_the_problem(tmp_path, text, message):
    with pytest.raises(RunbookError, match="targets file .*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_targets(write(tmp_path, text))


def applied(url: str) -> str | None:
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('runbook.migrations')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT status FROM runbook.migrations WHERE id = %s", (MIGRATION_014,)).fetchone()
        return row[0] if row else None


def test_rollout_halts_at_the_failing_canary(target, admin_url, tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from runbook.flows.rollout import rollout
    from runbook.flows.standup import collect
    from runbook.settings import get_settings

    urls = {"FLEET_STG_URL": target.staging_url, "FLEET_CANARY_URL": target.database_url}
    prod_b = f"rbfleet_{uuid.uuid4().hex[:8]}"
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(prod_b), sql.Identifier(target.database_url.rsplit("/", 1)[1])))
    urls["FLEET_PROD_B_URL"] = with_database(admin_url, prod_b)
    # the canary's apply is followed by a write that bypasses the sync trigger (as a replication
    # apply would): its parity gate fails on the canary itself, after 014 went in there
    canary_db = target.database_url.rsplit("/", 1)[1]
    ledger.ensure(urls["FLEET_CANARY_URL"])
    with connect(urls["FLEET_CANARY_URL"]) as conn:
        lot = conn.execute("SELECT id FROM lots WHERE qty_open > 1 ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute(f"""
            CREATE FUNCTION public.corrupt_one() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF current_database() = '{canary_db}' AND NEW.id = '{MIGRATION_014}' AND NEW.status = 'applied' THEN
                PERFORM set_config('session_replication_role', 'replica', true);
                UPDATE public.lots SET quantity_open = qty_open - 0.5 WHERE id = '{lot}';
                PERFORM set_config('session_replication_role', 'origin', true);
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER zz_corrupt AFTER INSERT OR UPDATE ON runbook.migrations FOR EACH ROW
              EXECUTE FUNCTION public.corrupt_one();""")
    env = {**os.environ, **urls, "RUNBOOK_TARGETS": str(write(tmp_path, FLEET))}
    for k, v in urls.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("RUNBOOK_TARGETS", env["RUNBOOK_TARGETS"])
    get_settings.cache_clear()
    try:
        with prefect_server(tmp_path / "prefect") as api:
            env["PREFECT_API_URL"] = api
            log = tmp_path / "deploy.log"
            with process([executable("runbook"), "deploy", "--work-pool", "fleet"], env, log, tmp_path) as p:
                wait_until(lambda: p.poll() == 0, timeout=300, what="runbook deploy", proc=p, log=log)
            assert f"deployed {WEEK0_DAY1_2.flow_name}/{WEEK0_DAY1_2.key} on work pool fleet" in log.read_text()
            workers = [process([executable("prefect"), "worker", "start", "--pool", "fleet", "--name", f"w{i}"],
                               env, tmp_path / f"worker{i}.log", tmp_path) for i in (1, 2)]
            for w in workers:
                w.__enter__()
            try:
                with temporary_settings({PREFECT_API_URL: api}):
                    state = rollout(plan_day=WEEK0_DAY1_2.key, require_approval=False, return_state=True)
                    fleet = collect(None).fleet                     # the standup, per target
            finally:
                for w in workers:
                    w.__exit__(None, None, None)
        assert state.is_failed()
        assert "halted: canary ended FAILED; not started: prod-b" in state.message
        assert "parity" in state.message                                       # the canary's own gate
        assert fleet == [f"{WEEK0_DAY1_2.week} {WEEK0_DAY1_2.day} {WEEK0_DAY1_2.title}: "
                         "canary: failed, stg: completed"]
        assert applied(urls["FLEET_STG_URL"]) == "applied"                       # staging keeps it
        assert applied(urls["FLEET_CANARY_URL"]) in (None, "reverted")           # the canary rolled back alone
        with connect(urls["FLEET_CANARY_URL"]) as conn:
            cols = {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns "
                                               "WHERE table_name = 'lots'").fetchall()}
        assert "quantity_open" not in cols
        assert applied(urls["FLEET_PROD_B_URL"]) is None                         # never touched
    finally:
        get_settings.cache_clear()
        with connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(prod_b)))

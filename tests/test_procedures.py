"""Every procedure of the plan proven by running it: the code rollback flow on its own, the
contract flow's success path (017 after N green verification days, the history made by real
verification runs, N = 1), and the standup ticking Day 3-4 and Day 5 from real runs.
Real PostgreSQL, real Prefect test server, real git, the real demo API, Slack stand-in."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_operations import own_prefect_server  # noqa: F401  (the fixture, shared)

from runbook.errors import RunbookError
from runbook.flows.contract import contract_quantity_fields
from runbook.flows.rollback import code_steps, rollback_code
from runbook.flows.standup import collect
from runbook.flows.verification import verification
from runbook.flows.week0.day1_2 import standardize_fields
from runbook.pg import connect
from runbook.plan import MIGRATION_017, PLAN, WEEK0_DAY1_2, WEEK0_DAY3_4, WEEK0_DAY5
from runbook.tasks.code import git_ops
from runbook.tasks.database import checksums, ledger

pytestmark = pytest.mark.usefixtures("prefect_server")
TRADES = "backend/app/services/trade_execution.py"


def lots_columns(url: str) -> set[str]:
    with connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'lots'").fetchall()}


def last_run_of(url: str, flow_name: str) -> str:
    with ledger.cursor(url) as cur:
        cur.execute("SELECT flow_run_id FROM runbook.run_steps WHERE flow_name = %s ORDER BY id DESC LIMIT 1",
                    (flow_name,))
        return cur.fetchone()["flow_run_id"]


def test_rollback_code_reverts_a_runs_code_and_keeps_the_data(target, slack_standin):
    deploy = target.deploy["staging"]
    assert standardize_fields(environment="staging").status == "completed"
    run = last_run_of(target.staging_url, WEEK0_DAY1_2.flow_name)
    applied = code_steps(target.staging_url, run)
    assert applied and "qty_open" not in (deploy / TRADES).read_text()
    data_before = checksums.table_checksums(target.staging_url)

    report = rollback_code(run=run, environment="staging")
    # every code step of that run reverted, newest first, on the environment's branch
    assert [r.split(" (")[0] for r in report["reverted"]] == [r["step"] for r in applied]
    assert "qty_open" in (deploy / TRADES).read_text()
    assert git_ops.head(deploy) == git_ops.head(target.repo)        # the code the run started on
    assert not git_ops.is_dirty(deploy)
    assert code_steps(target.staging_url, run) == []
    assert report["budget_s"] == 300 and report["elapsed_s"] > 0
    assert any(g["name"] == "smoke:after-rollback" and g["passed"] for g in report["gates"])
    # the data stays as the run left it (014 expanded, both column sets in sync)
    assert checksums.table_checksums(target.staging_url) == data_before
    assert {"qty_open", "quantity_open"} <= lots_columns(target.staging_url)
    assert slack_standin.requests == []

    # nothing left to roll back: one clear line, nothing changed
    head = git_ops.head(deploy)
    with pytest.raises(RunbookError, match="no applied code step"):
        rollback_code(run=run, environment="staging")
    assert git_ops.head(deploy) == head


def test_contract_applies_017_after_green_verification_days(target, slack_standin):
    assert standardize_fields(environment="staging").status == "completed"
    with pytest.raises(RunbookError, match="contract:green-days"):      # no verification yet
        contract_quantity_fields(environment="staging", min_green_days=1)
    assert {"qty_open", "qty_original"} <= lots_columns(target.staging_url)
    slack_standin.clear()

    green = verification(environment="staging")                          # a real, green day
    assert not green.failed
    outcome = contract_quantity_fields(environment="staging", min_green_days=1)
    assert outcome.status == "completed" and f"{MIGRATION_017}:apply" in " ".join(outcome.applied)
    columns = lots_columns(target.staging_url)
    assert not {"qty_open", "qty_original"} & columns and {"quantity_open", "quantity_original"} <= columns
    assert ledger.migration_state(target.staging_url, MIGRATION_017)["status"] == "applied"
    assert lots_columns(target.database_url) >= {"qty_open", "qty_original"}   # production untouched
    assert slack_standin.requests == []


def test_standup_ticks_day3_4_and_day5_from_real_runs(own_prefect_server, target):  # noqa: F811
    t0 = datetime.now(UTC)
    for day in (WEEK0_DAY1_2, WEEK0_DAY3_4, WEEK0_DAY5):
        for environment in ("staging", "production"):
            assert day.load()(environment=environment, require_approval=False).status == "completed"
    report = collect(t0, since_last=False)
    ticked = report.ticked()
    for day in (WEEK0_DAY3_4, WEEK0_DAY5):
        assert {(day.key, item.text) for item in day.checklist} <= ticked, day.key
    # and the next plan day is the first one not yet done on production
    later = [d for d in PLAN if d not in (WEEK0_DAY1_2, WEEK0_DAY3_4, WEEK0_DAY5)]
    assert "\n".join(report.next).startswith(f"{later[0].week} {later[0].day}")

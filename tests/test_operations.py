"""Operations flows end to end: standup, verification (drift), contract refusals, rollback.
Real PostgreSQL, real Prefect test server, real git, real API, Slack stand-in."""
from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Scheduled

from runbook.context import build_context
from runbook.errors import RunbookError
from runbook.expectations.contract import green_streak
from runbook.expectations.evaluator import find_eval_calls
from runbook.expectations.verification import fk_catalog, no_eval, orphans
from runbook.flows.contract import contract_quantity_fields
from runbook.flows.rollback import rollback_migration
from runbook.flows.standup import collect, standup
from runbook.flows.verification import verification
from runbook.flows.week0.day1_2 import standardize_fields
from runbook.pg import connect
from runbook.plan import WEEK0_DAY1_2
from runbook.tasks.code import git_ops
from runbook.tasks.database import checksums, ledger
from runbook.tasks.notify.standup import step_of

pytestmark = pytest.mark.usefixtures("prefect_server")
M014 = "014_standardize_quantity_fields"


def _wait_paused(flow_name: str, timeout_s: float = 180) -> str:
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
            if runs:
                return str(runs[0].id)
            time.sleep(1)
    raise AssertionError(f"no paused run of {flow_name}")


@pytest.fixture
def own_prefect_server():
    """The standup reads the whole run history: give it a Prefect server of its own, so that
    runs of other test modules (sharing the session server) cannot land in its sections."""
    from prefect.events.worker import EventsWorker
    from prefect.testing.utilities import prefect_test_harness

    # task-run states travel as events through one process-wide worker whose client is bound
    # to the server it first saw: drain it so that it reconnects to each server in turn
    EventsWorker.drain_all(at_exit=False)
    with prefect_test_harness(server_startup_timeout=180):
        yield
        EventsWorker.drain_all(at_exit=False)


@pytest.mark.gate_fails("contract:green-days")
def test_standup_reports_real_runs(own_prefect_server, target, slack_standin):
    t0 = datetime.now(UTC)
    assert standardize_fields(environment="staging").status == "completed"          # completed
    with pytest.raises(RunbookError, match="contract:green-days"):                   # failed
        contract_quantity_fields(environment="staging", min_green_days=2)
    assert "contract:green-days" in slack_standin.bodies()

    errors: list[BaseException] = []

    def production():
        try:
            standardize_fields(environment="production", require_approval=True)
        except BaseException as exc:  # noqa: BLE001 - the rejection ends it; kept for the assert
            errors.append(exc)
    th = threading.Thread(target=production, daemon=True)
    th.start()
    paused_id = _wait_paused(WEEK0_DAY1_2.flow_name)                                       # paused
    with get_client(sync_client=True) as client:                                      # scheduled
        client.create_flow_run(verification, parameters={"environment": "production"},
                                           state=Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1)))
    try:
        report = collect(t0)
        completed = "\n".join(report.completed)
        blocked = "\n".join(report.blocked)
        nxt = "\n".join(report.next)
        assert "Week 0 Day 1-2 Database Field Standardization (staging): Migration 014 created" in completed
        assert "(production): paused awaiting approval" in blocked
        assert "contract-quantity-fields (staging): failed" in blocked and "contract:green-days" in blocked
        assert "verification (production): scheduled for" in nxt
        assert nxt.startswith("Week 0 Day 1-2 Database Field Standardization: Migration 014 run on production")
        assert report.ticked() == {("week0-day1-2", t) for t in (
            "Migration 014 created", "Migration 014 tested on staging", "Backend code updated (51 files)",
            "Pattern JSON files updated", "Validation complete")}
        md = standup(since=t0.isoformat())
        assert "- [ ] Migration 014 run on production" in md and "- [x] Migration 014 tested on staging" in md
        assert "Daily standup" in slack_standin.bodies() and "paused awaiting approval" in slack_standin.bodies()
    finally:
        from prefect.flow_runs import resume_flow_run
        resume_flow_run(paused_id, run_input={"approve": False, "approver": "qa", "comment": "test over"})
        th.join(180)
    assert errors and "rejected by qa" in str(errors[0])


@pytest.mark.gate_fails("code:old-names")
@pytest.mark.gate_fails("verify")
@pytest.mark.gate_fails("orphans")
@pytest.mark.gate_fails("fk-catalog")
@pytest.mark.gate_fails("code:no-eval")
def test_verification_catches_drift_contract_refuses_and_rollback(target, slack_standin):
    standardize_fields(environment="staging")
    before = checksums.table_checksums(target.staging_url)
    green = verification(environment="staging")
    assert {"migrations:verify", "parity:014", "code:old-names", "smoke"} <= set(green.checks)
    assert not green.failed and slack_standin.requests == []

    # drift 1: an old column name reintroduced in code committed in the deploy worktree
    deploy = target.deploy["staging"]
    legacy = deploy / "backend" / "app" / "services" / "legacy_report.py"
    legacy.write_text('OPEN_COLUMN = "qty_open"\n')
    git_ops.git(deploy, "add", "-A")
    git_ops.git(deploy, "commit", "-q", "-m", "reintroduce an old name")
    deployed = git_ops.head(deploy)
    # contract: the verification period (1 day asked) is green, but the code gate is not
    with pytest.raises(RunbookError, match="code:old-names"):
        contract_quantity_fields(environment="staging", min_green_days=1)
    with connect(target.staging_url) as conn:   # drift 2: an index 014 created is dropped
        conn.execute("DROP INDEX idx_lots_quantity_open")
    slack_standin.clear()
    with pytest.raises(RunbookError, match="gate\\(s\\) failed"):
        verification(environment="staging")
    bodies = slack_standin.bodies()
    assert "code:old-names" in bodies and "legacy_report.py" in bodies
    assert f"verify:{M014}" in bodies
    assert git_ops.head(deploy) == deployed                              # changed nothing
    assert checksums.table_checksums(target.staging_url) == before
    assert not git_ops.is_dirty(deploy)

    # the checks due after Day 3-4 / Day 5, run directly on what the target has now
    ctx = build_context("verification", "staging", "test-run")
    assert any(not r.passed and r.observed for r in orphans(ctx))        # the seed's orphans
    assert not fk_catalog(ctx)[0].passed                                 # no FK on security_id yet
    assert any(c.path.endswith("pattern_orchestrator.py") for c in find_eval_calls(deploy))
    assert not no_eval(ctx)[0].passed                                    # eval is still there

    # rollback 014 by id: the applying run's code first, then down.sql, proof, ledger, smoke
    report = rollback_migration(migration_id=M014, environment="staging")
    assert report["within_budget"] in (True, False) and report["budget_s"] == 900
    assert any(g["name"] == f"restored:{M014}" and g["passed"] for g in report["gates"])
    with connect(target.staging_url) as conn:
        cols = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'lots'").fetchall()}
    assert {"qty_open", "qty_original"} <= cols and "quantity_open" not in cols
    assert ledger.migration_state(target.staging_url, M014)["status"] == "reverted"
    assert "qty_open" in (deploy / "backend/app/services/trade_execution.py").read_text()


def test_green_streak_and_step_names():
    d = datetime(2025, 11, 10, 2, tzinfo=UTC)
    runs = [(d - timedelta(days=2), "COMPLETED"), (d - timedelta(days=1), "COMPLETED"), (d, "COMPLETED")]
    assert green_streak(runs, date(2025, 11, 10)) == 3
    assert green_streak(runs, date(2025, 11, 11)) == 3                       # today's run not yet
    assert green_streak(runs + [(d - timedelta(days=1, hours=-3), "FAILED")], date(2025, 11, 10)) == 1
    assert green_streak(runs, date(2025, 11, 13)) == 0                       # a missed day breaks it
    assert step_of("code:old-names-a1b") == "code:old-names" and step_of("smoke-12") == "smoke"

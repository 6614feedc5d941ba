"""Week 3 Days 1-2 (reliability fixes): the timeout, cancellation and template gates against the
real demo API on real PostgreSQL with the real upstream stand-in — FAILING on the Weeks 0-1 code
(before the change set), passing on the change set, and failing on a change set that breaks
exactly its property; the flow on staging, green and ticking the standup, and failing (a change
set without the fixes) with the merge reverted, the restore proven and Slack alerted."""
from __future__ import annotations

import uuid

import pytest
from prefect.states import State
from test_live_acceptance import proofs_published
from test_week3_change_sets import commit_edit

from runbook.context import build_context
from runbook.demo.change_sets import BASE_BRANCH
from runbook.errors import GateFailed
from runbook.expectations import latency
from runbook.expectations.week3.day1_2 import cancellation_check, template_check, timeout_check
from runbook.pg import connect
from runbook.tasks.code import git_ops
from runbook.tasks.target.deploy import deploy, shutdown

CHANGE_SET = "plan/week3-day1-2"


@pytest.fixture
def staging(week3_target):
    """A run context on staging, deployed at the Weeks 0-1 code (the run's baseline recorded, as
    the code:change-set step records it); the API and stand-in stopped afterwards."""
    ctx = build_context("test-week3-day1-2", "staging", uuid.uuid4().hex)
    deploy(ctx, git_ops.git(week3_target.repo, "rev-parse", BASE_BRANCH))
    latency.remember_baseline(ctx)
    yield ctx
    shutdown(ctx)


@pytest.mark.gate_fails("week3:timeout")
@pytest.mark.gate_fails("week3:cancellation")
@pytest.mark.gate_fails("week3:template")
def test_the_gates_fail_on_the_code_before_the_change_set(staging):
    timeout = timeout_check(staging)
    assert not timeout.passed and timeout.name == "week3:timeout"
    assert timeout.details["provider_calls"] == {"news_impact_analysis": ["polygon"]}
    assert any("no numeric timeout_s" in s["problem"] for s in timeout.sample)
    assert timeout.details["slowed"]["news_impact_analysis"]["http"] != 504

    cancel = cancellation_check(staging)
    assert not cancel.passed and cancel.name == "week3:cancellation"
    assert "never reached FMP" in cancel.sample[0]["observed"]     # no probe patterns served: fails closed

    template = template_check(staging)
    assert not template.passed and template.name == "week3:template"
    assert template.details["shipped_patterns_compared"] == 13
    assert "not in the trace" in {s["problem"] for s in template.sample}    # the probe patterns not served


@pytest.mark.gate_fails("week3:timeout")
@pytest.mark.gate_fails("week3:cancellation")
@pytest.mark.gate_fails("week3:template")
def test_the_gates_fail_closed_against_an_external_api_without_a_stand_in(week3_target, monkeypatch):
    from runbook.settings import get_settings

    monkeypatch.setenv("TARGET_API_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("TARGET_UPSTREAM_URL", raising=False)
    get_settings.cache_clear()
    ctx = build_context("test-week3-day1-2", "staging", uuid.uuid4().hex)
    for check, cause in ((timeout_check, "TARGET_UPSTREAM_URL"), (cancellation_check, "TARGET_UPSTREAM_URL"),
                         (template_check, "external")):
        result = check(ctx)
        assert not result.passed and cause in result.observed


ORCHESTRATOR = "backend/app/core/pattern_orchestrator.py"
TEMPLATES = "backend/app/core/templates.py"
RUNS = "backend/app/core/runs.py"
NEWS = "backend/patterns/news_impact_analysis.json"
MAIN = "backend/app/main.py"
SPAWN = ("    run.task = asyncio.create_task(\n        orchestrator.run_pattern(pattern_id, inputs, "
         "rights=sorted(user.rights), user_id=user.user_id))")


def deploy_variant(ctx, repo, tmp_path, path: str, old: str, new: str, what: str) -> None:
    """The change set with exactly one property broken (one edit on top), deployed."""
    deploy(ctx, commit_edit(repo, CHANGE_SET, path, old, new, what, tmp_path))


def test_the_gates_pass_on_the_change_set(staging, week3_target):
    deploy(staging, git_ops.git(week3_target.repo, "rev-parse", CHANGE_SET))

    timeout = timeout_check(staging)
    assert timeout.passed, timeout.sample
    assert timeout.details["provider_calls"] == {"news_impact_analysis": ["polygon"]}
    assert timeout.details["slowed"]["news_impact_analysis"]["code"] == "pattern_timeout"
    assert timeout.details["unaffected_ok"] == 12
    assert set(timeout.details["timeout_s"].values()) == {5.0, 30.0}    # news declares 5 s; the rest inherit

    cancel = cancellation_check(staging)
    assert cancel.passed, cancel.sample
    assert cancel.details["status_after"] == "cancelled" and cancel.details["execute"]["http"] == 409

    template = template_check(staging)
    assert template.passed, template.sample
    assert template.details["shipped_patterns_compared"] == 13


@pytest.mark.gate_fails("week3:timeout")
def test_timeout_fails_when_the_run_is_not_bounded(staging, week3_target, tmp_path):
    deploy_variant(staging, week3_target.repo, tmp_path, ORCHESTRATOR, "timeout=timeout_s)", "timeout=None)",
                   "runs unbounded")
    result = timeout_check(staging)
    assert not result.passed
    assert [s["pattern"] for s in result.sample] == ["news_impact_analysis"]
    assert result.details["slowed"]["news_impact_analysis"]["http"] != 504


@pytest.mark.gate_fails("week3:cancellation")
def test_cancellation_fails_when_the_run_goes_on_or_leaves_a_session(staging, week3_target, tmp_path):
    deploy_variant(staging, week3_target.repo, tmp_path, RUNS, "or not run.task.cancel()", "",
                   "cancel marks the run but lets it go on")
    result = cancellation_check(staging)
    assert not result.passed
    checks = {s["check"] for s in result.sample}
    assert "nothing written by the cancelled run" in checks
    assert any(c.startswith("execute ends 409") for c in checks)
    with connect(staging.database_url) as conn:     # the probe's rows are removed even so
        assert conn.execute("SELECT count(*) FROM pricing_packs WHERE date = '1990-01-02'").fetchone()[0] == 0

    # the caller gets its 409 at once, but the run's work is shielded and goes on
    deploy_variant(staging, week3_target.repo, tmp_path, MAIN, SPAWN, SPAWN.replace("run.task =", "work =")
                   + "\n    run.task = asyncio.ensure_future(asyncio.shield(work))", "409, and the work goes on")
    result = cancellation_check(staging)
    assert not result.passed
    assert result.details["execute"]["http"] == 409 and result.details["status_after"] == "cancelled"
    assert {s["check"] for s in result.sample} >= {"the stand-in's FMP requests in flight back to 0",
                                                   "nothing written by the cancelled run"}

    # a cancellation that leaves a database session behind (a pooled connection in a transaction)
    deploy_variant(staging, week3_target.repo, tmp_path, RUNS, "        run.cancel_requested = True\n",
                   "        run.cancel_requested = True\n        from app.core import database\n"
                   "        asyncio.ensure_future(database.get_pool().acquire()).add_done_callback(\n"
                   "            lambda held: asyncio.ensure_future(held.result().execute('BEGIN')))\n",
                   "cancel leaves a session in a transaction")
    result = cancellation_check(staging)
    assert not result.passed
    assert [s["check"] for s in result.sample] == ["the API's database sessions back to baseline"]


@pytest.mark.gate_fails("week3:template")
def test_template_fails_without_defaults_and_on_changed_pattern_outputs(staging, week3_target, tmp_path):
    deploy_variant(staging, week3_target.repo, tmp_path, TEMPLATES, "        return template.default\n",
                   "        return None\n", "defaults ignored")
    result = template_check(staging)
    assert not result.passed
    assert {s["probe"] for s in result.sample} >= {"runs_default_missing"}
    assert "runs_optional_missing" not in {s["probe"] for s in result.sample}

    deploy_variant(staging, week3_target.repo, tmp_path, NEWS, '"limit": 10', '"limit": 3',
                   "a shipped pattern's output changes")
    result = template_check(staging)
    assert not result.passed
    assert [s["probe"] for s in result.sample] == ["news_impact_analysis"]


# -- the flow -------------------------------------------------------------------------------------

@pytest.mark.gate_fails("week3:timeout")
@pytest.mark.usefixtures("prefect_server")
def test_a_change_set_without_the_fixes_is_reverted_and_alerted(week3_target, slack_standin, tmp_path):
    from runbook.flows.week3.day1_2 import reliability_fixes

    repo = week3_target.repo
    broken = commit_edit(repo, BASE_BRANCH, "README.md", "\n", "\n\nReliability: to do.\n",
                         "a change set that fixes nothing", tmp_path)
    git_ops.git(repo, "branch", "plan/week3-day1-2-broken", broken)
    before = git_ops.head(week3_target.deploy["staging"])

    state: State = reliability_fixes(environment="staging", change_ref="plan/week3-day1-2-broken",
                                     return_state=True)
    assert state.is_failed()
    with pytest.raises(GateFailed) as failed:
        state.result()
    assert failed.value.result.name == "week3:timeout"
    assert git_ops.head(week3_target.deploy["staging"]) == before      # the merge reverted
    assert proofs_published(state, "rollback:restored") == [True]
    log = git_ops.git(repo, "log", "--format=%s", "runbook/staging")
    assert log.count("Revert ") == 1
    bodies = slack_standin.bodies()
    assert "week3:timeout" in bodies and "Rolled back" in bodies and "code:change-set" in bodies


@pytest.mark.usefixtures("prefect_server")
def test_flow_on_staging_is_green_and_ticks_the_standup(week3_target, slack_standin):
    from runbook.flows.standup import collect
    from runbook.flows.week3.day1_2 import reliability_fixes

    out = reliability_fixes(environment="staging")                     # change_ref: plan/week3-day1-2
    assert out.status == "completed"
    assert ["code:change-set", "gate:timeout", "gate:cancellation", "gate:template", "smoke"] == [
        s for s in out.applied if s.startswith(("code:", "gate:", "smoke")) and s != "smoke:baseline"]
    deployed = week3_target.deploy["staging"]
    assert git_ops.git(deployed, "rev-parse", "HEAD^2") == git_ops.git(week3_target.repo, "rev-parse", CHANGE_SET)
    assert slack_standin.requests == []
    ticked = collect(None, since_last=False).ticked()
    assert {t for k, t in ticked if k == "week3-day1-2"} == {
        "Timeout mechanism working", "Cancellation support working", "Template substitution fixed"}

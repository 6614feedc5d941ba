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
    assert template.sample[0]["probe"] == "runbook_probe_template"


# -- the flow -------------------------------------------------------------------------------------

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

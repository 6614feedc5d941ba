"""The plan's rollback trigger "performance degradation > 20%" as a gate on every code update:
a real code change that makes one pattern slow (a real delay in the target's code, served by the
real API) fails the run, which rolls every code change back in reverse order; a harmless change
before it passes the same gate."""
from __future__ import annotations

import pytest
from prefect import flow
from workspace_processes import workspace_processes

from runbook.errors import GateFailed
from runbook.expectations.latency import FLOOR_MS, latency_gate
from runbook.tasks.code import git_ops
from runbook.tasks.database import ledger
from runbook.tasks.steps.code_update import code_update_step
from runbook.tasks.steps.day import DayPlan, run_day

pytestmark = pytest.mark.usefixtures("prefect_server")
NEWS = "backend/app/services/news.py"
SIGNATURE = "async def price_move_events(pool, security_ids, limit: int = 10) -> list[dict]:\n"


def comment_only(wt, _dry) -> dict:
    path = wt / NEWS
    path.write_text("# reviewed: no behaviour change\n" + path.read_text())
    return {"files": 1}


def slow_news(wt, _dry) -> dict:
    """A late commit that makes news_impact_analysis wait 400 ms on every request."""
    path = wt / NEWS
    text = path.read_text()
    assert SIGNATURE in text
    text = text.replace(SIGNATURE, SIGNATURE + "    await asyncio.sleep(0.4)\n")
    path.write_text(text.replace("from __future__ import annotations\n",
                                 "from __future__ import annotations\n\nimport asyncio\n", 1))
    return {"files": 1}


PLAN = DayPlan("latency-trigger", [], lambda ctx: [
    code_update_step("code:comment-only", comment_only, "Comment only"),
    code_update_step("code:slow-news", slow_news, "News: fetch events synchronously (slow)"),
])


@flow(name="latency-trigger")
def latency_trigger(environment: str = "staging"):
    return run_day(PLAN, environment=environment)


def test_latency_gate_ratio_and_floor():
    before = {"tiny": 1.0, "big": 100.0, "mid": 40.0}
    assert latency_gate("x", before, {"tiny": 1.3, "big": 119.0, "mid": 40.0}).passed        # floor, <20%
    failed = latency_gate("x", before, {"tiny": 1.3, "big": 121.0 + FLOOR_MS, "mid": 40.0})
    assert not failed.passed and [r["pattern"] for r in failed.sample] == ["big"]


@pytest.mark.gate_fails("latency")
def test_a_slow_pattern_fails_the_code_update_and_rolls_back(target, slack_standin):
    before = git_ops.head(target.repo)
    with pytest.raises(GateFailed) as failed:
        latency_trigger(environment="staging")
    result = failed.value.result
    assert result.name == "latency:code:slow-news"
    assert [r["pattern"] for r in result.sample] == ["news_impact_analysis"]
    assert len(result.details["baseline_ms"]) == 13          # every pattern compared
    assert result.sample[0]["after_ms"] - result.sample[0]["baseline_ms"] > 300
    # both code changes taken back, newest first; the environment runs the code it started on
    deploy = target.deploy["staging"]
    assert git_ops.head(deploy) == before
    assert "asyncio.sleep(0.4)" not in (deploy / NEWS).read_text()
    assert "reviewed: no behaviour change" not in (deploy / NEWS).read_text()
    log = git_ops.git(target.repo, "log", "--format=%s", "runbook/staging")
    reverts = [line for line in log.splitlines() if line.startswith("Revert")]
    # git log is newest first: the slow change was reverted first, then the one before it
    assert reverts[:2] == ['Revert "Comment only"', 'Revert "News: fetch events synchronously (slow)"']
    with ledger.cursor(target.staging_url) as cur:
        cur.execute("""SELECT DISTINCT ON (step) step, status FROM runbook.run_steps
                        WHERE flow_name = 'latency-trigger' ORDER BY step, id DESC""")
        assert {r["step"]: r["status"] for r in cur.fetchall()} == {
            "code:comment-only": "reverted", "code:slow-news": "reverted"}
    assert workspace_processes(target.workspace) == []     # both APIs stopped with the run
    alert = slack_standin.bodies()
    assert "latency:code:slow-news" in alert and "news_impact_analysis" in alert

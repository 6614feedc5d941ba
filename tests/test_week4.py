"""Week 4 Days 3-4 (performance optimisation): the n-plus-one, cache, monitoring, async and
no-regression gates against the real demo API on real PostgreSQL, the run's real Redis and the
real upstream stand-in — FAILING on the code before the change set (Week 3 Day 5) and on code
made slower on purpose, passing on the change set; the flow on staging green, ticking the
standup."""
from __future__ import annotations

import uuid

import pytest
from test_week3_change_sets import commit_edit

from runbook.context import build_context
from runbook.expectations import latency
from runbook.expectations.week4.day3_4 import (
    async_check,
    cache_check,
    monitoring_check,
    n_plus_one_check,
    no_regression_check,
)
from runbook.expectations.week4.statement_counter import StatementCounter
from runbook.pg import connect
from runbook.tasks.code import git_ops
from runbook.tasks.target.deploy import REDIS, api, deploy, shutdown

pytestmark = pytest.mark.timeout(600)
BEFORE, CHANGE_SET = "plan/week3-day5", "plan/week4-day3-4"
LEDGER = "backend/app/services/ledger.py"
HOLDINGS = '    rows = await pool.fetch(HOLDINGS_SQL, to_uuid(portfolio_id))\n'
HOLDINGS_SLOWED = '    import asyncio\n    await asyncio.sleep(0.4)\n' + HOLDINGS


@pytest.fixture
def staging(week3_target):
    """A run context on staging; the API, stand-in and Redis stopped afterwards."""
    ctx = build_context("test-week4-day3-4", "staging", uuid.uuid4().hex)
    yield ctx
    shutdown(ctx)


def at(week3_target, ref: str) -> str:
    return git_ops.git(week3_target.repo, "rev-parse", ref)


def problems(result) -> list[str]:
    return [s["problem"] for s in result.sample]


def probe_portfolios(ctx) -> int:
    with connect(ctx.database_url) as conn:
        return conn.execute("SELECT count(*) FROM portfolios WHERE name = 'runbook n+1 probe'").fetchone()[0]


@pytest.mark.gate_fails("week4:n-plus-one")
@pytest.mark.gate_fails("week4:cache")
@pytest.mark.gate_fails("week4:monitoring")
@pytest.mark.gate_fails("week4:async")
def test_the_gates_fail_on_the_code_before_the_change_set(staging, week3_target):
    deploy(staging, at(week3_target, BEFORE))
    assert api(staging).environment["REDIS_URL"] == staging.extra[REDIS].url   # the run's own Redis

    n_plus_one = n_plus_one_check(staging)
    assert not n_plus_one.passed and n_plus_one.name == "week4:n-plus-one"
    # the rebalance preview reads lots once per proposed sell: more holdings, more statements
    assert n_plus_one.sample == [{"pattern": "policy_rebalance", "problem": "statements grow with the portfolio: 9 -> 13"}]
    assert n_plus_one.details["open_lots"]["small"] == 1 < n_plus_one.details["open_lots"]["large"]
    assert n_plus_one.details["metrics"] is False            # no /metrics yet: the wire count alone
    assert probe_portfolios(staging) == 0                    # the gate's own rows removed

    cache = cache_check(staging)
    assert not cache.passed and cache.name == "week4:cache"
    assert "X-Cache None, expected hit" in problems(cache)
    assert {a["status"] for a in cache.details["answers"]} == {200}

    monitoring = monitoring_check(staging)
    assert not monitoring.passed and monitoring.name == "week4:monitoring"
    assert problems(monitoring) == ["GET /metrics answered HTTP 404", "no slow_query line in the log with SLOW_QUERY_MS=0"]

    health = async_check(staging)
    assert not health.passed and health.name == "week4:async"
    assert health.details["pattern_runs"].keys() == {"200"}
    assert health.details["health_ms"]["p99"] >= 20


@pytest.mark.gate_fails("week4:no-regression")
def test_no_regression_fails_on_slower_code_and_without_a_baseline(staging, week3_target, tmp_path):
    deploy(staging, at(week3_target, BEFORE))
    unmeasured = no_regression_check(staging)
    assert not unmeasured.passed and unmeasured.observed == "no baseline: this run deployed no code"

    latency.remember_baseline(staging)                       # what a code update does first
    deploy(staging, commit_edit(week3_target.repo, BEFORE, LEDGER, HOLDINGS, HOLDINGS_SLOWED,
                                "holdings 400 ms slower", tmp_path))
    slowed = no_regression_check(staging)
    assert not slowed.passed and slowed.name == "week4:no-regression"
    worse = {row["pattern"] for row in slowed.sample}
    assert {"portfolio_overview", "policy_rebalance"} <= worse
    assert all(row["after_ms"] - row["baseline_ms"] > 300 for row in slowed.sample)


def test_the_statement_counter_counts_statements_not_prepares(admin_url):
    import psycopg

    with StatementCounter(admin_url) as counter, psycopg.connect(counter.url, autocommit=True) as conn:
        start = counter.settled()
        conn.execute("SELECT 1")                                         # 1
        conn.execute("SELECT %s::int", (2,))                             # 1
        with conn.cursor() as cur:
            cur.executemany("SELECT %s::int", [(1,), (2,), (3,)])        # one batch (pipelined): 1
        conn.pgconn.exec_(b"SELECT 1; SELECT 2")                         # simple protocol: 1 Query
        assert counter.settled() - start == 4
        assert counter.connections == 1 and not counter.encrypted

"""Week 4 Days 3-4 (performance optimisation): the n-plus-one, cache, monitoring, async and
no-regression gates against the real demo API on real PostgreSQL, the run's real Redis and the
real upstream stand-in — FAILING on the code before the change set (Week 3 Day 5), passing on
the change set, failing on a change set that breaks exactly its property; the flow on staging
green, ticking the standup, and rolled back when the change set adds a latency tail."""
from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import pytest
from test_week3_change_sets import commit_edit

from runbook.context import build_context
from runbook.errors import GateFailed
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
# a tail regression: one read in seven waits half a second (the medians hardly move; p95 does)
HOLDINGS_TAIL = ('    import asyncio, random\n    if random.random() < 0.15:\n'
                 '        await asyncio.sleep(0.5)\n' + HOLDINGS)


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
    # (the async gate is not asserted here: with the demo's 2000 lots the code before keeps
    # little CPU work on its loop, as on the change set; it fails
    # reliably on a change set that blocks the loop, below)


@pytest.mark.gate_fails("week4:no-regression")
def test_no_regression_fails_closed_without_a_baseline(staging, week3_target):
    deploy(staging, at(week3_target, BEFORE))
    unmeasured = no_regression_check(staging)
    assert not unmeasured.passed and unmeasured.name == "week4:no-regression"
    assert unmeasured.observed == "no baseline: this run deployed no code"


UNIX_SOCKET_URL = "postgresql://postgres@/postgres?host=/var/run/postgresql"


@pytest.mark.parametrize("over", ["tcp", "unix socket"])
def test_the_statement_counter_counts_statements_not_prepares(admin_url, over):
    import psycopg

    url = admin_url if over == "tcp" else UNIX_SOCKET_URL        # the demo's embedded server: a socket
    if over == "unix socket" and not Path("/var/run/postgresql/.s.PGSQL.5432").exists():
        pytest.skip("no PostgreSQL unix socket on this machine")
    with StatementCounter(url) as counter, psycopg.connect(counter.url, autocommit=True) as conn:
        start = counter.settled()
        conn.execute("SELECT 1")                                         # 1
        conn.execute("SELECT %s::int", (2,))                             # 1
        with conn.cursor() as cur:
            cur.executemany("SELECT %s::int", [(1,), (2,), (3,)])        # one batch (pipelined): 1
        conn.pgconn.exec_(b"SELECT 1; SELECT 2")                         # simple protocol: 1 Query
        assert counter.settled() - start == 4
        assert counter.connections == 1 and not counter.encrypted


def test_the_gates_pass_on_the_change_set(staging, week3_target):
    deploy(staging, at(week3_target, CHANGE_SET))
    results = {check.__name__: check(staging) for check in (n_plus_one_check, cache_check, monitoring_check, async_check)}
    for name, result in results.items():
        assert result.passed, (name, result.sample)
    rows = results["n_plus_one_check"].details["statements_per_run"]
    # the target's own count agrees that nothing grows (and counts fewer: no BEGIN, COMMIT, reset)
    assert all(r["small_db_queries_total"] == r["large_db_queries_total"] > 0 for r in rows)
    assert all(r["small_statements"] == r["large_statements"] for r in rows)
    assert probe_portfolios(staging) == 0
    cache = results["cache_check"]
    seen = {(a["pattern"], a["what"]): a["x_cache"] for a in cache.details["answers"]}
    assert seen[("portfolio_overview", "same user, same inputs")] == "hit"
    assert seen[("portfolio_overview", "another user, same role")] == "miss"
    assert seen[("rb_cache_ttl_probe", "past its TTL, after a write")] == "miss"
    assert seen[("rb_cache_never_probe", "again")] == "bypass"
    assert seen[("portfolio_overview", "Redis down, again")] == "bypass"
    assert results["monitoring_check"].details["slow_query_lines"] > 0


# -- a change set that breaks exactly one property --------------------------------------------

# (gate, file, the change set's line, the broken line, what the gate then says)
BROKEN = {
    "the rebalance preview reads each sell's lots again": (
        n_plus_one_check, "backend/app/agents/optimizer_agent.py",
        "previews = await trade_execution.preview_sells(self.pool, portfolio_id, sells)   # one query",
        'previews = [await trade_execution.preview_sell(self.pool, portfolio_id, t["security_id"], '
        't["trade_qty"], t["price"]) for t in sells]',
        "statements grow with the portfolio: 9 -> 13"),
    "the cache key forgets the caller": (
        cache_check, "backend/app/core/pattern_cache.py",
        '"inputs": inputs, "sub": sub, "role": role}', '"inputs": inputs, "role": role}',
        "X-Cache 'hit', expected miss"),
    "slow queries logged by their text": (
        monitoring_check, "backend/app/core/query_stats.py",
        '"statement_id": statement_id(sql)})', '"statement": sql})',
        "slow_query line without statement_id"),
    "the result encoded on the event loop, blocking it 30 ms": (
        async_check, "backend/app/main.py",
        "encoded = await asyncio.to_thread(_encode, result)",
        '__import__("time").sleep(0.03)\n    encoded = _encode(result)',
        "the loop probe p50"),
}


@pytest.mark.gate_fails("week4:n-plus-one")
@pytest.mark.gate_fails("week4:cache")
@pytest.mark.gate_fails("week4:monitoring")
@pytest.mark.gate_fails("week4:async")
def test_each_gate_fails_on_a_change_set_that_breaks_its_property(staging, week3_target, tmp_path):
    for what, (check, path, old, new, says) in BROKEN.items():
        deploy(staging, commit_edit(week3_target.repo, CHANGE_SET, path, old, new, what, tmp_path))
        result = check(staging)
        assert not result.passed, what
        assert any(p.startswith(says) for p in problems(result)), (what, result.sample)
    assert probe_portfolios(staging) == 0


# -- the flow -------------------------------------------------------------------------------------

@pytest.mark.usefixtures("prefect_server")
def test_flow_on_staging_is_green_and_ticks_the_standup(week3_target, slack_standin):
    from runbook.flows.standup import collect
    from runbook.flows.week4.day3_4 import performance_optimisation

    ctx = build_context("test-week4-day3-4", "staging", uuid.uuid4().hex)
    deploy(ctx, at(week3_target, BEFORE))            # staging runs Week 3 Day 5, as the plan leaves it
    shutdown(ctx)
    out = performance_optimisation(environment="staging")      # change_ref: plan/week4-day3-4
    assert out.status == "completed"
    assert ["code:change-set", "gate:n-plus-one", "gate:cache", "gate:monitoring", "gate:async",
            "gate:no-regression", "smoke"] == [
        s for s in out.applied if s.startswith(("code:", "gate:", "smoke")) and s != "smoke:baseline"]
    deployed = week3_target.deploy["staging"]
    assert git_ops.git(deployed, "rev-parse", "HEAD^2") == at(week3_target, CHANGE_SET)
    assert slack_standin.requests == []
    ticked = collect(None, since_last=False).ticked()
    assert {t for k, t in ticked if k == "week4-day3-4"} == {
        "N+1 queries fixed", "Pattern execution caching added", "Performance monitoring added", "Synchronous operations optimized"}
    assert not list((week3_target.workspace / "redis").glob("*/dump.rdb"))    # nothing persisted


@pytest.mark.gate_fails("week4:no-regression")
@pytest.mark.usefixtures("prefect_server")
def test_a_tail_latency_regression_fails_the_flow_and_rolls_back(week3_target, slack_standin, tmp_path):
    from runbook.flows.week4.day3_4 import performance_optimisation

    ctx = build_context("test-week4-day3-4", "staging", uuid.uuid4().hex)
    deploy(ctx, at(week3_target, BEFORE))
    shutdown(ctx)
    tail = commit_edit(week3_target.repo, CHANGE_SET, LEDGER, HOLDINGS, HOLDINGS_TAIL, "a slow tail", tmp_path)
    with pytest.raises(GateFailed) as failed:
        performance_optimisation(environment="staging", change_ref=tail)
    result = failed.value.result
    assert result.name == "week4:no-regression"
    assert result.sample and all(row["after_ms"] - row["baseline_ms"] > 50 for row in result.sample)
    assert git_ops.head(week3_target.deploy["staging"]) == at(week3_target, BEFORE)     # rolled back
    [alert] = slack_standin.requests
    assert "week4:no-regression" in str(alert)


@pytest.mark.gate_fails("week4:cache")
def test_without_a_redis_the_api_runs_uncached_and_the_cache_gate_fails(staging, week3_target, monkeypatch,
                                                                        tmp_path):
    """No REDIS_URL and no redis-server on PATH: the days before Week 4 never needed a Redis and
    their API starts without one (no REDIS_URL in its environment); Week 4's cache gate, on the
    change set, sees the bypassed cache and fails."""
    from runbook.expectations.week4.day3_4 import cache_check
    from runbook.tasks.target.deploy import managed_environment

    bare = tmp_path / "bin"          # a PATH with git and python but no redis-server
    bare.mkdir()
    for tool in ("git", "python3"):
        (bare / tool).symlink_to(Path(shutil.which(tool)))
    monkeypatch.setenv("PATH", f"{bare}:{Path(sys.executable).parent}")
    assert shutil.which("redis-server") is None and not staging.redis_url
    env = managed_environment(staging)
    assert "REDIS_URL" not in env and env["POLYGON_BASE_URL"].startswith("http://127.0.0.1:")
    deploy(staging, at(week3_target, CHANGE_SET))
    assert REDIS not in staging.extra                      # no redis-server was started
    result = cache_check(staging)
    assert not result.passed and "bypass" in str(result.sample)

"""The demo's Week 4 change set (Days 3-4, performance) as the team ships it: merged onto what
staging runs after Week 3 (plan/week3-day5), it passes the target's own tests (the change-set
gates) and keeps the 13 patterns and every other route working (the smoke) — then the contract
the Week 4 gates observe, probed over HTTP against the merged code with the machine's Redis:
/metrics in the Prometheus format with its four families, a repeated run answered from the
cache with the same data and only for the same caller, an unreachable Redis answered uncached,
the statements of a policy_rebalance run the same for the smallest and the largest portfolio,
slow statements logged by statement id. Real git, PostgreSQL, Redis and the demo API."""
from __future__ import annotations

import json
import os
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runbook.context import build_context
from runbook.demo.change_sets import by_name
from runbook.expectations.authorization import authorization_gate
from runbook.expectations.change_set import change_set_gates
from runbook.expectations.smoke import (
    declared_inputs,
    load_pattern,
    pattern_ids,
    sample_inputs,
    smoke,
)
from runbook.pg import connect
from runbook.tasks.code import git_ops
from runbook.tasks.target.deploy import api, deploy, shutdown

WEEK4 = by_name("week4-day3-4")
REDIS_URL = os.environ.get("WEEK4_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"          # nothing listens: Redis unreachable
FAMILIES = {"dawsos_request_duration_seconds", "dawsos_pattern_cache", "dawsos_upstream_requests",
            "dawsos_db_queries"}        # counters: the parser names them without `_total`


def _redis_reachable() -> bool:
    import redis
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


pytestmark = pytest.mark.skipif(not _redis_reachable(), reason=f"no Redis at {REDIS_URL}")


@pytest.fixture
def staging(week3_target):
    import redis
    redis.Redis.from_url(REDIS_URL).flushdb()
    ctx = build_context("t", "staging", f"cs4-{uuid.uuid4().hex[:8]}")
    yield ctx
    shutdown(ctx)


def _serve(ctx, ref: str, environment: dict[str, str]):
    """Staging runs `ref` merged onto what it runs, its API given `environment` besides."""
    server = api(ctx)
    server.environment.update(environment)
    merged = git_ops.merge(ctx.deploy_dir, ref, f"merge the team's change set {ref}")
    deploy(ctx, merged)
    assert server.served_commit() == merged
    return server


def execute(server, pattern_id: str, inputs: dict, headers: dict | None = None):
    return httpx.post(f"{server.base_url}/api/patterns/{pattern_id}/execute", json={"inputs": inputs},
                      headers=headers or server.headers(), timeout=60)


def metrics(server) -> dict:
    r = httpx.get(f"{server.base_url}/metrics", headers=server.headers(), timeout=10)
    assert r.status_code == 200, r.text[:300]
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def counter(families: dict, family: str, **labels) -> float:
    return sum(s.value for s in families[family].samples
               if s.name == f"{family}_total" and all(s.labels.get(k) == v for k, v in labels.items()))


def every_patterns_data(server, ctx) -> dict:
    inputs = sample_inputs(ctx.database_url)
    answers = {pid: execute(server, pid, declared_inputs(load_pattern(ctx.deploy_dir, pid), inputs))
               for pid in pattern_ids(ctx.deploy_dir)}
    assert {pid: r.status_code for pid, r in answers.items()} == dict.fromkeys(answers, 200)
    return {pid: r.json()["data"] for pid, r in answers.items()}


def test_the_change_set_merges_after_week_3_passes_its_tests_and_keeps_every_pattern(week3_target, staging):
    ctx = staging
    before = every_patterns_data(_serve(ctx, "plan/week3-day5", {"REDIS_URL": REDIS_URL}), ctx)
    ctx.parameters = {"change_ref": WEEK4.branch}
    gates = change_set_gates(ctx)
    assert [(g.name, g.passed) for g in gates] == [
        ("change-set:ref", True), ("change-set:merges-cleanly", True), ("change-set:target-tests", True)
    ], [(g.name, g.observed, g.details.get("output_tail", "")[-1500:]) for g in gates if not g.passed]
    server = _serve(ctx, WEEK4.branch, {})
    after = every_patterns_data(server, ctx)
    assert len(after) == 13
    assert [pid for pid in before if after.get(pid) != before[pid]] == []      # the same data, all 13
    result, runs = smoke(server.base_url, ctx.deploy_dir, ctx.database_url, server.headers())
    assert result.passed, result.sample
    assert "GET /metrics" in {r.pattern for r in runs}


def test_metrics_and_the_cache_scoped_to_the_caller(week3_target, staging):
    server = _serve(staging, WEEK4.branch, {"REDIS_URL": REDIS_URL})
    portfolio = sample_inputs(staging.database_url)["portfolio_id"]
    alice = server.headers(sub=f"alice-{uuid.uuid4().hex[:6]}", role="analyst")
    bob = server.headers(sub=f"bob-{uuid.uuid4().hex[:6]}", role="analyst")
    first = execute(server, "portfolio_overview", {"portfolio_id": portfolio}, alice)
    again = execute(server, "portfolio_overview", {"portfolio_id": portfolio}, alice)
    other = execute(server, "portfolio_overview", {"portfolio_id": portfolio}, bob)
    assert [(r.status_code, r.headers.get("X-Cache")) for r in (first, again, other)] == [
        (200, "miss"), (200, "hit"), (200, "miss")]
    assert again.json()["data"] == first.json()["data"] == other.json()["data"]

    families = metrics(server)
    assert FAMILIES <= set(families)
    assert counter(families, "dawsos_pattern_cache", pattern="portfolio_overview", result="hit") == 1
    assert counter(families, "dawsos_pattern_cache", pattern="portfolio_overview", result="miss") == 2
    assert counter(families, "dawsos_db_queries", pattern="portfolio_overview") > 0
    routes = {s.labels["route"] for s in families["dawsos_request_duration_seconds"].samples}
    assert "/api/patterns/{pattern_id}/execute" in routes and not any(portfolio in r for r in routes)
    news = execute(server, "news_impact_analysis", {"portfolio_id": portfolio})
    assert news.status_code == 200
    assert counter(metrics(server), "dawsos_upstream_requests", provider="polygon", status="200") > 0
    refused = httpx.get(f"{server.base_url}/metrics", headers=server.headers(role="analyst"), timeout=10)
    assert refused.status_code == 403

    result = authorization_gate(server.base_url, staging.database_url, staging.deploy_dir, server.jwt_secret)
    assert result.passed, result.sample
    assert "GET /metrics" in {r["route"] for r in result.details["requests"]}


def _small_and_large_portfolio(database_url: str) -> tuple[str, str]:
    """The portfolio with the most open lots, and a new one of the same user holding the open
    lots of just one of its securities (the seed's portfolios are all the same size)."""
    with connect(database_url) as conn:
        large = conn.execute("SELECT portfolio_id FROM lots WHERE quantity_open > 0"
                             " GROUP BY portfolio_id ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]
        security = conn.execute("SELECT security_id FROM lots WHERE portfolio_id = %s AND quantity_open > 0"
                                " ORDER BY symbol LIMIT 1", (large,)).fetchone()[0]
        small = uuid.uuid4()
        conn.execute("CREATE TEMP TABLE small_portfolio AS SELECT * FROM portfolios WHERE id = %s", (large,))
        conn.execute("UPDATE small_portfolio SET id = %s, name = name || ' (one holding)'", (small,))
        conn.execute("INSERT INTO portfolios SELECT * FROM small_portfolio")
        conn.execute("CREATE TEMP TABLE small_lots AS SELECT * FROM lots"
                     " WHERE portfolio_id = %s AND security_id = %s AND quantity_open > 0", (large, security))
        conn.execute("UPDATE small_lots SET id = gen_random_uuid(), portfolio_id = %s", (small,))
        conn.execute("INSERT INTO lots SELECT * FROM small_lots")
        conn.commit()
    return str(small), str(large)


def test_statements_do_not_grow_with_the_portfolio_and_an_unreachable_redis_is_a_bypass(week3_target, staging):
    server = _serve(staging, WEEK4.branch, {"REDIS_URL": CLOSED_REDIS_URL, "SLOW_QUERY_MS": "0"})
    small, large = _small_and_large_portfolio(staging.database_url)
    statements, sells = {}, {}
    for portfolio in (small, large):
        before = counter(metrics(server), "dawsos_db_queries", pattern="policy_rebalance")
        r = execute(server, "policy_rebalance", {"portfolio_id": portfolio})
        assert (r.status_code, r.headers.get("X-Cache")) == (200, "bypass"), r.text[:300]
        statements[portfolio] = counter(metrics(server), "dawsos_db_queries", pattern="policy_rebalance") - before
        assert not any(t["skipped"] for t in r.json()["trace"]), r.json()["trace"]     # the preview ran
        sells[portfolio] = sum(1 for t in r.json()["data"]["rebalance"]["trades"] if t["side"] == "SELL")
    assert sells[large] > sells[small]                  # more per-trade lookups an N+1 would make
    assert statements[small] == statements[large] > 0, statements
    assert counter(metrics(server), "dawsos_pattern_cache", pattern="policy_rebalance", result="error") == 2

    slow = [json.loads(line) for line in server.log_path.read_text().splitlines() if '"slow_query"' in line]
    assert slow and {x["pattern_id"] for x in slow} == {"policy_rebalance"}
    assert all({"duration_ms", "statement_id"} <= set(x) for x in slow)
    assert small not in json.dumps(slow) and large not in json.dumps(slow)     # never the parameters

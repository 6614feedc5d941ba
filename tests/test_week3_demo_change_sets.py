"""The demo's Week 3 change sets, as the team ships them: each, in order, merges onto what
staging runs, passes the target's own tests on the merge result (the change-set gates), and
keeps the 13 patterns and every other route working (the smoke) — then the contract the Week 3
gates observe, probed over HTTP against the merged code: a run past its timeout answers 504, a
cancelled run 409 with its provider request closed, an unknown run 404 in the error shape.
Real git, real PostgreSQL, the real demo API and the upstream stand-in."""
from __future__ import annotations

import itertools
import threading
import time
import uuid

import httpx
import pytest

from runbook.context import build_context
from runbook.demo.change_sets import CHANGE_SETS
from runbook.expectations.change_set import change_set_gates
from runbook.expectations.smoke import sample_inputs, smoke
from runbook.expectations.week3.rate_limiting import ahead_of_rate
from runbook.tasks.code import git_ops
from runbook.tasks.target.deploy import api, deploy, shutdown, upstream

SHIPPED = [cs for cs in CHANGE_SETS if cs.patches]


def execute(server, pattern_id: str, inputs: dict, run_id: str | None = None, timeout: float = 30):
    headers = {**server.headers(), **({"X-Run-Id": run_id} if run_id else {})}
    return httpx.post(f"{server.base_url}/api/patterns/{pattern_id}/execute", json={"inputs": inputs},
                      headers=headers, timeout=timeout)


def assert_error_shape(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:300]
    error = r.json()["error"]
    assert set(error) >= {"code", "message", "request_id", "details"}
    assert error["code"] == code
    assert error["request_id"] == r.headers["X-Request-Id"]


def test_the_first_change_set_is_shipped():
    assert [cs.name for cs in SHIPPED][:1] == ["week3-day1-2"]


@pytest.fixture
def staging(week3_target):
    ctx = build_context("t", "staging", f"cs-{uuid.uuid4().hex[:8]}")
    yield ctx
    shutdown(ctx)


def test_each_change_set_merges_passes_its_tests_and_keeps_every_pattern(week3_target, staging):
    ctx = staging
    for cs in SHIPPED:
        ctx.parameters = {"change_ref": cs.branch}
        gates = change_set_gates(ctx)
        assert [(g.name, g.passed) for g in gates] == [
            ("change-set:ref", True), ("change-set:merges-cleanly", True), ("change-set:target-tests", True)
        ], [(g.name, g.observed, g.details.get("output_tail", "")[-1500:]) for g in gates if not g.passed]
        merged = git_ops.merge(ctx.deploy_dir, cs.branch, f"merge the team's change set {cs.branch}")
        deploy(ctx, merged)
        server = api(ctx)
        assert server.served_commit() == merged
        result, runs = smoke(server.base_url, ctx.deploy_dir, ctx.database_url, server.headers())
        assert result.passed, (cs.name, result.sample)
        assert {r.pattern for r in runs} >= {"GET /api/runs/{run_id}", "POST /api/runs/{run_id}/cancel"}


def _on(ctx, name: str):
    """Staging runs change set `name` (merged onto the Weeks 0-1 code); its API."""
    cs = next(c for c in SHIPPED if c.name == name)
    deploy(ctx, git_ops.merge(ctx.deploy_dir, cs.branch, f"merge {cs.branch}"))
    return api(ctx)


def test_a_run_past_its_timeout_answers_504_within_a_second_of_it(week3_target, staging):
    server = _on(staging, "week3-day1-2")
    portfolio = sample_inputs(staging.database_url)["portfolio_id"]
    stand_in = upstream(staging)
    stand_in.set_fault("polygon", latency_ms=20_000)      # news_impact_analysis declares 5 s
    try:
        start = time.monotonic()
        r = execute(server, "news_impact_analysis", {"portfolio_id": portfolio})
        elapsed = time.monotonic() - start
    finally:
        stand_in.heal("polygon")
    assert_error_shape(r, 504, "pattern_timeout")
    assert r.json()["error"]["details"]["timeout_s"] == 5
    assert elapsed < 5 + 1, elapsed                        # the contract's bound
    ok = execute(server, "news_impact_analysis", {"portfolio_id": portfolio})
    assert ok.status_code == 200 and ok.json()["timeout_s"] == 5
    assert execute(server, "portfolio_overview", {"portfolio_id": portfolio}).json()["timeout_s"] == 30


def test_a_cancelled_run_answers_409_and_closes_its_provider_request(week3_target, staging):
    server = _on(staging, "week3-day1-2")
    portfolio = sample_inputs(staging.database_url)["portfolio_id"]
    stand_in = upstream(staging)
    run_id = str(uuid.uuid4())
    answer: dict = {}
    stand_in.set_fault("polygon", latency_ms=4_000)
    try:
        caller = threading.Thread(target=lambda: answer.update(r=execute(
            server, "news_impact_analysis", {"portfolio_id": portfolio}, run_id)))
        caller.start()
        for _ in range(100):          # the run reaches the slowed provider
            if stand_in.inflight()["polygon"]:
                break
            time.sleep(0.05)
        state = httpx.get(f"{server.base_url}/api/runs/{run_id}", headers=server.headers())
        assert state.json() == {"run_id": run_id, "pattern_id": "news_impact_analysis", "status": "running"}
        cancelled_at = time.monotonic()
        cancel = httpx.post(f"{server.base_url}/api/runs/{run_id}/cancel", headers=server.headers())
        assert cancel.status_code == 202, cancel.text
        caller.join(5)
        ended_after = time.monotonic() - cancelled_at
    finally:
        stand_in.heal("polygon")
    assert_error_shape(answer["r"], 409, "pattern_cancelled")
    assert ended_after < 1 + 0.5, ended_after              # the contract's bound (+ the poll)
    deadline = time.monotonic() + 2          # the stand-in notices the hang-up on its next poll
    while stand_in.inflight()["polygon"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stand_in.inflight()["polygon"] == 0
    assert [e["status"] for e in stand_in.log("polygon")][-1] == "client-closed"
    after = httpx.get(f"{server.base_url}/api/runs/{run_id}", headers=server.headers())
    assert after.json()["status"] == "cancelled"


def test_unknown_runs_and_patterns_answer_404_in_the_error_shape(week3_target, staging):
    server = _on(staging, "week3-day1-2")
    rid = f"probe-{uuid.uuid4().hex[:8]}"
    r = httpx.get(f"{server.base_url}/api/runs/{uuid.uuid4()}", headers={**server.headers(), "X-Request-Id": rid})
    assert_error_shape(r, 404, "run_not_found")
    assert r.headers["X-Request-Id"] == rid
    assert_error_shape(execute(server, "no_such_pattern", {}), 404, "pattern_not_found")
    no_token = httpx.post(f"{server.base_url}/api/runs/{uuid.uuid4()}/cancel")
    assert no_token.status_code == 401


PROBE_DAY = "2031-01-02"      # a day no seed price has: the probe's writes are found by it


def _probe_pattern(then: str) -> dict:
    """Under a shipped pattern's id (its input model applies): refresh one price from FMP (a
    write), then `then` (a capability reading Polygon)."""
    return {"news_impact_analysis": {"inputs": {"portfolio_id": {"type": "uuid", "required": True},
                                                "symbol": {"type": "string"}},
                                     "steps": [
        {"id": "refresh", "capability": "data_harvester.refresh_prices",
         "args": {"symbols": ["{{inputs.symbol}}"], "asof_date": PROBE_DAY}, "as": "refresh"},
        {"id": "news", "capability": then, "args": {"symbol": "{{inputs.symbol}}"}, "as": "news"}]}}


def _probe_rows(database_url: str) -> int:
    from runbook.pg import connect
    with connect(database_url) as conn:
        return conn.execute("SELECT (SELECT count(*) FROM prices WHERE asof_date = %s)"
                            " + (SELECT count(*) FROM pricing_packs WHERE date = %s)",
                            (PROBE_DAY, PROBE_DAY)).fetchone()[0]


def test_a_failing_step_rolls_back_the_writes_before_it(week3_target, staging):
    from runbook.expectations.week3.probe import probe_api
    _on(staging, "week3-day3-4")
    sample = sample_inputs(staging.database_url)
    inputs = {"portfolio_id": sample["portfolio_id"], "symbol": sample["symbol"]}
    stand_in = upstream(staging)
    assert _probe_rows(staging.database_url) == 0
    with probe_api(staging, _probe_pattern("data_harvester.fetch_provider_news")) as server:
        stand_in.set_fault("polygon", status=500)
        try:
            failed = execute(server, "news_impact_analysis", inputs)
        finally:
            stand_in.heal("polygon")
        assert failed.status_code == 500 and failed.json()["error"]["details"]["step"] == "news", failed.text
        assert [e["provider"] for e in stand_in.log()][:1] == ["fmp"]      # the write happened first
        assert _probe_rows(staging.database_url) == 0                      # ... and was rolled back
        ok = execute(server, "news_impact_analysis", inputs)
        assert ok.status_code == 200 and ok.json()["data"]["refresh"]["written"] == 1, ok.text
    assert _probe_rows(staging.database_url) == 2                          # committed: price + pack
    from runbook.pg import connect
    with connect(staging.database_url) as conn:
        conn.execute("DELETE FROM prices WHERE asof_date = %s", (PROBE_DAY,))
        conn.execute("DELETE FROM pricing_packs WHERE date = %s", (PROBE_DAY,))


def test_invalid_patterns_input_and_an_open_circuit_answer_in_the_contract(week3_target, staging):
    server = _on(staging, "week3-day3-4")
    portfolio = sample_inputs(staging.database_url)["portfolio_id"]
    validate = httpx.post(f"{server.base_url}/api/patterns/validate", headers=server.headers(), json={
        "spec": {"steps": [{"id": "a", "capability": "financial_analyst.get_valued_positions",
                            "args": {"positions": "{{later.rows}}"}}]}})
    assert validate.status_code == 200
    assert [(e["code"], e["step"]) for e in validate.json()["errors"]] == [("undefined_reference", "a")]
    bad = httpx.post(f"{server.base_url}/api/patterns/portfolio_overview/execute", headers=server.headers(),
                     json={"inputs": [1]})
    assert_error_shape(bad, 422, "invalid_request")
    assert bad.json()["error"]["details"]["fields"][0]["field"] == "inputs"

    stand_in = upstream(staging)
    providers = httpx.get(f"{server.base_url}/api/providers", headers=server.headers()).json()
    threshold = providers["polygon"]["circuit"]["failure_threshold"]
    assert providers["polygon"]["circuit"]["state"] == "closed"
    stand_in.set_fault("polygon", status=500)
    try:
        answers = [execute(server, "news_impact_analysis", {"portfolio_id": portfolio}) for _ in range(3)]
        reached = len(stand_in.log("polygon"))
        state = httpx.get(f"{server.base_url}/api/providers", headers=server.headers()).json()["polygon"]
    finally:
        stand_in.heal("polygon")
    assert reached == threshold                          # then nothing reached the provider
    assert answers[-1].status_code == 503
    assert_error_shape(answers[-1], 503, "provider_unavailable")
    assert state["circuit"]["state"] == "open"
    time.sleep(state["circuit"]["reset_timeout_s"])
    assert execute(server, "news_impact_analysis", {"portfolio_id": portfolio}).status_code == 200
    after = httpx.get(f"{server.base_url}/api/providers", headers=server.headers()).json()["polygon"]
    assert after["circuit"]["state"] == "closed"


def test_errors_logs_and_resources_after_day_5(week3_target, staging):
    import json

    from runbook.pg import connect
    server = _on(staging, "week3-day5")
    portfolio = sample_inputs(staging.database_url)["portfolio_id"]
    url = server.base_url
    calls = {
        401: httpx.get(f"{url}/api/patterns", headers={"X-Request-Id": "probe-401"}),
        403: httpx.get(f"{url}/api/providers", headers=server.headers(role="analyst")),
        404: httpx.get(f"{url}/api/no/such/route", headers=server.headers()),
        405: httpx.delete(f"{url}/api/patterns", headers=server.headers()),
        422: httpx.post(f"{url}/api/patterns/validate", json={"spec": 3}, headers=server.headers()),
    }
    for status, r in calls.items():
        assert r.status_code == status, (status, r.text)
        assert set(r.json()["error"]) >= {"code", "message", "request_id", "details"}
        assert r.json()["error"]["request_id"] == r.headers["X-Request-Id"]
    assert calls[401].headers["X-Request-Id"] == "probe-401"

    resources = httpx.get(f"{url}/health/resources", headers=server.headers()).json()
    assert set(resources) == {"open_fds", "threads", "asyncio_tasks", "db_connections"}
    baseline = resources["db_connections"]["in_use"]
    stand_in = upstream(staging)
    stand_in.set_fault("polygon", latency_ms=20_000)
    try:                                   # a timeout, then a cancellation, while errors come and go
        assert execute(server, "news_impact_analysis", {"portfolio_id": portfolio}).status_code == 504
        run_id, answer = str(uuid.uuid4()), {}
        caller = threading.Thread(target=lambda: answer.update(r=execute(
            server, "news_impact_analysis", {"portfolio_id": portfolio}, run_id)))
        caller.start()
        for _ in range(100):
            if httpx.get(f"{url}/api/runs/{run_id}", headers=server.headers()).status_code == 200:
                break
            time.sleep(0.05)
        assert httpx.post(f"{url}/api/runs/{run_id}/cancel", headers=server.headers()).status_code == 202
        caller.join(5)
        assert answer["r"].status_code == 409
    finally:
        stand_in.heal("polygon")
    for _ in range(20):
        httpx.get(f"{url}/api/no/such/route", headers=server.headers())
    assert httpx.get(f"{url}/health/resources", headers=server.headers()).json()["db_connections"]["in_use"] == baseline

    with connect(staging.database_url) as conn:
        names = {r[0] for r in conn.execute("SELECT application_name FROM pg_stat_activity"
                                            " WHERE datname = current_database() AND pid <> pg_backend_pid()")}
    assert "dawsos-api" in names

    lines = server.log_path.read_text().splitlines()
    since = max(i for i, line in enumerate(lines) if '"probe-401"' in line) if lines else 0
    recent = [json.loads(line) for line in lines[since:] if line.strip()]        # every line is JSON
    assert recent and all({"time", "level", "message", "request_id", "pattern_id"} <= set(x) for x in recent)
    assert any(x["pattern_id"] == "news_impact_analysis" for x in recent)
    text = "\n".join(lines[since:])
    assert server.jwt_secret not in text and "apikey=" not in text.replace("apikey=***", "")


def test_every_new_route_passes_the_authorization_gate(week3_target, staging):
    """The Week 0 authorization gate probes every route the service lists: the run routes,
    validation, providers and resources refuse no, forged and expired tokens (401) and a
    token without the right (403), and admit the operator."""
    from runbook.expectations.authorization import authorization_gate
    server = _on(staging, SHIPPED[-1].name)
    result = authorization_gate(server.base_url, staging.database_url, staging.deploy_dir, server.jwt_secret)
    assert result.passed, result.sample
    routes = {r["route"] for r in result.details["requests"]}
    assert {"GET /api/runs/{run_id}", "POST /api/runs/{run_id}/cancel"} <= routes
    if SHIPPED[-1].name != "week3-day1-2":
        assert {"POST /api/patterns/validate", "GET /api/providers"} <= routes


def test_a_probe_pattern_beside_the_shipped_ones_runs_under_its_own_timeout(week3_target, staging):
    """What the Week 3 gates do: serve a pattern of their own from DAWSOS_PATTERNS_DIR (an id the
    generated input models do not know) with a short timeout_s."""
    from runbook.expectations.week3.probe import probe_api
    _on(staging, "week3-day1-2")
    portfolio = sample_inputs(staging.database_url)["portfolio_id"]
    probe = {"runbook_probe_slow": {
        "timeout_s": 1, "inputs": {"portfolio_id": {"type": "uuid", "required": True}},
        "steps": [{"id": "news", "capability": "data_harvester.get_news_events",
                   "args": {"portfolio_id": "{{inputs.portfolio_id}}", "limit": "{{inputs.limit|default:10}}"}, "as": "news"}]}}
    stand_in = upstream(staging)
    with probe_api(staging, probe) as server:
        assert execute(server, "runbook_probe_slow", {"portfolio_id": portfolio}).status_code == 200
        assert_error_shape(execute(server, "runbook_probe_slow", {"portfolio_id": "x"}), 422, "invalid_inputs")
        stand_in.set_fault("polygon", latency_ms=10_000)
        try:
            r = execute(server, "runbook_probe_slow", {"portfolio_id": portfolio})
        finally:
            stand_in.heal("polygon")
    assert_error_shape(r, 504, "pattern_timeout")
    assert r.json()["error"]["details"]["timeout_s"] == 1


def test_a_429_is_retried_after_its_retry_after_and_leaves_the_circuit_closed(week3_target, staging):
    server = _on(staging, "week3-day3-4")
    portfolio = sample_inputs(staging.database_url)["portfolio_id"]
    stand_in = upstream(staging)
    policy = httpx.get(f"{server.base_url}/api/providers", headers=server.headers()).json()["polygon"]
    stand_in.clear_log()
    stand_in.set_fault("polygon", status=429, retry_after_s=1)
    try:
        r = execute(server, "news_impact_analysis", {"portfolio_id": portfolio})
    finally:
        stand_in.heal("polygon")
    assert r.status_code == 500 and r.json()["error"]["code"] == "step_failed"     # still 429 after the retries
    arrivals = sorted(e["started"] for e in stand_in.log("polygon"))
    assert len(arrivals) == policy["retry"]["attempts"]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(arrivals)), arrivals
    after = httpx.get(f"{server.base_url}/api/providers", headers=server.headers()).json()["polygon"]
    assert after["circuit"]["state"] == "closed"


def test_calls_to_a_provider_never_exceed_its_rate_plus_burst_in_any_second(week3_target, staging):
    from concurrent.futures import ThreadPoolExecutor
    server = _on(staging, "week3-day3-4")
    portfolio = sample_inputs(staging.database_url)["portfolio_id"]
    stand_in = upstream(staging)
    policy = httpx.get(f"{server.base_url}/api/providers", headers=server.headers()).json()["polygon"]
    stand_in.clear_log()
    started = time.time()
    with ThreadPoolExecutor(12) as pool:           # 12 runs at once, 3 headline calls each
        answers = list(pool.map(lambda _: execute(server, "news_impact_analysis", {"portfolio_id": portfolio}),
                                range(12)))
    assert [a.status_code for a in answers] == [200] * 12
    arrivals = sorted(e["started"] for e in stand_in.log("polygon"))
    assert len(arrivals) > 2 * (policy["rate_per_s"] + policy["burst"])   # well past what 1 s lets through
    assert ahead_of_rate(arrivals, started, policy["rate_per_s"], policy["burst"]) == []   # the gate's own curve

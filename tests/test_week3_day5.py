"""Week 3 Day 5 (error handling standardization): the error-shape, logging and resources gates
against the real demo API on real PostgreSQL with the real upstream stand-in — FAILING on the
code before the change set (Days 3-4), passing on the change set, and failing on a change set
that breaks exactly its property (a route answering a bare 500, a log line carrying a secret,
a timed-out run left holding its work); the secret search shown on its own lines; the flow on
staging green, ticking the standup."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest
from test_week3_change_sets import commit_edit

from runbook.context import build_context
from runbook.expectations.week3.day5 import error_shape_check, logging_check, resources_check
from runbook.expectations.week3.json_logs import line_problems, planted_secrets
from runbook.tasks.code import git_ops
from runbook.tasks.target.deploy import api, deploy, shutdown, upstream, upstream_standin

pytestmark = pytest.mark.timeout(600)
BEFORE, CHANGE_SET = "plan/week3-day3-4", "plan/week3-day5"
HEALTHY = {p: {"latency_ms": 0, "status": None, "retry_after_s": None, "down": False} for p in ("fmp", "polygon", "fred")}
EXECUTE = "POST /api/patterns/{pattern_id}/execute"


def stand_in_faults(ctx) -> dict:
    """What the run's stand-in is set to break (a gate must heal what it broke)."""
    return httpx.get(upstream_standin(ctx).base_url + "/_control", timeout=10).json()


def circuits(ctx) -> dict[str, str]:
    """The API's circuit breaker states (a gate must leave none open for the smoke after it)."""
    r = httpx.get(api(ctx).base_url + "/api/providers", headers=api(ctx).headers(), timeout=10).json()
    return {p: v["circuit"]["state"] for p, v in r.items()}


def answers(result) -> dict[tuple[str, str], dict]:
    return {(a["route"], a["probe"]): a for a in result.details["answers"]}


@pytest.fixture
def staging(week3_target):
    """A run context on staging; the API and stand-in stopped afterwards."""
    ctx = build_context("test-week3-day5", "staging", uuid.uuid4().hex)
    yield ctx
    shutdown(ctx)


def at(week3_target, ref: str) -> str:
    return git_ops.git(week3_target.repo, "rev-parse", ref)


@pytest.mark.gate_fails("week3:error-shape")
@pytest.mark.gate_fails("week3:logging")
@pytest.mark.gate_fails("week3:resources")
def test_the_gates_fail_on_the_code_before_the_change_set(staging, week3_target):
    deploy(staging, at(week3_target, BEFORE))
    shape = error_shape_check(staging)
    assert not shape.passed and shape.name == "week3:error-shape"
    seen = answers(shape)
    # FastAPI's own answers before Day 5: {"detail": ...}, no request id
    assert seen[("GET /api/patterns", "no token")]["problem"] == \
        'not the error shape: {"detail": "authentication required"}'
    assert seen[("DELETE /api/patterns", "method not served")]["problem"] == \
        'not the error shape: {"detail": "Method Not Allowed"}'
    assert seen[("GET /api/patterns", "role without rights")]["status"] == 403
    assert stand_in_faults(staging) == HEALTHY

    logs = logging_check(staging)
    assert not logs.passed and logs.name == "week3:logging"
    # leaked secrets come first in the sample, shown redacted: the provider's 500 is logged with
    # its URL, API key included (the traceback of raise_for_status)
    assert logs.sample[0]["problem"] == "secret POLYGON_API_KEY in the log"
    assert all("rbsecret" not in s["text"] for s in logs.sample)
    assert "<POLYGON_API_KEY>" in logs.sample[0]["text"]
    assert logs.details["problems"]["not a JSON object"] > 0           # tracebacks, plain text
    ok, ran = logs.details["smoke"].removesuffix(" ok").split("/")
    assert ok == ran and int(ran) >= 13                                # the smoke ran through the probe API
    assert [(r["what"], r["status"]) for r in logs.details["error_runs"]] == [
        ("polygon answers 500", 500), ("bad input", 422)]
    assert stand_in_faults(staging) == HEALTHY

    resources = resources_check(staging)
    assert not resources.passed and resources.name == "week3:resources"
    assert "GET /health/resources answered HTTP 404" in resources.sample[0]["problem"]
    assert stand_in_faults(staging) == HEALTHY


def test_the_gates_pass_on_the_change_set(staging, week3_target):
    deploy(staging, at(week3_target, CHANGE_SET))
    shape = error_shape_check(staging)
    assert shape.passed, shape.sample
    statuses = {a["status"] for a in shape.details["answers"]}
    assert {401, 403, 404, 405, 422} <= statuses
    seen = answers(shape)
    assert seen[("POST /api/patterns/portfolio_overview/execute", "a step raises (probe API)")]["status"] == 500
    assert seen[("POST /api/patterns/news_impact_analysis/execute", "polygon down (probe API)")]["status"] >= 500

    logs = logging_check(staging)
    assert logs.passed, logs.sample

    resources = resources_check(staging)
    assert resources.passed, resources.sample
    assert stand_in_faults(staging) == HEALTHY
    assert circuits(staging) == {"fmp": "closed", "polygon": "closed", "fred": "closed"}
    assert upstream(staging).inflight() == {"fmp": 0, "polygon": 0, "fred": 0}


# -- a change set that breaks exactly one property --------------------------------------------

RUN_TRANSACTION = """    async with get_pool().acquire() as conn:
        async with conn.transaction():
            token = _run_connection.set(conn)
            try:
                yield conn
            finally:
                _run_connection.reset(token)"""
RUN_TRANSACTION_LEAKING = """    conn = await get_pool().acquire()
    async with conn.transaction():
        token = _run_connection.set(conn)
        try:
            yield conn
        finally:
            _run_connection.reset(token)
    await get_pool().release(conn)      # skipped when the run raises"""
# (gate, file, the change set's line, the broken line)
BROKEN = {
    "a step's failure answered as a bare 500": (
        error_shape_check, "backend/app/main.py",
        'raise errors.ApiError(f"pattern {pattern_id}: step {exc.step_id} failed", code="step_failed",',
        ('return JSONResponse(status_code=500, content="Internal Server Error")\n        '
         'raise errors.ApiError(f"pattern {pattern_id}: step {exc.step_id} failed", code="step_failed",')),
    "log lines no longer masked": (
        logging_check, "backend/app/core/logging_setup.py",
        "return redact(super().format(record), self.secrets)", "return super().format(record)"),
    "a run's connection kept when the run fails, times out or is cancelled": (
        resources_check, "backend/app/core/database.py",
        RUN_TRANSACTION, RUN_TRANSACTION_LEAKING),
}


@pytest.mark.gate_fails("week3:error-shape")
@pytest.mark.gate_fails("week3:logging")
@pytest.mark.gate_fails("week3:resources")
def test_each_gate_fails_on_a_change_set_that_breaks_its_property(staging, week3_target, tmp_path):
    failed = {}
    for what, (check, path, old, new) in BROKEN.items():
        deploy(staging, commit_edit(week3_target.repo, CHANGE_SET, path, old, new, what, tmp_path))
        result = check(staging)
        failed[what] = result
        assert not result.passed, what
        assert stand_in_faults(staging) == HEALTHY
    bare = failed["a step's failure answered as a bare 500"].sample
    assert [(s["route"], s["status"]) for s in bare] == [
        ("POST /api/patterns/portfolio_overview/execute", 500), ("POST /api/patterns/news_impact_analysis/execute", 500)]
    assert all("not the error shape" in s["problem"] or "not JSON" in s["problem"] for s in bare)
    leaked = failed["log lines no longer masked"]
    assert {s["problem"] for s in leaked.sample} == {"secret POLYGON_API_KEY in the log"}
    assert all("rbsecret" not in s["text"] and "<POLYGON_API_KEY>" in s["text"] for s in leaked.sample)
    held = failed["a run's connection kept when the run fails, times out or is cancelled"]
    in_use = next(s for s in held.sample if s["figure"] == "in_use")
    assert in_use["after"] > in_use["limit"] == held.details["baseline"]["in_use"]


def test_the_secret_search_finds_a_secret_in_any_line_form():
    planted = planted_secrets()
    key = planted["POLYGON_API_KEY"]
    lines = [json.dumps({"time": "t", "level": "INFO", "message": "ok", "request_id": "r", "pattern_id": None}),
             json.dumps({"time": "t", "level": "ERROR", "message": f"GET /news?apikey={key}",
                         "request_id": "r", "pattern_id": "news_impact_analysis"}),
             f"plain text {key}"]
    problems, records = line_problems(lines, planted)
    assert [(p["line"], p["problem"]) for p in problems] == [
        (2, "secret POLYGON_API_KEY in the log"), (3, "secret POLYGON_API_KEY in the log"), (3, "not a JSON object")]
    assert all(key not in p["text"] and "<POLYGON_API_KEY>" in p["text"] for p in problems)
    assert len(records) == 2


# -- the flow -------------------------------------------------------------------------------------

@pytest.mark.usefixtures("prefect_server")
def test_flow_on_staging_is_green_and_ticks_the_standup(week3_target, slack_standin):
    from runbook.flows.standup import collect
    from runbook.flows.week3.day5 import error_handling

    ctx = build_context("test-week3-day5", "staging", uuid.uuid4().hex)
    deploy(ctx, at(week3_target, BEFORE))            # staging runs Days 3-4, as the plan leaves it
    shutdown(ctx)
    out = error_handling(environment="staging")      # change_ref: plan/week3-day5
    assert out.status == "completed"
    assert ["code:change-set", "gate:error-shape", "gate:logging", "gate:resources", "smoke"] == [
        s for s in out.applied if s.startswith(("code:", "gate:", "smoke")) and s != "smoke:baseline"]
    deployed = week3_target.deploy["staging"]
    assert git_ops.git(deployed, "rev-parse", "HEAD^2") == at(week3_target, CHANGE_SET)
    assert slack_standin.requests == []
    ticked = collect(None, since_last=False).ticked()
    assert {t for k, t in ticked if k == "week3-day5"} == {
        "Error handling standardized", "Logging standardized", "Resources back to baseline"}

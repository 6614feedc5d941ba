"""Week 3 Day 5 (error handling standardization): the error-shape, logging and resources gates
against the real demo API on real PostgreSQL with the real upstream stand-in — FAILING on the
code before the change set (each for its own reason, named). The logging gate's secret search
is shown to find a planted secret on its own lines."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest

from runbook.context import build_context
from runbook.demo.change_sets import BASE_BRANCH
from runbook.expectations.week3.day5 import error_shape_check, logging_check, resources_check
from runbook.expectations.week3.json_logs import line_problems, planted_secrets
from runbook.tasks.code import git_ops
from runbook.tasks.target.deploy import deploy, shutdown, upstream, upstream_standin

pytestmark = pytest.mark.timeout(600)
HEALTHY = {p: {"latency_ms": 0, "status": None, "retry_after_s": None, "down": False} for p in ("fmp", "polygon", "fred")}


def stand_in_faults(ctx) -> dict:
    """What the run's stand-in is set to break (a gate must heal what it broke)."""
    return httpx.get(upstream_standin(ctx).base_url + "/_control", timeout=10).json()


@pytest.fixture
def before(week3_target):
    """A run context on staging, deployed at the code before the change set; the API and
    stand-in stopped afterwards."""
    ctx = build_context("test-week3-day5", "staging", uuid.uuid4().hex)
    deploy(ctx, git_ops.git(week3_target.repo, "rev-parse", BASE_BRANCH))
    yield ctx
    shutdown(ctx)


@pytest.mark.gate_fails("week3:error-shape")
@pytest.mark.gate_fails("week3:logging")
@pytest.mark.gate_fails("week3:resources")
def test_the_gates_fail_on_the_code_before_the_change_set(before):
    shape = error_shape_check(before)
    assert not shape.passed and shape.name == "week3:error-shape"
    problems = {(s["route"], s["probe"]): s for s in shape.details["answers"]}
    # FastAPI's own answers: {"detail": ...}, no request id
    assert "not the error shape" in problems[("GET /api/patterns", "no token")]["problem"]
    # Polygon down: a 500 naming the exception class
    down = problems[("POST /api/patterns/news_impact_analysis/execute", "polygon down (probe API)")]
    assert down["status"] == 500 and "exception class ('RemoteProtocolError')" in down["problem"]
    assert problems[("GET /api/patterns", "role without rights")]["status"] == 403
    assert upstream(before).inflight() == {"fmp": 0, "polygon": 0, "fred": 0}
    assert stand_in_faults(before) == HEALTHY

    logs = logging_check(before)
    assert not logs.passed and logs.name == "week3:logging"
    kinds = {s["problem"] for s in logs.sample}
    assert "not a JSON object" in kinds
    # a provider's 500 is logged with the provider URL, API key included (raise_for_status)
    leaked = [s for s in logs.sample if s["problem"].startswith("secret ")]
    assert leaked and all("rbsecret" not in s["text"] for s in logs.sample)   # shown redacted
    assert logs.details["lines"] > 0 and "AUTH_JWT_SECRET" in logs.details["searched"]
    assert logs.details["smoke"] == "17/17 ok"                   # the smoke ran through the probe API
    assert [(r["what"], r["status"]) for r in logs.details["error_runs"]] == [
        ("polygon answers 500", 500), ("bad input", 422)]

    resources = resources_check(before)
    assert not resources.passed and resources.name == "week3:resources"
    assert "GET /health/resources answered HTTP 404" in resources.sample[0]["problem"]
    assert stand_in_faults(before) == HEALTHY


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

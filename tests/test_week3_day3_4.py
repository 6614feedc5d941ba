"""Week 3 Days 3-4 gates (blocking validation, transactions, input validation, rate limiting)
against the demo: they fail on the code before the change set (Days 1-2 merged), pass on the
change set, and each fails on a change set that breaks exactly its property. Real git, real
PostgreSQL, the real demo API (probe APIs on the deployed code) and the upstream stand-in."""
from __future__ import annotations

import uuid

import httpx
import pytest
from test_week3_change_sets import commit_edit

from runbook.context import build_context
from runbook.expectations.week3 import day3_4
from runbook.pg import connect
from runbook.tasks.code import git_ops
from runbook.tasks.target.deploy import deploy, shutdown, upstream_standin

GATES = {"week3:blocking-validation": day3_4.blocking_validation_check,
         "week3:transactions": day3_4.transactions_check,
         "week3:input-validation": day3_4.input_validation_check,
         "week3:rate-limiting": day3_4.rate_limiting_check}


@pytest.fixture
def staging(week3_target):
    ctx = build_context("test-week3-day3-4", "staging", f"g2-{uuid.uuid4().hex[:8]}")
    yield ctx
    shutdown(ctx)


def on(ctx, *branches: str) -> None:
    """Staging runs the Weeks 0-1 code with `branches` merged in order."""
    for branch in branches:
        git_ops.merge(ctx.deploy_dir, branch, f"merge {branch}")
    deploy(ctx, git_ops.head(ctx.deploy_dir))


def no_probe_rows_left(ctx) -> None:
    """No gate leaves probe rows (1900-1949) behind, nor a fault at the stand-in."""
    with connect(ctx.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM pricing_packs WHERE date < '1950-01-01'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM prices WHERE asof_date < '1950-01-01'").fetchone()[0] == 0
    assert all(fault == {"latency_ms": 0, "status": None, "retry_after_s": None, "down": False}
               for fault in httpx.get(upstream_standin(ctx).base_url + "/_control", timeout=10).json().values())


@pytest.mark.gate_fails("week3:blocking-validation")
@pytest.mark.gate_fails("week3:transactions")
@pytest.mark.gate_fails("week3:input-validation")
@pytest.mark.gate_fails("week3:rate-limiting")
def test_every_gate_fails_on_the_code_before_the_change_set(staging):
    on(staging, "plan/week3-day1-2")
    results = {name: check(staging) for name, check in GATES.items()}
    assert {name: r.passed for name, r in results.items()} == dict.fromkeys(GATES, False), \
        {n: r.sample[:3] for n, r in results.items()}
    why = {name: " | ".join(str(p) for p in r.sample) for name, r in results.items()}
    assert "/api/patterns/validate: HTTP 404" in why["week3:blocking-validation"]
    assert "a step ran" in why["week3:blocking-validation"]       # the invalid pattern's first step wrote
    assert "partial state left" in why["week3:transactions"]
    assert "not in the error shape" in why["week3:input-validation"]
    assert "/api/providers has no complete polygon entry" in why["week3:rate-limiting"]
    assert all(r.name == name for name, r in results.items())
    no_probe_rows_left(staging)


def test_every_gate_passes_on_the_change_set(staging):
    on(staging, "plan/week3-day1-2", "plan/week3-day3-4")
    results = {name: check(staging) for name, check in GATES.items()}
    assert {n: r.passed for n, r in results.items()} == dict.fromkeys(results, True), \
        {n: (r.observed, r.sample[:3]) for n, r in results.items()}
    fuzzed = results["week3:input-validation"].observed
    assert fuzzed["routes"] >= 9 and set(fuzzed["statuses"]) >= {200, 400, 422}
    no_probe_rows_left(staging)


@pytest.mark.usefixtures("prefect_server")
def test_the_flow_on_staging_after_days_1_2_is_green_and_ticks_the_standup(week3_target, slack_standin):
    from runbook.flows.standup import collect
    from runbook.flows.week3.day3_4 import data_integrity_fixes

    before = build_context("test-week3-day3-4", "staging", f"g2-{uuid.uuid4().hex[:8]}")
    on(before, "plan/week3-day1-2")
    shutdown(before)
    out = data_integrity_fixes(environment="staging")
    assert out.status == "completed"
    assert [s for s in out.applied if s.startswith("gate:")] == [
        "gate:blocking-validation", "gate:transactions", "gate:input-validation", "gate:rate-limiting"]
    assert slack_standin.requests == []
    assert {t for k, t in collect(None, since_last=False).ticked() if k == "week3-day3-4"} == {
        "Validation blocking errors", "Transaction management working",
        "Input validation at API boundaries", "Rate limiting on external APIs"}


# One property removed from the change set each: (gate, file, the line(s) that hold it, without them)
BROKEN = {
    "week3:blocking-validation": (      # validation no longer refuses before the steps
        "backend/app/core/pattern_orchestrator.py",
        "        self.ensure_valid(pattern_id, spec)\n", ""),
    "week3:transactions": (             # the run's connection no longer carries its steps
        "backend/app/core/database.py",
        "token = _run_connection.set(conn)", "token = _run_connection.set(None)"),
    "week3:input-validation": (         # invalid requests answered in the framework's shape
        "backend/app/core/errors.py",
        "    app.add_exception_handler(RequestValidationError, _invalid_request)\n", ""),
    "week3:rate-limiting": (            # no rate limiter in front of the provider
        "backend/app/integrations/resilience.py",
        "async with self.limiter:\n                    return await send()", "return await send()"),
}


@pytest.mark.gate_fails("week3:blocking-validation")
@pytest.mark.gate_fails("week3:transactions")
@pytest.mark.gate_fails("week3:input-validation")
@pytest.mark.gate_fails("week3:rate-limiting")
def test_each_gate_fails_on_the_change_set_without_its_property(staging, week3_target, tmp_path):
    on(staging, "plan/week3-day1-2", "plan/week3-day3-4")
    merged = git_ops.head(staging.deploy_dir)
    why = {}
    for name, (path, old, new) in BROKEN.items():
        deploy(staging, commit_edit(week3_target.repo, merged, path, old, new, f"break {name}", tmp_path))
        result = GATES[name](staging)
        assert not result.passed and result.name == name, name
        why[name] = " | ".join(str(p) for p in result.sample)
    assert "a step ran" in why["week3:blocking-validation"]
    assert "partial state left" in why["week3:transactions"]
    assert "HTTP 422 not in the error shape" in why["week3:input-validation"]
    assert "reached polygon ahead of rate_per_s + burst" in why["week3:rate-limiting"]
    # a limiter deaf to its settings, at a rate no machine here outruns: inconclusive, so failed
    deploy(staging, commit_edit(week3_target.repo, merged, "backend/app/integrations/resilience.py",
                                'rate_per_s=setting("RATE_PER_S", float)', "rate_per_s=1000.0",
                                "limiter deaf to its settings", tmp_path))
    result = GATES["week3:rate-limiting"](staging)
    assert not result.passed and result.observed["config"]["rate_per_s"] == 1000.0
    assert "cannot tell a limiter from a slow machine" in " | ".join(str(p) for p in result.sample)
    no_probe_rows_left(staging)


def test_the_rate_curve_forgives_late_calls_and_catches_early_ones():
    from runbook.expectations.week3.rate_limiting import ahead_of_rate
    rate, burst, t0 = 10.0, 5, 1000.0
    granted = [t0 + max(0, k - burst) / rate for k in range(1, 35)]       # a limiter's grants
    assert ahead_of_rate(granted, t0, rate, burst) == []
    stalled = [max(t, t0 + 1.1) for t in granted]                          # held 1.1 s, then bunched
    assert ahead_of_rate(stalled, t0, rate, burst) == []
    unlimited = [t0 + 0.01 * k for k in range(34)]                          # the whole burst at once
    assert [k for k, _ in ahead_of_rate(unlimited, t0, rate, burst)] == list(range(burst + 1, 35))
    twice = [t0 + max(0, k - burst) / (2 * rate) for k in range(1, 35)]   # a limiter at twice the rate
    early = ahead_of_rate(twice, t0, rate, burst)
    assert len(early) == 34 - burst and max(by for _, by in early) == 1.45

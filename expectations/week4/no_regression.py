"""Week 4's rollback trigger: per pattern, p95 latency after the change set is not worse than
before by more than 20% (and by more than latency.FLOOR_MS: noise on 2 busy cores).

Measured side by side like the latency gate (expectations/latency.py): the run's baseline code
(the commit deployed before its first code update) served by a second API beside the changed
one, requests alternating between the two, each as a user nobody used before (a cache hit
would hide the work the change made slower). A pattern that looks slower is measured again and
keeps its better verdict. No baseline (no code update in this run) fails the gate: nothing to
compare."""
from __future__ import annotations

import statistics
from collections import defaultdict

import httpx

from runbook.context import RunContext
from runbook.expectations import latency
from runbook.expectations.smoke import pattern_ids, sample_inputs
from runbook.expectations.week4.runs import fresh_user, run_as
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.tasks.target.deploy import api

NAME = "week4:no-regression"
SAMPLES = 8


def p95(values: list[float]) -> float:
    return round(statistics.quantiles(values, n=20, method="inclusive")[18], 2)


def paired_p95(ctx: RunContext, before, after, patterns: list[str]) -> tuple[dict, dict, list[str]]:
    """p95 ms per pattern on each server (after a warm-up pass), and the patterns failing on
    either side (left to the smoke gate)."""
    inputs = sample_inputs(ctx.database_url)
    samples: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    failing = set()
    with httpx.Client(timeout=60) as client:
        for pass_no in range(SAMPLES + 1):
            for pid in patterns:
                for side in ((0, 1) if pass_no % 2 else (1, 0)):
                    r = run_as(client, (before, after)[side], pid, inputs, fresh_user("p95"))
                    if r.status_code != 200:
                        failing.add(pid)
                    elif pass_no:
                        samples[pid][side].append(r.elapsed.total_seconds() * 1000)
    ok = [pid for pid in patterns if pid not in failing]
    return ({pid: p95(samples[pid][0]) for pid in ok}, {pid: p95(samples[pid][1]) for pid in ok}, sorted(failing))


@gate(NAME, checks="per pattern, p95 latency after the change set is not more than 20% (and more than "
      f"{latency.FLOOR_MS:.0f} ms) worse than the run's baseline code, measured side by side",
      runs_in="Week 4 Days 3-4 (gate:no-regression; the plan's rollback trigger)")
def no_regression_check(ctx: RunContext) -> GateResult:
    base = ctx.extra.get(latency.BASELINE_KEY)
    if not base or base.get("medians") is not None:
        why = "no baseline: this run deployed no code" if not base else \
            "the target API is external: its baseline cannot be served beside it"
        return GateResult(NAME, False, "p95 per pattern within 20% of the baseline", observed=why,
                          expected="a managed API and the run's baseline code", sample=[{"problem": why}])
    changed, baseline = api(ctx), latency.baseline_server(ctx, base["commit"])
    patterns = pattern_ids(ctx.deploy_dir)
    before, after, failing = paired_p95(ctx, baseline, changed, patterns)
    suspects = [row["pattern"] for row in latency.slower(before, after)]
    if suspects:
        again_before, again_after, _ = paired_p95(ctx, baseline, changed, suspects)
        for pid in suspects:
            if pid in again_after and again_after[pid] / max(again_before[pid], 1e-6) < after[pid] / max(before[pid], 1e-6):
                before[pid], after[pid] = again_before[pid], again_after[pid]
    worse = latency.slower(before, after)
    return GateResult(
        NAME, not worse and bool(before),
        f"every pattern's p95 latency within {latency.DEGRADATION:.0%} (or {latency.FLOOR_MS:.0f} ms) of the "
        "baseline code's (the plan's rollback trigger: performance degradation > 20%)",
        observed=f"{len(worse)} of {len(before)} patterns slower", expected="0 patterns slower",
        sample=worse or ([] if before else [{"problem": "no pattern answered on both sides"}]),
        details={"baseline_p95_ms": before, "after_p95_ms": after, "baseline_commit": base["commit"],
                 "not_compared (failing on one side: see the smoke gate)": failing})

"""The plan's rollback trigger "performance degradation > 20%", as a gate on every code update.

Per pattern, the median smoke latency of the changed code is compared with that of the code the
flow run started from (its baseline: the commit deployed before the run's first code update).
Repeats beat noise: the baseline code is served by a second API beside the changed one, and
requests alternate between the two (A B, B A, …) for `REPEATS` passes over all patterns, so a
busy moment of the machine slows both sides alike. A pattern that looks slower is measured
again, three times as long, and keeps its better verdict; a change must also exceed
`FLOOR_MS` — so a 1 ms -> 1.3 ms pattern does not trip it. Over 20 % worse fails the step, which rolls back.
(An external API — TARGET_API_URL — cannot be doubled: there the baseline is measured on it
before the change, and compared after.)
"""
from __future__ import annotations

import os
import statistics
from collections import defaultdict
from pathlib import Path

import httpx

from runbook.context import RunContext
from runbook.expectations.smoke import pattern_ids, rendered_panels, run_pattern, sample_inputs
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.tasks.code import git_ops
from runbook.tasks.target.api_server import ApiServer
from runbook.tasks.target.deploy import ON_SHUTDOWN, api, deployed_commit

DEGRADATION = 0.20      # the plan's trigger
FLOOR_MS = 50.0         # smaller absolute changes are noise, whatever the ratio (2 busy cores)
REPEATS = 7             # passes per measurement (env RUNBOOK_LATENCY_REPEATS)
SUSPECT_PASSES = 3      # a pattern that looks slower is measured again, this many times longer
BASELINE_KEY = "latency_baseline"
BASELINE_API = "latency_baseline_api"


def _probe(database_url: str, checkout: Path):
    inputs = sample_inputs(database_url)
    panels = rendered_panels(checkout)

    def run(client: httpx.Client, server: ApiServer, pid: str) -> float | None:
        r = run_pattern(client, server.base_url, checkout, pid, inputs, server.headers(), panels[pid])
        return r.ms if r.status == "ok" else None
    return run


def repeats() -> int:
    return max(int(os.environ.get("RUNBOOK_LATENCY_REPEATS") or REPEATS), 1)


def paired_medians(database_url: str, checkout: Path, before: ApiServer, after: ApiServer,
                   patterns: list[str], passes: int | None = None) -> tuple[dict, dict]:
    """Median ms per pattern on each server over `passes` (default: repeats()), requests
    alternating between them (after one warm-up pass). A pattern that fails on either side is
    left to the smoke gate."""
    probe = _probe(database_url, checkout)
    samples: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    with httpx.Client(timeout=60) as client:
        for pass_no in range((passes or repeats()) + 1):
            for pid in patterns:
                order = (0, 1) if pass_no % 2 else (1, 0)
                ms = {side: probe(client, (before, after)[side], pid) for side in order}
                if pass_no:
                    samples[pid][0].append(ms[0])
                    samples[pid][1].append(ms[1])
    # a pattern failing on either side is the smoke gate's concern, not a latency figure
    ok = {pid: s for pid, s in samples.items() if None not in s[0] and None not in s[1]}
    return ({pid: round(statistics.median(s[0]), 2) for pid, s in ok.items()},
            {pid: round(statistics.median(s[1]), 2) for pid, s in ok.items()})


def sequential_medians(ctx: RunContext) -> dict[str, float]:
    server = api(ctx)
    probe = _probe(ctx.database_url, ctx.deploy_dir)
    samples: dict[str, list] = defaultdict(list)
    with httpx.Client(timeout=60) as client:
        for pass_no in range(repeats() + 1):
            for pid in pattern_ids(ctx.deploy_dir):
                ms = probe(client, server, pid)
                if pass_no and ms is not None:
                    samples[pid].append(ms)
    return {pid: round(statistics.median(v), 2) for pid, v in samples.items()}


def remember_baseline(ctx: RunContext) -> None:
    """Before a code update: the run's baseline is the code deployed before its first one."""
    if BASELINE_KEY in ctx.extra:
        return
    server = api(ctx)
    server.start()
    ctx.extra[BASELINE_KEY] = {"commit": deployed_commit(ctx),
                               "medians": None if server.managed else sequential_medians(ctx)}


def baseline_server(ctx: RunContext, commit: str) -> ApiServer:
    """The baseline code, served by its own API from a scratch worktree: started at the run's
    first code update, kept for the next ones, stopped with the run's API (deploy.shutdown)."""
    server = ctx.extra.get(BASELINE_API)
    if server is None:
        path = ctx.workspace / "tmp" / f"latency-baseline-{ctx.flow_run_id[:8]}"
        wt = git_ops.worktree(ctx.repo, path, commit)
        server = ApiServer(wt, ctx.database_url, token=ctx.api_token, jwt_secret=ctx.jwt_secret,
                           log_path=ctx.workspace / "logs" / f"api-{ctx.slot}-baseline.log",
                           environment=api(ctx).environment)

        def stop() -> None:
            ctx.extra.pop(BASELINE_API, None)
            server.stop()
            git_ops.remove_worktree(ctx.repo, wt)
        ctx.extra[BASELINE_API] = server
        ctx.extra.setdefault(ON_SHUTDOWN, []).append(stop)
    server.start()
    return server


def slower(before: dict[str, float], after: dict[str, float], degradation: float = DEGRADATION,
           floor_ms: float = FLOOR_MS) -> list[dict]:
    return [{"pattern": p, "baseline_ms": b, "after_ms": after[p],
             "change_pct": round((after[p] / b - 1) * 100, 1) if b else None}
            for p, b in sorted(before.items())
            if p in after and after[p] > b * (1 + degradation) and after[p] - b > floor_ms]


@gate("latency", checks="no pattern's median smoke latency after a code update is more than 20% "
      f"(and more than {FLOOR_MS:.0f} ms) worse than the run's baseline",
      runs_in="every code update (tasks/steps/code_update.py), before the step counts as applied")
def latency_gate(step: str, before: dict[str, float], after: dict[str, float],
                 degradation: float = DEGRADATION, floor_ms: float = FLOOR_MS,
                 not_compared: list[str] = ()) -> GateResult:
    worse = slower(before, after, degradation, floor_ms)
    return GateResult(
        f"latency:{step}", not worse,
        f"every pattern's median latency within {degradation:.0%} (or {floor_ms:.0f} ms) of the "
        "baseline run (the plan's rollback trigger: performance degradation > 20%)",
        observed=f"{len(worse)} of {len(before)} patterns slower", expected="0 patterns slower",
        sample=worse, details={"baseline_ms": before, "after_ms": after,
                               "not_compared (failing on one side: see the smoke gate)": list(not_compared)})


def after_change(ctx: RunContext, step: str) -> GateResult:
    """The changed code (deployed) against the run's baseline; a pattern that looks slower is
    measured again, three times as long (a neighbour's burst of work outlasts a short
    measurement), and keeps the better of its two verdicts."""
    base, changed = ctx.extra[BASELINE_KEY], api(ctx)
    if base["medians"] is not None:             # an external API: before vs after, in turn
        return latency_gate(step, base["medians"], sequential_medians(ctx))
    patterns = pattern_ids(ctx.deploy_dir)
    baseline = baseline_server(ctx, base["commit"])
    before, after = paired_medians(ctx.database_url, ctx.deploy_dir, baseline, changed, patterns)
    suspects = [row["pattern"] for row in slower(before, after)]
    if suspects:
        again_before, again_after = paired_medians(ctx.database_url, ctx.deploy_dir, baseline,
                                                   changed, suspects, passes=SUSPECT_PASSES * repeats())
        for pid in suspects:
            if pid in again_after and again_after[pid] / max(again_before[pid], 1e-6) \
                    < after[pid] / max(before[pid], 1e-6):
                before[pid], after[pid] = again_before[pid], again_after[pid]
    return latency_gate(step, before, after, not_compared=sorted(set(patterns) - set(before)))

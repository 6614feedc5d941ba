"""Week 4 Days 3-4, Task 8.4: async execution. CPU-bound work runs off the event loop: while 8
clients run patterns, /health answers at once — its median under 20 ms and its p99 under 100 ms.

The 8 clients run in a process of their own (load.py), each as users nobody used before (no cache
hits: real work); this process times a few hundred /health calls on a dedicated connection while
they run. Fewer probes than that, or pattern runs that did not answer 200, fail the gate.

Why the median: on 2 shared cores the API, its 8 clients and PostgreSQL contend for the CPU, and
/health's tail follows the machine (measured on the change set: p50 6-9 ms, p99 35-46 ms, three
runs; the code before it the same). A loop that holds each result for 30 ms moves the whole
distribution: p50 129-135 ms, p99 219-250 ms, and only ~50 probes answer while the load runs.
Over a bound, it is measured again (up to 3 times) and the best kept (a busy moment slows a
correct API too; a blocked loop is over the bound every time)."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import httpx

from runbook.context import RunContext
from runbook.expectations.smoke import declared_inputs, load_pattern, pattern_ids, sample_inputs
from runbook.expectations.week4.runs import fresh_user
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.target import DAWSOS
from runbook.tasks.target.deploy import api

NAME = "week4:async"
CLIENTS, PROBES, P50_LIMIT_MS, P99_LIMIT_MS = 8, 300, 20.0, 100.0
ATTEMPTS = 3           # measurements at most, the best kept
REQUESTS_PER_CLIENT, LOAD_SECONDS, PROBE_INTERVAL_S = 120, 8, 0.01


def _load_spec(ctx: RunContext) -> dict:
    server, inputs = api(ctx), sample_inputs(ctx.database_url)
    patterns = pattern_ids(ctx.deploy_dir)
    bodies = {pid: {"inputs": declared_inputs(load_pattern(ctx.deploy_dir, pid), inputs)} for pid in patterns}
    clients = [[{"path": DAWSOS.execute_route.format(pattern_id=pid), "json": bodies[pid],
                 "headers": server.headers(sub=fresh_user("async"))}
                for pid in (patterns[(c + i) % len(patterns)] for i in range(REQUESTS_PER_CLIENT))]
               for c in range(CLIENTS)]
    return {"base_url": server.base_url, "seconds": LOAD_SECONDS, "clients": clients}


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def over_bounds(timings: list[float]) -> list[str]:
    """What of the /health timings (ms) is over the gate's bounds; too few timings are a problem too."""
    if len(timings) < 2:
        return [f"only {len(timings)} /health probes answered: nothing measured"]
    p50, tail = statistics.median(timings), p99(timings)
    return ([f"/health p50 {p50:.2f} ms while {CLIENTS} clients ran patterns"] if p50 >= P50_LIMIT_MS else []) + \
           ([f"/health p99 {tail:.2f} ms while {CLIENTS} clients ran patterns"] if tail >= P99_LIMIT_MS else [])


def health_ms(timings: list[float]) -> dict:
    """p50, p99 and max of the /health timings (ms), rounded; None where too few to tell."""
    return {"p50": round(statistics.median(timings), 2) if timings else None,
            "p99": round(p99(timings), 2) if len(timings) >= 2 else None,
            "max": round(max(timings), 2) if timings else None}


def _measure(ctx: RunContext) -> tuple[list[float], dict]:
    """/health timings (ms) while the load runs, and the load's answers by status."""
    server = api(ctx)
    server.start()
    load = subprocess.Popen([sys.executable, "-m", "runbook.expectations.week4.load"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    timings: list[float] = []
    try:
        load.stdin.write(json.dumps(_load_spec(ctx)))
        load.stdin.close()
        load.stdout.readline()                                   # "ready"
        time.sleep(1)                                            # the clients are all busy
        with httpx.Client(timeout=10) as client:
            client.get(server.base_url + "/health")              # the connection, opened once
            while len(timings) < PROBES and load.poll() is None:
                start = time.perf_counter()
                r = client.get(server.base_url + "/health")
                if r.status_code == 200:
                    timings.append((time.perf_counter() - start) * 1000)
                time.sleep(PROBE_INTERVAL_S)
        summary = json.loads(load.stdout.readline() or "{}")
    finally:
        if load.poll() is None:
            load.wait(LOAD_SECONDS + 60)
    return timings, summary.get("status", {})


@gate(NAME, checks=f"while {CLIENTS} clients run patterns, /health answers with p50 under {P50_LIMIT_MS:.0f} ms "
      f"and p99 under {P99_LIMIT_MS:.0f} ms ({PROBES} probes on a dedicated connection)",
      runs_in="Week 4 Days 3-4 (gate:async; Task 8.4)")
def async_check(ctx: RunContext) -> GateResult:
    timings, statuses = _measure(ctx)
    for _ in range(ATTEMPTS - 1):
        if not over_bounds(timings) and len(timings) >= PROBES:
            break
        # a busy moment of 2 shared cores, or the code (a blocked loop is over the bound every
        # time): measured again, the better one kept
        again = _measure(ctx)
        if len(again[0]) >= 2 and (len(timings) < 2 or statistics.median(again[0]) < statistics.median(timings)):
            timings, statuses = again
    problems = over_bounds(timings)
    if len(timings) < PROBES:
        problems.append(f"only {len(timings)} of {PROBES} /health probes answered 200 while the load ran")
    bad = {s: n for s, n in statuses.items() if s != "200"}
    if bad or not statuses:
        problems.append(f"pattern runs under load answered {bad or 'nothing'}")
    measured = health_ms(timings)
    return GateResult(
        NAME, not problems,
        f"/health p50 under {P50_LIMIT_MS:.0f} ms and p99 under {P99_LIMIT_MS:.0f} ms while {CLIENTS} clients run patterns",
        observed=f"p50 {measured['p50']} ms, p99 {measured['p99']} ms over {len(timings)} probes",
        expected=f"p50 < {P50_LIMIT_MS:.0f} ms, p99 < {P99_LIMIT_MS:.0f} ms",
        sample=[{"problem": p} for p in problems],
        details={"health_ms": measured,
                 "pattern_runs": statuses})

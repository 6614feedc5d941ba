"""Week 4 Days 3-4, Task 8.4: async execution. CPU-bound work runs off the event loop: while 8
clients run patterns, the API's loop answers at once — a request no route serves (the router's
404, the loop alone) is at most 20 ms slower at p50, and 100 ms at p99, than the same request to
a reference loop that does nothing else, probed beside it.

The 8 clients run in a process of their own (load.py), each as users nobody used before (no cache
hits: real work); this process times a few hundred loop probes on a dedicated connection while
they run, alternating with as many calls to the reference (reference_loop.py: uvicorn like the
target, an empty loop) on a connection of its own. Fewer than 100 answered, probes answered 5xx,
or pattern runs that did not answer 200, fail the gate.

Why not /health: it takes a connection from the API's pool, and while 8 clients hold the pool it
waits for the database, not for the loop (on the change set: /health p50 50-60 ms, the loop probe
p50 10 ms in the same run). Why against a reference: on 2 shared cores the API, its 8 clients and
PostgreSQL contend for the CPU, and any answer's tail follows the machine; the reference waits for
the CPU as the target's loop does, so what the target takes beyond it is what its loop was kept
from answering (on the change set: p50 ~8 ms, p99 ~45 ms over). A loop that holds each result for
30 ms is ~120 ms over at p50. Over a bound, it is measured again (up to 3 times) and the best kept
(a busy moment slows a correct API too; a blocked loop is over the bound every time)."""
from __future__ import annotations

import json
import math
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
from runbook.processes import stop_process
from runbook.target import DAWSOS
from runbook.tasks.target.api_server import free_port
from runbook.tasks.target.deploy import api

NAME = "week4:async"
CLIENTS, PROBES, P50_LIMIT_MS, P99_LIMIT_MS = 8, 300, 20.0, 100.0
MIN_PROBES = 100       # fewer answered while the load ran: too few for a p99, or a loop kept busy
LOOP_PROBE_PATH = "/__runbook/loop-probe"    # no route serves it: the router answers from the loop
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


def excess_ms(timings: list[float], reference: list[float]) -> tuple[float, float]:
    """How much slower than the reference the target's loop probe is, at p50 and at p99 (ms)."""
    return (statistics.median(timings) - statistics.median(reference), p99(timings) - p99(reference))


def p50_excess(timings: list[float], reference: list[float]) -> float:
    """The p50 excess over the reference, infinite where either side has too few timings: the
    measure by which the better of two measurements is kept."""
    return excess_ms(timings, reference)[0] if len(timings) >= 2 and len(reference) >= 2 else math.inf


def over_bounds(timings: list[float], reference: list[float]) -> list[str]:
    """What of the loop probe's timings (ms) is over the gate's bounds against the reference's;
    too few timings on either side are a problem too."""
    if len(timings) < 2 or len(reference) < 2:
        return [f"only {len(timings)} loop probes and {len(reference)} reference probes answered: nothing measured"]
    p50, tail = excess_ms(timings, reference)
    return ([f"the loop probe p50 {p50:.2f} ms over the reference's while {CLIENTS} clients ran patterns"]
            if p50 > P50_LIMIT_MS else []) + \
           ([f"the loop probe p99 {tail:.2f} ms over the reference's while {CLIENTS} clients ran patterns"]
            if tail > P99_LIMIT_MS else [])


def quantiles_ms(timings: list[float]) -> dict:
    """p50, p99 and max of the timings (ms), rounded; None where too few to tell."""
    return {"p50": round(statistics.median(timings), 2) if timings else None,
            "p99": round(p99(timings), 2) if len(timings) >= 2 else None,
            "max": round(max(timings), 2) if timings else None}


class _Reference:
    """The reference loop in a process of its own, for the duration of a `with`."""

    def __enter__(self) -> str:
        port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "runbook.expectations.week4.reference_loop:app",
             "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}{LOOP_PROBE_PATH}"
        deadline = time.monotonic() + 30
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 404:
                    return url
            except httpx.HTTPError:
                pass                                     # not listening yet
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"the reference loop did not answer on port {port}")

    def __exit__(self, *_exc) -> None:
        stop_process(self.proc)


def _timed_get(client: httpx.Client, url: str, into: list[float]) -> None:
    """Times one answer that is not a server error (the loop probe's is a 404)."""
    start = time.perf_counter()
    if client.get(url).status_code < 500:
        into.append((time.perf_counter() - start) * 1000)


def _measure(ctx: RunContext) -> tuple[list[float], list[float], dict]:
    """The loop probe's timings (ms) and the reference's while the load runs, and the load's
    answers by status."""
    server = api(ctx)
    server.start()
    timings: list[float] = []
    reference: list[float] = []
    with _Reference() as reference_url:
        load = subprocess.Popen([sys.executable, "-m", "runbook.expectations.week4.load"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            load.stdin.write(json.dumps(_load_spec(ctx)))
            load.stdin.close()
            load.stdout.readline()                                   # "ready"
            time.sleep(1)                                            # the clients are all busy
            with httpx.Client(timeout=10) as client, httpx.Client(timeout=10) as beside:
                client.get(server.base_url + LOOP_PROBE_PATH)        # the connections, opened once
                beside.get(reference_url)
                while len(timings) < PROBES and load.poll() is None:
                    _timed_get(client, server.base_url + LOOP_PROBE_PATH, timings)
                    _timed_get(beside, reference_url, reference)
                    time.sleep(PROBE_INTERVAL_S)
            summary = json.loads(load.stdout.readline() or "{}")
        finally:
            if load.poll() is None:
                load.wait(LOAD_SECONDS + 60)
    return timings, reference, summary.get("status", {})


@gate(NAME, checks=f"while {CLIENTS} clients run patterns, a request no route serves (the loop alone) answers "
      f"with p50 at most {P50_LIMIT_MS:.0f} ms and p99 at most {P99_LIMIT_MS:.0f} ms slower than an idle "
      f"uvicorn loop probed beside it (up to {PROBES} probes each, at least {MIN_PROBES}, on dedicated connections)",
      runs_in="Week 4 Days 3-4 (gate:async; Task 8.4)")
def async_check(ctx: RunContext) -> GateResult:
    timings, reference, statuses = _measure(ctx)
    for _ in range(ATTEMPTS - 1):
        if not over_bounds(timings, reference) and len(timings) >= MIN_PROBES:
            break
        # a busy moment of 2 shared cores, or the code (a blocked loop is over the bound every
        # time): measured again, the better one kept
        again = _measure(ctx)
        if p50_excess(*again[:2]) < p50_excess(timings, reference):
            timings, reference, statuses = again
    problems = over_bounds(timings, reference)
    if len(timings) < MIN_PROBES:
        problems.append(f"only {len(timings)} loop probes answered while the load ran (at least {MIN_PROBES})")
    bad = {s: n for s, n in statuses.items() if s != "200"}
    if bad or not statuses:
        problems.append(f"pattern runs under load answered {bad or 'nothing'}")
    measured, beside = quantiles_ms(timings), quantiles_ms(reference)
    return GateResult(
        NAME, not problems,
        f"the loop answers at most {P50_LIMIT_MS:.0f} ms (p50) and {P99_LIMIT_MS:.0f} ms (p99) slower than an "
        f"idle loop's while {CLIENTS} clients run patterns",
        observed=f"p50 {measured['p50']} ms (reference {beside['p50']}), p99 {measured['p99']} ms "
                 f"(reference {beside['p99']}) over {len(timings)} probes",
        expected=f"p50 - reference <= {P50_LIMIT_MS:.0f} ms, p99 - reference <= {P99_LIMIT_MS:.0f} ms",
        sample=[{"problem": p} for p in problems],
        details={"loop_probe_ms": measured, "reference_ms": beside,
                 "pattern_runs": statuses})

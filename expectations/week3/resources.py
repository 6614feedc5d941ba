"""Week 3 Day 5, Task 7.3: resources come back after errors, timeouts and cancellations.

The API's own account (`GET /health/resources`, operator: open fds, threads, asyncio tasks, the
database pool's size and connections in use) is read before and after a bounded load of a few
hundred requests: normal pattern runs, client errors (401, 404, 405, 422), runs of the pattern
that calls Polygon while Polygon is slowed past its timeout (504), the same runs cancelled
through the API (409) and abandoned by their client (a hang-up). It is cross-checked from
outside: the process's fds and threads (psutil, for a managed API), its database sessions
(pg_stat_activity, application_name `dawsos-api`; a managed API's by its own client ports) and
the stand-in's in-flight requests. The baseline is taken after a warm-up of normal runs at the
load's concurrency (the pool and thread pools at working size); after the load the figures
get SETTLE_S to come back within TOLERANCE (database connections: none left in use, no session
the pool does not hold). A probe that never fired (no 504, no 409, no hang-up) fails the gate."""
from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psutil

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.expectations.smoke import declared_inputs, load_pattern, sample_inputs
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.target import DAWSOS
from runbook.tasks.target.deploy import api, upstream

NAME = "week3:resources"
RESOURCES_ROUTE = "/health/resources"
APPLICATION_NAME = "dawsos-api"
NEWS_PATTERN, NEWS_PROVIDER, NORMAL_PATTERN = "news_impact_analysis", "polygon", "portfolio_overview"
DEFAULT_TIMEOUT_S = 30          # PATTERN_TIMEOUT_S, the target's documented default
MAX_TIMEOUT_S = 10              # a longer news timeout cannot be driven within the bounded load
CONCURRENCY = 8
SETTLE_S = 10.0
SLOWED_MS = 90_000
INFLIGHT_S = 2.0        # a run that answered (timed out, cancelled) has closed its provider requests
# how far above the baseline a figure may still be after SETTLE_S: a few fds/threads/tasks of
# the runtime's own (a keep-alive socket, a worker thread about to retire), never one per
# request; connections the pool grew by are allowed as fds, every session must be the pool's
TOLERANCE = {"open_fds": 6, "threads": 3, "asyncio_tasks": 3}


@dataclass
class Figures:
    endpoint: dict          # what GET /health/resources answers
    process: dict | None    # psutil's view of a managed API's process
    sessions: int           # the API's database sessions in pg_stat_activity

    def flat(self) -> dict:
        pool = self.endpoint.get("db_connections") or {}
        return {"open_fds": self.endpoint.get("open_fds"), "threads": self.endpoint.get("threads"),
                "asyncio_tasks": self.endpoint.get("asyncio_tasks"), "pool_size": pool.get("pool_size"),
                "in_use": pool.get("in_use"), "sessions": self.sessions,
                **({f"process_{k}": v for k, v in self.process.items()} if self.process else {})}


class Probe:
    """The API under load: its endpoint, its process (managed) and its database sessions."""

    def __init__(self, ctx: RunContext, client: httpx.Client):
        self.ctx, self.client, self.server = ctx, client, api(ctx)
        self.base_url, self.headers = self.server.base_url, self.server.headers()
        self.proc = psutil.Process(self.server.proc.pid) if self.server.managed and self.server.proc else None
        self.db_port = urlsplit(ctx.database_url).port or 5432

    def endpoint(self) -> dict:
        r = self.client.get(self.base_url + RESOURCES_ROUTE, headers=self.headers)
        if r.status_code != 200:
            raise RunbookError(f"GET {RESOURCES_ROUTE} answered HTTP {r.status_code}: {r.text[:120]}")
        body = r.json()
        missing = [k for k in ("open_fds", "threads", "asyncio_tasks") if not isinstance(body.get(k), int)]
        pool = body.get("db_connections")
        if not isinstance(pool, dict) or not all(isinstance(pool.get(k), int) for k in ("pool_size", "in_use")):
            missing.append("db_connections.pool_size/in_use")
        if missing:
            raise RunbookError(f"GET {RESOURCES_ROUTE} lacks {', '.join(missing)}: {json.dumps(body)[:160]}")
        return body

    def client_ports(self) -> list[int] | None:
        if self.proc is None:
            return None
        return [c.laddr.port for c in self.proc.net_connections(kind="tcp")
                if c.raddr and c.raddr.port == self.db_port]

    def sessions(self) -> int:
        # no TCP connection to the server: a unix socket (client_port says nothing), the name alone
        ports = self.client_ports() or None
        with connect(self.ctx.database_url) as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()"
                " AND (%s::int[] IS NULL OR client_port = ANY(%s::int[]))",
                (APPLICATION_NAME, ports, ports)).fetchone()[0]

    def figures(self) -> Figures:
        process = {"fds": self.proc.num_fds(), "threads": self.proc.num_threads()} if self.proc else None
        return Figures(self.endpoint(), process, self.sessions())


def leftovers(base: Figures, now: Figures, inflight: dict[str, int]) -> list[dict]:
    """What is still above the baseline (beyond tolerance)."""
    b, n = base.flat(), now.flat()
    grown = max(0, (n["pool_size"] or 0) - (b["pool_size"] or 0))     # connections the pool opened
    limits = {"open_fds": b["open_fds"] + TOLERANCE["open_fds"] + grown,
              "threads": b["threads"] + TOLERANCE["threads"],
              "asyncio_tasks": b["asyncio_tasks"] + TOLERANCE["asyncio_tasks"],
              "in_use": b["in_use"],
              "sessions": max(b["sessions"], n["pool_size"] or 0)}
    if now.process:
        limits.update(process_fds=b["process_fds"] + TOLERANCE["open_fds"] + grown,
                      process_threads=b["process_threads"] + TOLERANCE["threads"])
    out = [{"figure": k, "baseline": b[k], "after": n[k], "limit": limit, "problem": "above its limit"}
           for k, limit in limits.items() if n[k] is None or n[k] > limit]
    out += [{"figure": f"stand-in in flight: {p}", "baseline": 0, "after": c, "limit": 0,
             "problem": "provider requests never closed"} for p, c in inflight.items() if c]
    return out


def news_timeout_s(ctx: RunContext) -> float:
    spec = load_pattern(ctx.deploy_dir, NEWS_PATTERN)
    return float(spec.get("timeout_s") or DEFAULT_TIMEOUT_S)


class Load:
    """The bounded mixed load; `answers` counts what came back, by kind and status."""

    def __init__(self, probe: Probe, inputs: dict, timeout_s: float):
        self.probe, self.inputs, self.timeout_s = probe, inputs, timeout_s
        self.normal_inputs = declared_inputs(load_pattern(probe.ctx.deploy_dir, NORMAL_PATTERN), inputs)
        self.answers: Counter = Counter()

    def _execute(self, pattern: str, inputs: dict, headers: dict, timeout: float | None = None) -> int | str:
        try:
            r = self.probe.client.post(self.probe.base_url + DAWSOS.execute_route.format(pattern_id=pattern),
                                       json={"inputs": inputs}, headers=headers,
                                       timeout=timeout or self.timeout_s + 15)
            return r.status_code
        except httpx.TimeoutException:
            return "client hung up"

    def normal(self) -> int | str:
        return self._execute(NORMAL_PATTERN, self.normal_inputs, self.probe.headers)

    def news(self) -> int | str:
        return self._execute(NEWS_PATTERN, {"portfolio_id": self.inputs["portfolio_id"]}, self.probe.headers)

    def abandoned(self) -> int | str:
        return self._execute(NEWS_PATTERN, {"portfolio_id": self.inputs["portfolio_id"]}, self.probe.headers, 0.5)

    def cancelled(self) -> int | str:
        run_id = str(uuid.uuid4())
        with ThreadPoolExecutor(1) as one:
            call = one.submit(self._execute, NEWS_PATTERN, {"portfolio_id": self.inputs["portfolio_id"]},
                              {**self.probe.headers, "X-Run-Id": run_id})
            time.sleep(0.5)
            self.probe.client.post(f"{self.probe.base_url}/api/runs/{run_id}/cancel", headers=self.probe.headers)
            return call.result()

    def client_errors(self) -> list[Callable[[], int | str]]:
        c, url, h = self.probe.client, self.probe.base_url, self.probe.headers
        return [lambda: c.get(f"{url}/api/patterns").status_code,                                 # 401
                lambda: self._execute("runbook_probe_no_such_pattern", self.inputs, h),            # 404
                lambda: self._execute(NORMAL_PATTERN, {"portfolio_id": "not-a-uuid"}, h),          # 422
                lambda: c.delete(f"{url}/api/patterns", headers=h).status_code,                     # 405
                lambda: c.get(f"{url}/runbook-probe-no-such-path", headers=h).status_code]          # 404

    def run(self, kind: str, calls: list[Callable[[], int | str]]) -> None:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            for status in pool.map(lambda call: call(), calls):
                self.answers[(kind, status)] += 1

    def drive(self) -> None:
        """~300 requests; then, with Polygon slowed past the news timeout, runs abandoned by
        their client, cancelled through the API, and timed out (last: their provider requests
        must be closed as soon as they answer)."""
        self.run("normal and client errors", [self.normal, *self.client_errors()] * 42)      # 252
        control = upstream(self.probe.ctx)
        # slowed well past the load and its settle time: work a timeout or a cancellation left
        # running still holds its provider request (and its task) when the figures are read
        control.set_fault(NEWS_PROVIDER, latency_ms=SLOWED_MS)
        try:
            self.run("abandoned", [self.abandoned] * 16)
            self.run("cancelled", [self.cancelled] * 16)
            self.run("timed out", [self.news] * 16)
        finally:
            control.heal(NEWS_PROVIDER)

    def unfired(self) -> list[str]:
        wanted = {"cancelled": 409, "abandoned": "client hung up", "timed out": 504,
                  "normal and client errors": 200, "warm-up": 200}
        return [f"{kind}: no run answered {status}" for kind, status in wanted.items()
                if not self.answers[(kind, status)]]


def provider_requests_closed(control) -> dict[str, int]:
    """The stand-in's requests still open INFLIGHT_S after every run answered ({} when none)."""
    deadline = time.monotonic() + INFLIGHT_S
    while True:
        open_now = {p: n for p, n in control.inflight().items() if n}
        if not open_now or time.monotonic() > deadline:
            return open_now
        time.sleep(0.2)


def settle(probe: Probe, base: Figures, control) -> tuple[Figures, list[dict]]:
    deadline = time.monotonic() + SETTLE_S
    while True:
        now = probe.figures()
        left = leftovers(base, now, control.inflight())
        if not left or time.monotonic() > deadline:
            return now, left
        time.sleep(0.5)


@gate(NAME, checks=f"GET {RESOURCES_ROUTE} (open fds, threads, asyncio tasks, pool size / in use) answers; "
      "after ~300 requests (normal runs, 401/404/405/422, runs timed out by a slowed provider, cancelled "
      "through the API, abandoned by their client) the figures return within tolerance of a warmed-up "
      f"baseline within {SETTLE_S:g} s, cross-checked by psutil (fds, threads), pg_stat_activity "
      f"(application_name {APPLICATION_NAME}) and the stand-in's in-flight count; each probe fired",
      runs_in="Week 3 Day 5 (gate:resources)")
def resources_check(ctx: RunContext) -> GateResult:
    problems: list[dict] = []
    details: dict = {"tolerance": TOLERANCE, "settle_s": SETTLE_S}

    def result(observed) -> GateResult:
        return GateResult(NAME, passed=not problems,
                          expectation=f"fds, threads, asyncio tasks and database connections back to their "
                                      f"baseline (tolerance {TOLERANCE}, none in use) within {SETTLE_S:g} s "
                                      "after a mixed load of errors, timeouts and cancellations",
                          observed=observed, expected="0 left over, every probe fired", sample=problems[:20],
                          details=details)

    with httpx.Client(timeout=60) as client:
        try:
            probe = Probe(ctx, client)
            probe.endpoint()
            timeout_s = news_timeout_s(ctx)
            if timeout_s > MAX_TIMEOUT_S:
                raise RunbookError(f"{NEWS_PATTERN} runs under a {timeout_s:g} s timeout: above {MAX_TIMEOUT_S} s "
                                   "its timeouts cannot be driven within the gate's bounded load")
            control = upstream(ctx)
            control.heal(NEWS_PROVIDER)
            if not probe.sessions():
                raise RunbookError(f"no database session of the API carries application_name {APPLICATION_NAME!r}")
            load = Load(probe, sample_inputs(ctx.database_url), timeout_s)
            load.run("warm-up", [load.normal] * CONCURRENCY * 3)
            base = probe.figures()
            started = time.monotonic()
            load.drive()
            still_open = provider_requests_closed(control)
            now, left = settle(probe, base, control)
        except (RunbookError, httpx.HTTPError, psutil.Error, ValueError) as exc:
            problems.append({"figure": "-", "baseline": None, "after": None, "limit": None,
                             "problem": f"not measured: {exc}"[:300]})
            return result("nothing measured")
    details.update(baseline=base.flat(), after=now.flat(), load_s=round(time.monotonic() - started, 1),
                   answers={f"{k} -> {s}": n for (k, s), n in sorted(load.answers.items(), key=str)})
    problems += [{"figure": f"stand-in in flight: {p}", "baseline": 0, "after": n, "limit": 0,
                  "problem": f"provider requests still open {INFLIGHT_S:g} s after every run answered"}
                 for p, n in still_open.items()]
    problems += left
    problems += [{"figure": "probe", "baseline": None, "after": None, "limit": None, "problem": p}
                 for p in load.unfired()]
    return result(f"{len(problems)} problems ({len(left)} figures above baseline, {len(still_open)} providers "
                  f"with requests left open); {sum(load.answers.values())} requests")

"""Week 4 Days 3-4, Task 8.2: pattern results cached in Redis, per user, for the pattern's TTL.

On a probe API (the deployed code, the run's Redis, a default TTL of a few seconds, probe
patterns copied from a shipped one with `cache_ttl_s` 1 and 0):
- every shipped pattern run twice by one user: the second is a hit (`X-Cache`) whose `data` is
  identical to the miss that filled it, and `dawsos_pattern_cache_total` counts the hits;
- another user (another `sub`, the same role) asking the same is never served the first's
  result (a miss);
- the TTL comes from the pattern's JSON: past 1 s a miss again; 0 never hit;
- a write that changes the portfolio (a lot the gate owns, created and removed by it) is served
  once the TTL has passed, never the stale result;
and on a probe API whose REDIS_URL points at a closed port, patterns still answer 200, uncached."""
from __future__ import annotations

import time

import httpx

from runbook.context import RunContext
from runbook.expectations.api_routes import create_smoke_lot, remove_smoke_lot
from runbook.expectations.smoke import load_pattern, pattern_ids, sample_inputs
from runbook.expectations.week3.probe import probe_api
from runbook.expectations.week4.metrics import Scrape, moved
from runbook.expectations.week4.runs import CACHE_HEADER, fresh_user, run_as
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.tasks.target.api_server import free_port
from runbook.tasks.target.deploy import REDIS_URL_SETTING, ensure_deployed

NAME = "week4:cache"
CACHE_TOTAL = "dawsos_pattern_cache_total"
DEFAULT_TTL_S = 5           # PATTERN_CACHE_TTL_S of the probe API: long enough for a repeat
SHORT_TTL_S = 1
TTL_PATTERN, NEVER_PATTERN = "rb_cache_ttl_probe", "rb_cache_never_probe"
TEMPLATE_PATTERN = "portfolio_overview"     # holds the portfolio's lots: a new lot changes it


def _probe_patterns(ctx: RunContext) -> dict[str, dict]:
    """Copies of a shipped pattern with their own cache_ttl_s (read from the deployed commit)."""
    base = {k: v for k, v in load_pattern(ensure_deployed(ctx), TEMPLATE_PATTERN).items() if k != "id"}
    return {TTL_PATTERN: {**base, "cache_ttl_s": SHORT_TTL_S}, NEVER_PATTERN: {**base, "cache_ttl_s": 0}}


class _Seen:
    def __init__(self):
        self.problems: list[dict] = []
        self.answers: list[dict] = []

    def run(self, client, server, pid, inputs, sub, what) -> httpx.Response:
        r = run_as(client, server, pid, inputs, sub)
        self.answers.append({"pattern": pid, "what": what, "status": r.status_code,
                             "x_cache": r.headers.get(CACHE_HEADER)})
        if r.status_code != 200:
            self.fail(pid, what, f"answered HTTP {r.status_code}")
        return r

    def fail(self, pid, what, problem) -> None:
        self.problems.append({"pattern": pid, "what": what, "problem": problem})

    def expect(self, r: httpx.Response, pid: str, what: str, allowed: set[str]) -> None:
        got = r.headers.get(CACHE_HEADER)
        if got not in allowed:
            self.fail(pid, what, f"X-Cache {got!r}, expected {' or '.join(sorted(allowed))}")


def data(r: httpx.Response):
    try:
        return r.json().get("data")
    except ValueError:
        return None


def _scoped_and_repeated(seen: _Seen, client, server, inputs) -> int:
    """Every shipped pattern twice by one user, then once by another; the hits seen."""
    alice, bob, hits = fresh_user("cache-a"), fresh_user("cache-b"), 0
    for pid in pattern_ids(server.checkout):
        never = load_pattern(server.checkout, pid).get("cache_ttl_s") == 0
        first = seen.run(client, server, pid, inputs, alice, "first run")
        again = seen.run(client, server, pid, inputs, alice, "same user, same inputs")
        other = seen.run(client, server, pid, inputs, bob, "another user, same role")
        seen.expect(first, pid, "first run", {"miss", "bypass"} if never else {"miss"})
        seen.expect(other, pid, "another user, same role", {"miss", "bypass"} if never else {"miss"})
        if never:
            seen.expect(again, pid, "same user, same inputs", {"miss", "bypass"})
            continue
        seen.expect(again, pid, "same user, same inputs", {"hit"})
        hits += again.headers.get(CACHE_HEADER) == "hit"
        if again.status_code == 200 and data(again) != data(first):
            seen.fail(pid, "same user, same inputs", "the hit's data differs from the miss that filled it")
    return hits


def _ttl_and_writes(seen: _Seen, client, server, ctx: RunContext, inputs) -> None:
    user = fresh_user("cache-ttl")
    first = seen.run(client, server, TTL_PATTERN, inputs, user, "first run")
    seen.expect(seen.run(client, server, TTL_PATTERN, inputs, user, "within its TTL"), TTL_PATTERN,
                "within its TTL", {"hit"})
    lot = create_smoke_lot(ctx.database_url, inputs["portfolio_id"])   # the portfolio changes
    try:
        time.sleep(SHORT_TTL_S + 0.5)
        later = seen.run(client, server, TTL_PATTERN, inputs, user, "past its TTL, after a write")
        seen.expect(later, TTL_PATTERN, "past its TTL, after a write", {"miss"})
        if later.status_code == 200 and data(later) == data(first):
            seen.fail(TTL_PATTERN, "past its TTL, after a write", "served the result from before the write")
    finally:
        remove_smoke_lot(ctx.database_url, lot)
    for what in ("first run", "again"):
        seen.expect(seen.run(client, server, NEVER_PATTERN, inputs, user, what), NEVER_PATTERN, what,
                    {"miss", "bypass"})


def _redis_down(seen: _Seen, ctx: RunContext, inputs) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with probe_api(ctx, environment={REDIS_URL_SETTING: closed}) as server, httpx.Client(timeout=60) as client:
        user = fresh_user("cache-down")
        for what in ("Redis down", "Redis down, again"):
            r = seen.run(client, server, TEMPLATE_PATTERN, inputs, user, what)
            seen.expect(r, TEMPLATE_PATTERN, what, {"bypass"})


@gate(NAME, checks="a repeated run by the same user is a hit (X-Cache, dawsos_pattern_cache_total) with "
      "identical data; another user is never served it; TTL from the pattern's JSON (past it, and after a "
      "write, a miss with fresh data; 0 never cached); with Redis unreachable patterns answer 200 uncached",
      runs_in="Week 4 Days 3-4 (gate:cache; Task 8.2)")
def cache_check(ctx: RunContext) -> GateResult:
    seen, inputs = _Seen(), sample_inputs(ctx.database_url)
    with probe_api(ctx, _probe_patterns(ctx), {"PATTERN_CACHE_TTL_S": str(DEFAULT_TTL_S)}) as server, \
            httpx.Client(timeout=60) as client:
        before = Scrape(client, server.base_url, server.headers())
        hits = _scoped_and_repeated(seen, client, server, inputs)
        _ttl_and_writes(seen, client, server, ctx, inputs)
        after = Scrape(client, server.base_url, server.headers())
    counted = {result: moved(before, after, CACHE_TOTAL, result=result) for result in ("hit", "miss")}
    if before.error or after.error:
        seen.fail("-", "/metrics", before.error or after.error)
    elif counted["hit"] < hits or counted["miss"] <= 0:
        seen.fail("-", "/metrics", f"{CACHE_TOTAL} counted {counted} while the gate saw {hits} hits and misses")
    _redis_down(seen, ctx, inputs)
    return GateResult(
        NAME, not seen.problems,
        "repeated runs are cache hits with identical data, scoped to the user, expiring with the "
        "pattern's TTL; Redis down means uncached, never an error",
        observed=f"{len(seen.problems)} problems in {len(seen.answers)} runs", expected="0 problems",
        sample=seen.problems[:10], details={"answers": seen.answers, "cache_counted": counted})

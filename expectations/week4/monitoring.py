"""Week 4 Days 3-4, Task 8.3: monitoring. /metrics (parsed with prometheus_client's parser) has
the request-latency histogram by route and pattern, the cache and upstream-call counters and the
statements per pattern, and they move as the gate drives traffic; statements slower than
SLOW_QUERY_MS are logged as JSON lines without their parameters.

A probe API with SLOW_QUERY_MS=0 (every statement is slow) runs every pattern once; its /metrics
before and after, and its log, are read."""
from __future__ import annotations

import json

import httpx

from runbook.context import RunContext
from runbook.expectations.smoke import pattern_ids, sample_inputs
from runbook.expectations.week3.probe import probe_api
from runbook.expectations.week4.metrics import Scrape, moved
from runbook.expectations.week4.runs import fresh_user, run_as
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.target import DAWSOS
from runbook.tasks.target.deploy import upstream

NAME = "week4:monitoring"
HISTOGRAM = "dawsos_request_duration_seconds"
COUNTERS = ("dawsos_pattern_cache_total", "dawsos_upstream_requests_total", "dawsos_db_queries_total")
SLOW_QUERY_FIELDS = ("duration_ms", "statement_id", "pattern_id")


def slow_query_lines(log_text: str) -> list[dict]:
    records = []
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "slow_query":
            records.append(record)
    return records


def slow_query_problems(records: list[dict], parameters: list[str]) -> list[str]:
    """What is wrong with the slow-query lines: none, a field missing, a parameter shown."""
    if not records:
        return ["no slow_query line in the log with SLOW_QUERY_MS=0"]
    out = []
    for record in records:
        missing = [f for f in SLOW_QUERY_FIELDS if f not in record]
        if missing or not isinstance(record.get("duration_ms"), (int, float)):
            out.append(f"slow_query line without {', '.join(missing) or 'a numeric duration_ms'}")
        shown = [p for p in parameters if p in json.dumps(record)]
        if shown:
            out.append("slow_query line shows a statement's parameter (the run's input)")
    return sorted(set(out))


@gate(NAME, checks="/metrics has the latency histogram by route and pattern, the cache, upstream and "
      "statement counters, and they move with traffic; slow statements are logged as JSON with "
      "duration_ms and statement_id, never their parameters",
      runs_in="Week 4 Days 3-4 (gate:monitoring; Task 8.3)")
def monitoring_check(ctx: RunContext) -> GateResult:
    inputs, problems = sample_inputs(ctx.database_url), []
    control = upstream(ctx)
    control.clear_log()
    with probe_api(ctx, environment={"SLOW_QUERY_MS": "0"}) as server, httpx.Client(timeout=60) as client:
        before = Scrape(client, server.base_url, server.headers())
        user, ran = fresh_user("metrics"), pattern_ids(server.checkout)
        statuses = {pid: run_as(client, server, pid, inputs, user).status_code for pid in ran}
        after = Scrape(client, server.base_url, server.headers())
        log_text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
    upstream_calls = len(control.log())
    problems += [f"{pid} answered HTTP {status}" for pid, status in statuses.items() if status != 200]
    route = DAWSOS.execute_route.split(" ", 1)[-1]
    if after.error:
        problems.append(after.error)
    else:
        if after.types.get(HISTOGRAM) != "histogram":
            problems.append(f"{HISTOGRAM} is not a histogram ({after.types.get(HISTOGRAM)})")
        unmoved = [pid for pid in ran if moved(before, after, f"{HISTOGRAM}_count", route=route, pattern=pid) < 1]
        if unmoved:
            problems.append(f"{HISTOGRAM}_count{{route={route!r}}} did not move for {', '.join(unmoved[:5])}")
        for counter in COUNTERS:
            if counter == "dawsos_upstream_requests_total" and not upstream_calls:
                problems.append("no pattern called a provider: the upstream counter was never exercised")
            elif moved(before, after, counter) <= 0:
                problems.append(f"{counter} did not move while {len(ran)} patterns ran")
    params = [v for v in inputs.values() if v]
    problems += slow_query_problems(slow_query_lines(log_text), params)
    return GateResult(
        NAME, not problems,
        "the request histogram, cache, upstream and statement counters move with traffic; slow "
        "statements logged as JSON without parameters",
        observed=f"{len(problems)} problems", expected="0 problems",
        sample=[{"problem": p[:300]} for p in problems[:10]],
        details={"families": sorted(after.types), "upstream_calls": upstream_calls,
                 "slow_query_lines": len(slow_query_lines(log_text))})

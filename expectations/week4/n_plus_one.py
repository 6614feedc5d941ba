"""Week 4 Days 3-4, Task 8.1: no N+1 queries. For every pattern, the number of SQL statements
one run executes does not grow with the size of the portfolio (batch loading).

A probe API on the deployed code is pointed at its database through a statement counter (a
wire-protocol relay, statement_counter.py), so the count is read the same way before and after
the change set. Each pattern runs on the portfolio with the most open lots and on a copy of it
holding one of them (the gate's own rows, removed afterwards), each as a user nobody used
before (no cache hit); after a warm-up run, the fewest statements of two runs counts. Where
/metrics has `dawsos_db_queries_total`, its per-pattern figure must not grow either (the
target's own count, cross-checked)."""
from __future__ import annotations

import dataclasses

import httpx

from runbook.context import RunContext
from runbook.expectations.smoke import pattern_ids
from runbook.expectations.week3.probe import probe_api
from runbook.expectations.week4.metrics import Scrape, moved
from runbook.expectations.week4.runs import fresh_user, largest_portfolio, one_lot_copy, run_as
from runbook.expectations.week4.statement_counter import StatementCounter
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.tasks.target.deploy import api

NAME = "week4:n-plus-one"
DB_QUERIES = "dawsos_db_queries_total"
MEASURED_RUNS = 2


def _count(client, server, counter: StatementCounter, pid: str, inputs: dict) -> tuple[int | None, float, int]:
    """Statements of one run on the wire, its dawsos_db_queries_total delta, and its status."""
    before_metric = Scrape(client, server.base_url, server.headers())
    before_wire = counter.settled()
    r = run_as(client, server, pid, inputs, fresh_user("n1"))
    wire = counter.settled() - before_wire
    after_metric = Scrape(client, server.base_url, server.headers())
    metric = moved(before_metric, after_metric, DB_QUERIES, pattern=pid) \
        if not (before_metric.error or after_metric.error) else None
    return wire, metric, r.status_code


def publish(rows: list[dict]) -> None:
    from prefect.artifacts import create_table_artifact
    try:
        create_table_artifact(key="week4-statements-per-run", table=rows,
                              description="SQL statements one pattern run executes, small vs large portfolio")
    except Exception:  # outside a run there is nowhere to publish
        pass


@gate(NAME, checks="for every pattern, the SQL statements one run executes (counted on the wire, and "
      "dawsos_db_queries_total where /metrics has it) do not grow from a one-lot copy of "
      "the portfolio with the most open lots to that portfolio",
      runs_in="Week 4 Days 3-4 (gate:n-plus-one; Task 8.1)")
def n_plus_one_check(ctx: RunContext) -> GateResult:
    api(ctx)                                   # the environment's API, before its URL is swapped
    large = largest_portfolio(ctx.database_url)
    rows, problems = [], []
    with one_lot_copy(ctx.database_url, large) as small, StatementCounter(ctx.database_url) as counter, \
            probe_api(dataclasses.replace(ctx, database_url=counter.url)) as server, \
            httpx.Client(timeout=60) as client:
        sizes = {"small": small, "large": large}
        metrics_there = not Scrape(client, server.base_url, server.headers()).error
        for pid in pattern_ids(server.checkout):
            row = {"pattern": pid}
            for size, portfolio in sizes.items():
                _count(client, server, counter, pid, portfolio["inputs"])      # warm-up
                runs = [_count(client, server, counter, pid, portfolio["inputs"]) for _ in range(MEASURED_RUNS)]
                statuses = sorted({status for _w, _m, status in runs})
                row[f"{size}_statements"] = min(w for w, _m, _s in runs)
                row[f"{size}_db_queries_total"] = min(m for _w, m, _s in runs) if metrics_there else None
                if statuses != [200]:
                    problems.append({"pattern": pid, "problem": f"answered HTTP {statuses} on the {size} portfolio"})
            rows.append(row)
            if row["large_statements"] > row["small_statements"]:
                problems.append({"pattern": pid, "problem": f"statements grow with the portfolio: "
                                 f"{row['small_statements']} -> {row['large_statements']}"})
            if metrics_there and row["large_db_queries_total"] > row["small_db_queries_total"]:
                problems.append({"pattern": pid, "problem": f"{DB_QUERIES} grows with the portfolio: "
                                 f"{row['small_db_queries_total']} -> {row['large_db_queries_total']}"})
        if counter.encrypted or not counter.connections:
            problems.insert(0, {"pattern": "-", "problem": "no statement could be counted: the API "
                                + ("negotiated TLS with the database" if counter.encrypted
                                   else "never connected through the counter")})
        elif not any(r["small_statements"] or r["large_statements"] for r in rows):
            problems.insert(0, {"pattern": "-", "problem": "no pattern run executed any statement"})
    publish(rows)
    return GateResult(
        NAME, not problems,
        "for every pattern the statements one run executes do not grow with the portfolio "
        f"({sizes['small']['open_lots']} vs {sizes['large']['open_lots']} open lots)",
        observed=f"{len(problems)} problems", expected="0 problems", sample=problems[:10],
        details={"statements_per_run": rows, "open_lots": {s: p["open_lots"] for s, p in sizes.items()},
                 "metrics": metrics_there})

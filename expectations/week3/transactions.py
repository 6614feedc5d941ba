"""Gate of Week 3 Task 6.2: a writing pattern whose step N fails leaves no partial state.

The probe pattern (served by a probe API) writes in step 1 (`refresh_prices`: FMP closes of a
probe day far in the past, into that day's pricing pack) and calls Polygon in step 2
(`fetch_provider_news`). Judged on the probe day's rows only — the application may write
other days meanwhile:
- Polygon healthy: the run succeeds and the probe day has rows (the probe is not vacuous: a
  step 1 that writes shows); they are then deleted;
- Polygon answering 500: the run fails, step 1 did run (its FMP call is in the stand-in's log),
  and no row of the probe day exists.
The stand-in is healed and the probe day's rows deleted whatever happens.
"""
from __future__ import annotations

import time

from runbook.context import RunContext
from runbook.expectations.week3.calls import PROBE_IDS, PROBE_INPUTS, execute, verdict
from runbook.expectations.week3.probe import probe_api
from runbook.expectations.week3.probe_prices import price_calls, probe_day, remove_rows, rows_of
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.tasks.target.deploy import upstream

NAME = "week3:transactions"
PATTERN = PROBE_IDS[0]
FAILING_PROVIDER = "polygon"


@gate(NAME, checks="a writing pattern whose step 2 fails (Polygon forced to 500 at the stand-in) "
      "leaves no row of its step 1 (the probe day's pricing pack and prices), after its step 1 "
      "was seen to run; with Polygon healthy the same probe writes its rows (then deleted)",
      runs_in="Week 3 Days 3-4 (gate:transactions)")
def transactions_gate(ctx: RunContext) -> GateResult:
    problems: list[dict] = []
    observed: dict = {}
    expectation = ("a run failing at step 2 leaves no row its step 1 wrote; the same run with the "
                   "provider healthy writes them")
    stand_in = upstream(ctx)
    probe = probe_day(ctx.database_url)
    observed["probe_day"] = probe.day.isoformat()
    spec = {"name": "runbook probe: write then fail", "inputs": PROBE_INPUTS, "steps": [
        probe.refresh_step(),
        {"id": "news", "capability": "data_harvester.fetch_provider_news", "as": "news",
         "args": {"symbol": probe.symbols[0], "limit": 1}}]}
    try:
        with probe_api(ctx, {PATTERN: spec}) as server:
            healthy = execute(server, PATTERN, probe.portfolio_id)
            rows = rows_of(ctx.database_url, probe.day)
            observed["provider healthy"] = {"status": healthy.status, "rows": rows}
            if healthy.status != 200 or not rows["prices"]:
                problems.append({"run": "provider healthy", "problem": f"the probe wrote nothing "
                                 f"({healthy.short()}, rows {rows}): it cannot show a rollback"})
            remove_rows(ctx.database_url, probe.day)

            stand_in.set_fault(FAILING_PROVIDER, status=500)
            since = time.time()
            failed = execute(server, PATTERN, probe.portfolio_id)
            rows = rows_of(ctx.database_url, probe.day)
            step1 = price_calls(stand_in.log(), since)
            step2 = [e for e in stand_in.log(FAILING_PROVIDER) if e["started"] >= since]
            observed[f"{FAILING_PROVIDER} 500"] = {"status": failed.status, "rows": rows,
                                                    "fmp_calls": len(step1), "polygon_calls": len(step2)}
            if failed.status < 400:
                problems.append({"run": f"{FAILING_PROVIDER} 500", "problem": f"the run did not fail: {failed.short()}"})
            if not step1 or not step2:
                problems.append({"run": f"{FAILING_PROVIDER} 500", "problem": f"step 1 ({len(step1)} FMP calls) "
                                 f"or step 2 ({len(step2)} Polygon calls) never reached the provider: the "
                                 "fault was not injected after a write"})
            if any(rows.values()):
                problems.append({"run": f"{FAILING_PROVIDER} 500", "problem": f"partial state left: probe-day rows {rows}"})
    except Exception as exc:  # noqa: BLE001 - a probe that could not run fails the gate, named
        problems.append({"run": "-", "problem": f"{type(exc).__name__}: {str(exc)[:200]}"})
    finally:
        stand_in.heal(FAILING_PROVIDER)
        remove_rows(ctx.database_url, probe.day)
    return verdict(NAME, expectation, problems, observed)

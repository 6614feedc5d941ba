"""Gate of Week 3 Task 6.1: a pattern with a critical error is refused before any step runs.

Black-box, on the contract of docs/change_sets.md:
- `POST /api/patterns/validate` lists the probe's two critical errors (an unknown capability,
  a template reading a step output no earlier step produces) with their codes and steps;
- executing that pattern (served by a probe API) answers 422 `pattern_invalid` with the errors
  in `details.errors`, and no step ran: its first step is a valid writing step
  (`refresh_prices` on a probe day far in the past), so a run that started would leave rows of
  that day and an FMP call in the stand-in's log — there must be neither;
- the canary proves the probe can see a step run: the same first step alone, executed, writes
  its rows and calls FMP (rows removed afterwards);
- warnings never block: a spec with only warnings validates `valid: true` with warnings listed
  and executes (no 422);
- every shipped pattern of the deployed code validates with no error.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

from runbook.context import RunContext
from runbook.expectations.smoke import load_pattern, pattern_ids
from runbook.expectations.week3.calls import (
    PROBE_IDS,
    PROBE_INPUTS,
    Answer,
    call,
    error_details,
    execute,
    verdict,
)
from runbook.expectations.week3.probe import error_code, probe_api
from runbook.expectations.week3.probe_prices import (
    ProbeDay,
    price_calls,
    probe_day,
    remove_rows,
    rows_of,
)
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.tasks.target.api_server import ApiServer
from runbook.tasks.target.deploy import api, ensure_deployed, upstream

NAME = "week3:blocking-validation"
VALIDATE_ROUTE = "/api/patterns/validate"
INVALID, CANARY, WARNED = PROBE_IDS
# what the invalid probe's validation must list: (code, step)
CRITICAL = {("unknown_capability", "unknown_capability"), ("undefined_reference", "undefined_reference")}


def invalid_spec(probe: ProbeDay) -> dict:
    """A valid writing first step, then one step per critical error (named after its code)."""
    return {"name": "runbook probe: critical errors", "inputs": PROBE_INPUTS, "steps": [
        probe.refresh_step(),
        {"id": "unknown_capability", "capability": "data_harvester.runbook_probe_no_such_capability",
         "args": {}, "as": "unknown_capability"},
        {"id": "undefined_reference", "capability": "data_harvester.fetch_provider_news",
         "args": {"symbol": "{{runbook_probe_never_produced.symbol}}", "limit": 1},
         "as": "undefined_reference"},
    ]}


def warned_spec(probe: ProbeDay) -> dict:
    """Warnings, no critical error: two steps write one output name, and `outputs` lists one
    that no step produces (neither changes what runs)."""
    news = {"capability": "data_harvester.fetch_provider_news", "as": "news",
            "args": {"symbol": probe.symbols[0], "limit": 1}}
    return {"name": "runbook probe: warnings only", "inputs": PROBE_INPUTS,
            "steps": [{"id": "news", **news}, {"id": "news_again", **news}],
            "outputs": ["news", "runbook_probe_never_produced"]}


def _validate(server: ApiServer, spec: dict) -> Answer:
    return call(server, "POST", VALIDATE_ROUTE, {"spec": spec})


def _validation_problems(what: str, answer: Answer) -> list[dict]:
    """Why a validate answer is not the documented shape."""
    body = answer.body
    if answer.status != 200:
        return [{"probe": what, "problem": f"{VALIDATE_ROUTE}: {answer.short()}"}]
    if not (isinstance(body, dict) and isinstance(body.get("valid"), bool)
            and isinstance(body.get("errors"), list) and isinstance(body.get("warnings"), list)):
        return [{"probe": what, "problem": f"not {{valid, errors, warnings}}: {str(body)[:200]}"}]
    return []


def _listed(errors: object) -> set[tuple[str, str]]:
    return {(e.get("code"), e.get("step")) for e in errors or [] if isinstance(e, dict)}


def _check_validate_route(server: ApiServer, probe: ProbeDay, problems: list[dict]) -> None:
    answer = _validate(server, invalid_spec(probe))
    if shape := _validation_problems("critical errors", answer):
        problems += shape
        return
    missing = CRITICAL - _listed(answer.body["errors"])
    if answer.body["valid"] or missing:
        problems.append({"probe": "critical errors", "problem": f"valid={answer.body['valid']}, "
                         f"missing (code, step) {sorted(missing)}; listed {sorted(_listed(answer.body['errors']))}"})


def _check_shipped(server: ApiServer, checkout: Path, problems: list[dict]) -> int:
    ids = pattern_ids(checkout)
    for pid in ids:
        answer = _validate(server, load_pattern(checkout, pid))
        if shape := _validation_problems(pid, answer):
            problems += shape
        elif not answer.body["valid"] or answer.body["errors"]:
            problems.append({"probe": pid, "problem": f"shipped pattern invalid: {answer.body['errors'][:3]}"})
    return len(ids)


def _check_refused_before_steps(ctx: RunContext, server: ApiServer, probe: ProbeDay,
                                problems: list[dict], observed: dict) -> None:
    """Executing the invalid pattern: 422 pattern_invalid listing its errors, no step ran;
    then the canary shows a step that runs is seen (rows and FMP call)."""
    stand_in = upstream(ctx)
    since = time.time()
    answer = execute(server, INVALID, probe.portfolio_id)
    time.sleep(0.2)                           # a step still running would show by now
    observed["execute invalid"] = answer.status
    listed = _listed(error_details(answer.body).get("errors"))
    if answer.status != 422 or error_code(answer.body) != "pattern_invalid":
        problems.append({"probe": "execute invalid", "problem": f"expected 422 pattern_invalid, got {answer.short()}"})
    elif CRITICAL - listed:
        problems.append({"probe": "execute invalid", "problem": f"details.errors lack {sorted(CRITICAL - listed)}"})
    rows, calls = rows_of(ctx.database_url, probe.day), price_calls(stand_in.log(), since)
    if any(rows.values()) or calls:
        problems.append({"probe": "execute invalid", "problem": f"a step ran: probe-day rows {rows}, "
                         f"{len(calls)} FMP price call(s)"})
    since = time.time()
    canary = execute(server, CANARY, probe.portfolio_id)
    rows, calls = rows_of(ctx.database_url, probe.day), price_calls(stand_in.log(), since)
    observed["canary"] = {"status": canary.status, "rows": rows, "fmp_calls": len(calls)}
    if canary.status != 200 or not rows["prices"] or not calls:
        problems.append({"probe": "canary", "problem": f"the valid first step alone did not show as run "
                         f"({canary.short()}, rows {rows}, {len(calls)} FMP calls): the probe cannot "
                         "tell a refused pattern from one that ran"})


def _check_warnings_do_not_block(server: ApiServer, probe: ProbeDay, problems: list[dict],
                                 observed: dict) -> None:
    answer = _validate(server, warned_spec(probe))
    if shape := _validation_problems("warnings only", answer):
        problems += shape
        return
    body = answer.body
    observed["warnings"] = [w.get("code") if isinstance(w, dict) else w for w in body["warnings"]][:5]
    if not body["valid"] or body["errors"]:
        problems.append({"probe": "warnings only", "problem": f"refused as invalid: {body['errors'][:3]}"})
        return
    if not body["warnings"]:
        problems.append({"probe": "warnings only", "problem": "the validator reported no warning for the "
                         "probe spec: that warnings do not block was not exercised"})
        return
    run = execute(server, WARNED, probe.portfolio_id)
    observed["execute warned"] = run.status
    if run.status != 200:
        problems.append({"probe": "warnings only", "problem": f"a spec with warnings only did not run: {run.short()}"})


@gate(NAME, checks="a pattern with a critical error (unknown capability, undefined step output) is "
      "refused before any step runs: validate lists them; execute answers 422 pattern_invalid with "
      "details.errors and neither the database nor the stand-in shows a step (a canary proves they "
      "would); warnings never block; every shipped pattern validates clean",
      runs_in="Week 3 Days 3-4 (gate:blocking-validation)")
def blocking_validation_gate(ctx: RunContext) -> GateResult:
    problems: list[dict] = []
    observed: dict = {}
    expectation = ("critical errors refused before any step runs (422 pattern_invalid, no row, no "
                   "provider call), warnings never block, the shipped patterns validate clean")
    probe = probe_day(ctx.database_url)
    observed["probe_day"] = probe.day.isoformat()
    specs = {INVALID: invalid_spec(probe), WARNED: warned_spec(probe),
             CANARY: {"name": "runbook probe: canary", "inputs": PROBE_INPUTS, "steps": [probe.refresh_step()]}}
    try:
        server = api(ctx)
        _check_validate_route(server, probe, problems)
        observed["shipped patterns"] = _check_shipped(server, ensure_deployed(ctx), problems)
        with probe_api(ctx, copy.deepcopy(specs)) as probe_server:
            _check_refused_before_steps(ctx, probe_server, probe, problems, observed)
            _check_warnings_do_not_block(probe_server, probe, problems, observed)
    except Exception as exc:  # noqa: BLE001 - a probe that could not run fails the gate, named
        problems.append({"probe": "-", "problem": f"{type(exc).__name__}: {str(exc)[:200]}"})
    finally:
        remove_rows(ctx.database_url, probe.day)
    return verdict(NAME, expectation, problems, observed)

"""Gate of Week 3 Task 6.3: input validation at every API boundary, fuzzed from the API's own
OpenAPI schema with schemathesis (its Python API; a fixed number of cases per route and
generation mode, derandomized: the same schema gets the same cases), as the operator.

Judged per response: never a 5xx; every 400/422 (invalid input, docs/change_sets.md) in the
error shape with `details.fields` = `[{"field", "message"}, ...]` naming at least one field.
Other 4xx (a 404 for a fuzzed id that names nothing, a 409) are counted, not judged here: that
every status has the error shape is Day 5's error-shape gate.

It never changes the environment's data. Read routes (GET) get valid and invalid cases. Every
other route (a write, a pattern run) gets invalid cases only (schemathesis' negative mode: each
case breaks the schema somewhere), and its path's UUIDs are replaced by fresh ones no row has:
even a case the route wrongly accepts finds nothing of the environment's to change. An invalid
case a write route answers 2xx is itself a problem (it accepted what its schema refuses).
"""
from __future__ import annotations

import uuid
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from runbook.context import RunContext
from runbook.expectations.week3.calls import error_details, verdict
from runbook.expectations.week3.probe import standard_error
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.target import DAWSOS
from runbook.tasks.target.deploy import api

NAME = "week3:input-validation"
CASES_PER_ROUTE = 25
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
FIELD_ERRORS = {400, 422}


def _fresh_uuids(case) -> None:
    """A write route's path UUIDs become ones no row has (see the module docstring)."""
    for name, value in (case.path_parameters or {}).items():
        try:
            uuid.UUID(str(value))
        except ValueError:
            continue
        case.path_parameters[name] = str(uuid.uuid4())


def response_problem(status: int, body: object) -> str | None:
    """Why one answer breaks the contract (None when it keeps it)."""
    if status >= 500:
        return f"HTTP {status}"
    if status not in FIELD_ERRORS:
        return None
    if not standard_error(body):
        return f"HTTP {status} not in the error shape: {str(body)[:160]}"
    fields = error_details(body).get("fields")
    if not (isinstance(fields, list) and fields and all(
            isinstance(f, dict) and isinstance(f.get("field"), str) and f["field"]
            and isinstance(f.get("message"), str) for f in fields)):
        return f"HTTP {status} without details.fields naming a field: {str(error_details(body))[:160]}"
    return None


def _described(case) -> str:
    body = "" if isinstance(case.body, NotSet) else f" body={str(case.body)[:120]}"
    return f"{case.method} {case.formatted_path}" + (f" query={case.query}" if case.query else "") + body


def _fuzz(operation, mode: GenerationMode, base_url: str, headers: dict, writes: bool,
          statuses: Counter, problems: list[dict]) -> int:
    """Send CASES_PER_ROUTE cases of one operation and mode; the number sent."""
    sent = 0
    route = f"{operation.method.upper()} {operation.path}"

    @settings(max_examples=CASES_PER_ROUTE, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode))
    def send(case) -> None:
        nonlocal sent
        if writes:
            _fresh_uuids(case)
        response = case.call(base_url=base_url, headers=headers, timeout=60)
        sent += 1
        statuses[response.status_code] += 1
        try:
            body = response.json()
        except ValueError:
            body = response.text[:200]
        problem = response_problem(response.status_code, body)
        if problem is None and writes and response.status_code < 300:
            problem = f"an invalid case was accepted (HTTP {response.status_code})"
        if problem and sum(p["route"] == route for p in problems) < 3:
            problems.append({"route": route, "mode": mode.value, "problem": problem,
                             "case": _described(case)})

    send()
    return sent


@gate(NAME, checks="every route fuzzed from the API's OpenAPI schema (schemathesis, 25 cases per "
      "route and mode, derandomized, operator's token; writes with invalid data only, on fresh "
      "UUIDs): no 5xx, every 400/422 in the error shape with details.fields naming the field, "
      "no write accepting invalid data",
      runs_in="Week 3 Days 3-4 (gate:input-validation)")
def input_validation_gate(ctx: RunContext) -> GateResult:
    problems: list[dict] = []
    statuses: Counter = Counter()
    routes: dict[str, int] = {}
    no_input: list[str] = []
    expectation = ("no fuzzed request answers 5xx; every 400/422 is in the error shape naming the "
                   "field in details.fields; no write accepts invalid data")
    try:
        server = api(ctx)
        headers = server.headers()
        schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json", timeout=30)
        operations = [op.ok() for op in schema.get_all_operations()]
        for operation in operations:
            if operation.path in DAWSOS.public_routes:
                continue
            writes = operation.method.upper() not in READ_METHODS
            modes = [GenerationMode.NEGATIVE] if writes else [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
            route = f"{operation.method.upper()} {operation.path}"
            routes[route] = 0
            for mode in modes:
                try:
                    routes[route] += _fuzz(operation, mode, server.base_url, headers, writes, statuses, problems)
                except Unsatisfiable:        # a route that takes no input has no invalid case
                    no_input.append(route)
                except Exception as exc:  # noqa: BLE001 - a route that could not be fuzzed is named
                    problems.append({"route": route, "mode": mode.value,
                                     "problem": f"not fuzzed: {type(exc).__name__}: {str(exc)[:160]}"})
        if not routes:
            problems.append({"route": "-", "problem": "the OpenAPI schema lists no route: nothing was fuzzed"})
        for route, sent in routes.items():
            if not sent and route not in no_input:
                problems.append({"route": route, "problem": "no case was sent"})
    except Exception as exc:  # noqa: BLE001 - no schema, no API: the gate fails naming it
        problems.append({"route": "/openapi.json", "problem": f"{type(exc).__name__}: {str(exc)[:200]}"})
    return verdict(NAME, expectation, problems,
                   {"routes": len(routes), "requests": sum(routes.values()),
                    "statuses": dict(sorted(statuses.items()))},
                   details={"requests per route": routes, "routes without input (no invalid case)": no_input})

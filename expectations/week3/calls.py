"""The Week 3 gates' calls to a DawsOS API: a pattern run and the operator's GETs/POSTs, each
answered as (status, JSON body or None, seconds taken) — a probe never raises on an HTTP status."""
from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from runbook.gate_result import GateResult
from runbook.target import DAWSOS
from runbook.tasks.target.api_server import ApiServer

CALL_TIMEOUT_S = 120
# Probe patterns take a shipped pattern's id, served by the probe API only: since Week 1 every
# pattern id needs an input model, so a new id is refused. These ids take only `portfolio_id`.
PROBE_IDS = ("cycle_deleveraging_scenarios", "export_portfolio_report", "policy_rebalance")
PROBE_INPUTS = {"portfolio_id": {"type": "uuid", "required": True}}


@dataclass
class Answer:
    status: int
    body: object
    seconds: float

    def short(self) -> str:
        return f"HTTP {self.status}: {str(self.body)[:200]}"


def call(server: ApiServer, method: str, path: str, json: object = None) -> Answer:
    started = time.monotonic()
    r = httpx.request(method, server.base_url + path, json=json, headers=server.headers(),
                      timeout=CALL_TIMEOUT_S)
    try:
        body = r.json()
    except ValueError:
        body = None if not r.content else r.text[:500]
    return Answer(r.status_code, body, time.monotonic() - started)


def execute(server: ApiServer, pattern_id: str, portfolio_id: str) -> Answer:
    """Run a probe pattern (its only input: a portfolio)."""
    return call(server, "POST", DAWSOS.execute_route.format(pattern_id=pattern_id),
                {"inputs": {"portfolio_id": portfolio_id}})


def error_details(body: object) -> dict:
    """`error.details` of a body in the standard error shape ({} otherwise)."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return details if isinstance(details, dict) else {}


def verdict(name: str, expectation: str, problems: list[dict], observed: dict,
            details: dict | None = None) -> GateResult:
    """A gate's result: passed when no problem was found (a probe that could not run is one)."""
    return GateResult(name, not problems, expectation,
                      observed=observed if problems == [] else {"problems": len(problems), **observed},
                      expected="0 problems", sample=problems[:20], details=details or {})

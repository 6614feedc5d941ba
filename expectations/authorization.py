"""Gate of the authorization change (plan Week 0 Day 5, Task 3.2), black-box through the running
service, for every route its OpenAPI lists (read and write), but the target's public ones:

- no token, a forged token (another secret) and an expired token -> 401;
- a verified token whose role holds no right -> 403, and nothing written: the pattern endpoint
  leaves no "pattern.execute" audit row for the probe's user; a write route is called with a
  real request on data the gate creates and removes (the route smoke's scenario, e.g. selling
  part of the probe's own lot), and that data must be unchanged — judged on those rows alone, so
  the application writing elsewhere meanwhile cannot fail the gate;
- the operator's token (a role holding every right) is admitted: 200 (a pattern runs and leaves
  exactly one audit row; a write shows in the table, on the probe's data only).

Every probe also carries the header a client could set to claim rights (X-DawsOS-Rights with every
right): a backend that believes it lets the rightless token through, and the gate fails. The
probes' users are unique (`runbook-probe:<nonce>-…`), so their audit rows are found exactly
while other traffic runs. Routes come from the service, not from a list here: none is a failure.
"""
from __future__ import annotations

import datetime as dt
import secrets
import uuid
from pathlib import Path

import httpx

from runbook.expectations.api_routes import (
    READ_SCENARIOS,
    WRITE_SCENARIOS,
    create_smoke_lot,
    remove_smoke_lot,
    smoke_lot_state,
)
from runbook.expectations.smoke import declared_inputs, load_pattern, pattern_ids, sample_inputs
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.target import DAWSOS
from runbook.tasks.target.auth_tokens import bearer, mint

# what a client could send to claim rights it was never given
CLIENT_RIGHTS_HEADER = "X-DawsOS-Rights"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
NO_RIGHTS_ROLE = "runbook-probe-no-rights"      # a role the target grants nothing


def _audit(database_url: str, marker: str) -> dict[str, int]:
    """audit_log rows of the probe user `marker`, by action."""
    with connect(database_url) as conn:
        rows = conn.execute("SELECT action, count(*) FROM audit_log WHERE details ->> 'sub' = %s"
                            " GROUP BY action", (marker,)).fetchall()
    return {a: n for a, n in rows}


def _routes(openapi: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, ops in (openapi.get("paths") or {}).items()
            if path not in DAWSOS.public_routes
            for method, op in ops.items() if method in HTTP_METHODS]


def _resolve(schema: dict, openapi: dict) -> dict:
    ref = schema.get("$ref")
    if ref:
        node = openapi
        for part in ref.lstrip("#/").split("/"):
            node = node.get(part, {})
        return node
    return schema


def _example(name: str, schema: dict, openapi: dict, values: dict):
    """A valid value for a field: the probe's own value for a known name, else one by type."""
    schema = _resolve(schema, openapi)
    if name in values:
        return values[name]
    if "anyOf" in schema:
        return _example(name, next((s for s in schema["anyOf"] if s.get("type") != "null"), {}), openapi, values)
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "object":
        return {k: _example(k, s, openapi, values) for k, s in (schema.get("properties") or {}).items()
                if k in (schema.get("required") or []) or k in values}
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return {"uuid": str(uuid.uuid4()), "date": dt.date.today().isoformat()}.get(fmt, "probe")


def _body_schema(op: dict) -> dict | None:
    body = op.get("requestBody") or {}
    return ((body.get("content") or {}).get("application/json") or {}).get("schema") if body else None


class _Probe:
    """The requests of one route, each with the client-set rights header."""

    def __init__(self, client: httpx.Client, base_url: str, secret: str, nonce: str):
        self.client, self.base_url, self.secret, self.nonce = client, base_url, secret, nonce
        self.lie = {CLIENT_RIGHTS_HEADER: ",".join(sorted(
            {DAWSOS.all_patterns_right, "patterns:read", "holdings:read", "trades:write", "admin"}))}

    def send(self, method: str, url: str, body, token: str | None):
        headers = {**self.lie, **(bearer(token) if token else {})}
        return self.client.request(method.upper(), self.base_url + url, headers=headers,
                                   json=body if body is not None else None)

    def tokens(self, user: str) -> dict[str, tuple[str | None, int]]:
        """Caller -> (token, status every route must answer)."""
        return {
            "no token": (None, 401),
            "forged token (another secret)": (mint(secrets.token_urlsafe(32), user, DAWSOS.operator_role), 401),
            "expired token": (mint(self.secret, user, DAWSOS.operator_role, ttl_s=-120), 401),
            "verified token, role without rights": (mint(self.secret, user, NO_RIGHTS_ROLE), 403),
        }


@gate("security:authorization", checks="every route the service lists (read and write): no, forged or "
      "expired token 401; a verified token without the right 403 and nothing written (audit rows; "
      "the probe's own lot for write routes); the operator's token admitted (a real write on its own "
      "data); a client-set rights header never believed",
      runs_in="Week 0 Day 5 (gate:authorization); scheduled verification")
def authorization_gate(base_url: str, database_url: str, checkout: Path, jwt_secret: str | None) -> GateResult:
    problems: list[dict] = []
    seen: list[dict] = []

    def result(observed=None) -> GateResult:
        return GateResult(
            name="security:authorization", passed=not problems,
            expectation="every route: no/forged/expired token 401, a token without the right 403 "
                        "writing nothing, a token with the right admitted; client-set rights ignored",
            observed=observed if observed is not None else f"{len(problems)} problems",
            expected="0 problems", sample=problems[:50], details={"requests": seen})

    if not jwt_secret:
        problems.append({"route": "-", "caller": "-", "problem": "no JWT secret for the target "
                         "(TARGET_JWT_SECRET): probe tokens cannot be signed, nothing was checked"})
        return result()
    try:
        openapi = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    except (httpx.HTTPError, ValueError) as exc:
        problems.append({"route": "/openapi.json", "caller": "-", "problem": f"unreadable ({type(exc).__name__})"})
        return result()
    routes = _routes(openapi)
    if not routes:
        problems.append({"route": "-", "caller": "-", "problem": "the service lists no routes: nothing was checked"})
        return result("0 routes")

    ids = pattern_ids(checkout)
    pid = "portfolio_overview" if "portfolio_overview" in ids else ids[0]
    inputs = sample_inputs(database_url)
    values = {"pattern_id": pid, "portfolio_id": inputs["portfolio_id"],
              "security_id": inputs["security_id"], "inputs": inputs, "run_id": str(uuid.uuid4())}
    nonce = uuid.uuid4().hex[:12]
    with httpx.Client(timeout=60) as client:
        probe = _Probe(client, base_url, jwt_secret, nonce)
        for method, path, op in routes:
            route = f"{method.upper()} {path}"
            try:
                url = path.format(**values)
            except KeyError as exc:
                problems.append({"route": route, "caller": "-", "problem": f"no probe value for path parameter {exc}"})
                continue
            schema = _body_schema(op)
            body = _example("", schema, openapi, values) if schema else None
            is_pattern = path == DAWSOS.execute_route
            if is_pattern:
                # the inputs the pattern declares: Week 1's input models refuse any other
                body = {"inputs": declared_inputs(load_pattern(checkout, pid), inputs)}
            # a read that needs something made first (a run to read) goes the scenario's way too
            writes = (method != "get" and not is_pattern) or (method, path) in READ_SCENARIOS
            denied_user = f"runbook-probe:{nonce}-{len(seen)}-denied"
            if writes:
                problems += _write_route(probe, client, route, method, path, inputs["portfolio_id"],
                                         database_url, denied_user, nonce, seen)
                continue
            for caller, (token, status) in probe.tokens(denied_user).items():
                r = probe.send(method, url, body, token)
                seen.append({"route": route, "caller": caller, "status": r.status_code})
                if r.status_code != status:
                    problems.append({"route": route, "caller": caller,
                                     "problem": f"HTTP {r.status_code}, expected {status}"})
            if is_pattern:
                rows = _audit(database_url, denied_user)
                if rows.get("pattern.execute"):
                    problems.append({"route": route, "caller": "refused callers", "problem": f"audit rows {rows}: a pattern ran"})
            problems += _admitted(probe, route, method, url, body, is_pattern,
                                  database_url, f"runbook-probe:{nonce}-{len(seen)}-allowed", seen)
    return result()


def _write_route(probe: _Probe, client: httpx.Client, route: str, method: str, path: str,
                 portfolio_id: str, database_url: str, denied_user: str, nonce: str,
                 seen: list[dict]) -> list[dict]:
    """A write route, on data the gate creates and removes (the route smoke's scenario for it):
    refused callers send the real request and must leave that data as it was — judged on those
    rows only, so the application writing elsewhere meanwhile cannot fail it; then the operator's
    token makes the write, and the scenario checks it shows in the table."""
    scenario = WRITE_SCENARIOS.get((method, path)) or READ_SCENARIOS.get((method, path))
    if scenario is None:
        return [{"route": route, "caller": "-", "problem": "a write route with no scenario "
                 "(expectations/api_routes.py): a refusal cannot be shown to write nothing"}]
    problems = []
    lot = create_smoke_lot(database_url, portfolio_id)
    try:
        url = path.format(portfolio_id=lot.portfolio_id, security_id=lot.security_id, lot_id=lot.lot_id,
                          run_id=str(uuid.uuid4()))
        before = smoke_lot_state(database_url, lot)
        for caller, (token, status) in probe.tokens(denied_user).items():
            headers = {**probe.lie, **(bearer(token) if token else {})}
            r, _ = scenario(client, probe.base_url, url, headers, database_url, lot)
            seen.append({"route": route, "caller": caller, "status": r.status_code})
            if r.status_code != status:
                problems.append({"route": route, "caller": caller, "problem": f"HTTP {r.status_code}, expected {status}"})
        if smoke_lot_state(database_url, lot) != before:
            problems.append({"route": route, "caller": "refused callers",
                             "problem": "the probe's own lot or its transactions changed: a refused request wrote"})
        caller = f"verified token, role {DAWSOS.operator_role}"
        headers = {**probe.lie, **bearer(mint(probe.secret, f"runbook-probe:{nonce}-allowed", DAWSOS.operator_role))}
        r, problem = scenario(client, probe.base_url, url, headers, database_url, lot)
        seen.append({"route": route, "caller": caller, "status": r.status_code})
        if not 200 <= r.status_code < 300 or problem:      # 202: a cancellation accepted
            problems.append({"route": route, "caller": caller,
                             "problem": problem or f"HTTP {r.status_code}, expected 2xx"})
    finally:
        remove_smoke_lot(database_url, lot)
    return problems


def _admitted(probe: _Probe, route: str, method: str, url: str, body, is_pattern: bool,
              database_url: str, user: str, seen: list[dict]) -> list[dict]:
    """The operator's token gets through a read route: 200 (a pattern runs once)."""
    caller = f"verified token, role {DAWSOS.operator_role}"
    token = mint(probe.secret, user, DAWSOS.operator_role)
    r = probe.send(method, url, body, token)
    seen.append({"route": route, "caller": caller, "status": r.status_code})
    expected = 200
    if r.status_code != expected:
        return [{"route": route, "caller": caller, "problem": f"HTTP {r.status_code}, expected {expected}"}]
    if is_pattern:
        rows = _audit(database_url, user)
        if rows.get("pattern.execute") != 1 or not (r.json() or {}).get("data"):
            return [{"route": route, "caller": caller, "problem": f"ran without data or audit row ({rows}): "
                     "cannot prove refused callers ran nothing"}]
    return []

"""Week 3 Day 5, Task 7.1: every error the API answers has one shape.

The routes come from the API's own OpenAPI document. Each is provoked into the errors a client
meets: no token (401), a verified token whose role holds no right (403), unknown ids (404), a
method it does not serve (405), bad input (400/422); beside them an unknown path (404), a
provider forced down under a pattern that calls it, and a probe pattern whose step raises
(5xx). Every answer of 400 and above must be `{"error": {"code", "message", "request_id",
"details"}}` with `request_id` equal to the `X-Request-Id` response header (a client's own
`X-Request-Id` kept), and must show no stack trace or exception class. A status family that
was never provoked fails the gate: nothing was shown about it."""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

import httpx

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.expectations.authorization import HTTP_METHODS, NO_RIGHTS_ROLE, _body_schema, _example
from runbook.expectations.smoke import pattern_ids, sample_inputs
from runbook.expectations.week3.probe import probe_api, standard_error
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.target import DAWSOS
from runbook.tasks.target.auth_tokens import bearer, mint
from runbook.tasks.target.deploy import api, upstream

NAME = "week3:error-shape"
REQUEST_ID = "X-Request-Id"
# what an error body must never show: a traceback, a source line, an exception dumped with its
# class ("KeyError: 'x'", "ValueError('x')", "<class 'x'>"). A bare class name used as a label
# (details.error = "TimeoutError") is not a dump.
LEAK = re.compile(r"Traceback \(most recent call last\)|File \\?\"[^\"]+\\?\", line \d+|<class '"
                  r"|\b[A-Z][A-Za-z0-9_.]*(?:Error|Exception|Exit|Interrupt)\b(?::\s|\()")
# the status families the gate must provoke at least once each (400 or 422 for bad input)
FAMILIES = {"401": (401,), "403": (403,), "404": (404,), "405": (405,), "400/422": (400, 422),
            "5xx": tuple(range(500, 600))}
NEWS_PATTERN, NEWS_PROVIDER = "news_impact_analysis", "polygon"
# in the probe API's copy of the patterns, a shipped pattern (the target accepts inputs for its
# own patterns only) whose one step calls a real capability with a literal id no database
# accepts: the step raises inside the API (an unexpected error, not a client's mistake)
RAISING_PATTERN = "portfolio_overview"
MALFORMED_JSON = b'{"runbook-probe": '


@dataclass
class Seen:
    route: str
    probe: str
    status: int | None
    problem: str = ""


@dataclass
class Findings:
    seen: list[Seen] = field(default_factory=list)

    def judge(self, route: str, probe: str, r: httpx.Response, sent_id: str | None = None) -> None:
        self.seen.append(Seen(route, probe, r.status_code, shape_problem(r, sent_id) if r.status_code >= 400 else ""))

    def fail(self, route: str, probe: str, problem: str) -> None:
        self.seen.append(Seen(route, probe, None, problem))

    @property
    def problems(self) -> list[Seen]:
        return [s for s in self.seen if s.problem]

    def missing_families(self) -> list[str]:
        statuses = {s.status for s in self.seen}
        return [name for name, codes in FAMILIES.items() if not statuses & set(codes)]


def shape_problem(r: httpx.Response, sent_id: str | None = None) -> str:
    """Why an error response breaks the contract ('' when it holds)."""
    leak = LEAK.search(r.text)
    if leak:
        return f"shows a stack trace or exception class ({leak.group(0)!r})"
    try:
        body = r.json()
    except ValueError:
        return f"not JSON ({r.headers.get('content-type', 'no content type')}): {r.text[:80]!r}"
    if not standard_error(body):
        return f"not the error shape: {json.dumps(body)[:120]}"
    error = body["error"]
    header = r.headers.get(REQUEST_ID)
    if not header:
        return f"no {REQUEST_ID} response header"
    if error["request_id"] != header:
        return f"request_id {error['request_id']!r} differs from the {REQUEST_ID} header {header!r}"
    if sent_id is not None and header != sent_id:
        return f"the client's {REQUEST_ID} {sent_id!r} was not kept (answered {header!r})"
    if not isinstance(error["code"], str) or not error["code"] or not isinstance(error["message"], str):
        return f"code/message not non-empty text: {json.dumps(error)[:120]}"
    return ""


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"{([^}]+)}", lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


def _unknown(path: str) -> str:
    """The path with every id one that does not exist."""
    return re.sub(r"{([^}]+)}", lambda m: f"runbook-probe-no-such-{m.group(1)}" if m.group(1) == "pattern_id"
                  else str(uuid.uuid4()), path)


def _bad_ids(path: str, values: dict[str, str]) -> str:
    """The path with its UUID ids malformed (the pattern id kept)."""
    return re.sub(r"{([^}]+)}", lambda m: values["pattern_id"] if m.group(1) == "pattern_id" else "not-a-uuid", path)


def probe_routes(client: httpx.Client, base_url: str, secret: str, openapi: dict, values: dict,
                 findings: Findings) -> None:
    """Every route the API lists, provoked into 401, 403, 404, 405 and bad input."""
    operator = bearer(mint(secret, "runbook-probe:error-shape", DAWSOS.operator_role))
    no_rights = bearer(mint(secret, "runbook-probe:error-shape-denied", NO_RIGHTS_ROLE))
    for path, ops in (openapi.get("paths") or {}).items():
        served = [m for m in ops if m in HTTP_METHODS]
        for method in served:
            route, op = f"{method.upper()} {path}", ops[method]
            schema = _body_schema(op)
            body = {"inputs": values["inputs"]} if path == DAWSOS.execute_route else (
                _example("", schema, openapi, values) if schema else None)
            url = base_url + _fill(path, values)
            if path not in DAWSOS.public_routes:
                findings.judge(route, "no token", client.request(method, url, json=body))
                findings.judge(route, "role without rights", client.request(method, url, json=body, headers=no_rights))
            if "{" in path:
                findings.judge(route, "unknown ids", client.request(
                    method, base_url + _unknown(path), json=body, headers=operator))
            if schema or path == DAWSOS.execute_route:
                findings.judge(route, "malformed JSON body", client.request(
                    method, url, content=MALFORMED_JSON, headers={**operator, "Content-Type": "application/json"}))
            if path == DAWSOS.execute_route:
                findings.judge(route, "bad input", client.request(method, url, headers=operator, json={
                    "inputs": {**values["inputs"], "portfolio_id": "not-a-uuid"}}))
            if re.search(r"{(?!pattern_id})[^}]+}", path):
                findings.judge(route, "malformed ids", client.request(
                    method, base_url + _bad_ids(path, values), json=body, headers=operator))
        wrong = next((m for m in ("delete", "put", "patch", "post", "get") if m not in ops), None)
        if wrong and served:
            findings.judge(f"{wrong.upper()} {path}", "method not served",
                           client.request(wrong, base_url + _fill(path, values), headers=operator))
    sent = f"runbook-probe-{uuid.uuid4().hex}"
    findings.judge(f"GET /runbook-probe-{sent[-8:]}", "unknown path (client's request id)",
                   client.get(f"{base_url}/runbook-probe-{sent[-8:]}", headers={**operator, REQUEST_ID: sent}),
                   sent_id=sent)


RAISING_SPEC = {"name": "runbook probe: a step that raises",
                "inputs": {"portfolio_id": {"type": "uuid", "required": True}},
                "steps": [{"id": "raises", "capability": "financial_analyst.get_valued_positions",
                           "args": {"portfolio_id": "runbook-probe-not-a-uuid"},
                           "as": "raises"}],
                "outputs": ["raises"]}


def probe_server_errors(ctx: RunContext, client: httpx.Client, inputs: dict, findings: Findings) -> None:
    """5xx, on a probe API on the deployed code (its circuit breakers are its own, thrown away
    with it): a probe pattern whose step raises, and the pattern calling Polygon with Polygon
    down (the stand-in healed afterwards)."""
    def execute(server, pattern: str) -> tuple[str, httpx.Response]:
        path = DAWSOS.execute_route.format(pattern_id=pattern)
        return f"POST {path}", client.post(server.base_url + path, headers=server.headers(),
                                           json={"inputs": {"portfolio_id": inputs["portfolio_id"]}})

    try:
        with probe_api(ctx, {RAISING_PATTERN: RAISING_SPEC}) as server:
            route, r = execute(server, RAISING_PATTERN)
            findings.judge(route, "a step raises (probe API)", r)
            control = upstream(ctx)
            control.set_fault(NEWS_PROVIDER, down=True)
            try:
                route, r = execute(server, NEWS_PATTERN)
                findings.judge(route, f"{NEWS_PROVIDER} down (probe API)", r)
            finally:
                control.heal(NEWS_PROVIDER)
    except (RunbookError, ValueError) as exc:
        findings.fail("-", "5xx probes", f"not run: {exc}"[:300])


@gate(NAME, checks="every route the API lists, provoked into 401 (no token), 403 (no right), 404 (unknown "
      "ids, unknown path), 405 (wrong method), 400/422 (bad input) and 5xx (provider down, a step that "
      "raises): every answer >= 400 is {\"error\": {code, message, request_id, details}}, request_id = "
      "the X-Request-Id header (a client's kept), no stack trace or exception class; each status "
      "family provoked at least once",
      runs_in="Week 3 Day 5 (gate:error-shape)")
def error_shape_check(ctx: RunContext) -> GateResult:
    findings = Findings()
    server = api(ctx)
    secret = server.jwt_secret

    def result(observed=None) -> GateResult:
        problems = findings.problems
        missing = findings.missing_families()
        sample = [{"route": s.route, "probe": s.probe, "status": s.status, "problem": s.problem[:200]}
                  for s in problems[:20]]
        sample += [{"route": "-", "probe": f"status {m}", "status": None,
                    "problem": f"no {m} answer was provoked: nothing shown about its shape"} for m in missing]
        errors = [s for s in findings.seen if s.status and s.status >= 400]
        return GateResult(
            NAME, passed=not sample,
            expectation="every error answer of every route has the error shape with request_id = "
                        "X-Request-Id and no stack trace; 401, 403, 404, 405, 400/422 and 5xx all provoked",
            observed=observed or f"{len(problems)} of {len(errors)} error answers off-contract"
                                 + (f"; never provoked: {', '.join(missing)}" if missing else ""),
            expected="0 off-contract, every family provoked", sample=sample,
            details={"answers": [{"route": s.route, "probe": s.probe, "status": s.status, "problem": s.problem[:200]}
                                 for s in findings.seen]})

    if not secret:
        findings.fail("-", "-", "no JWT secret for the target (TARGET_JWT_SECRET): probe tokens cannot be signed")
        return result("nothing checked")
    with httpx.Client(timeout=60) as client:
        try:
            openapi = client.get(f"{server.base_url}/openapi.json", headers=server.headers()).raise_for_status().json()
        except (httpx.HTTPError, ValueError) as exc:
            findings.fail("GET /openapi.json", "-", f"the API lists no routes ({type(exc).__name__})")
            return result("no routes")
        if not openapi.get("paths"):
            findings.fail("GET /openapi.json", "-", "the API lists no routes")
            return result("no routes")
        inputs = sample_inputs(ctx.database_url)
        ids = pattern_ids(ctx.deploy_dir)
        values = {"pattern_id": "portfolio_overview" if "portfolio_overview" in ids else ids[0],
                  "portfolio_id": inputs["portfolio_id"], "security_id": inputs["security_id"], "inputs": inputs}
        probe_routes(client, server.base_url, secret, openapi, values, findings)
        probe_server_errors(ctx, client, inputs, findings)
    return result()


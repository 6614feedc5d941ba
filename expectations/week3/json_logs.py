"""Week 3 Day 5, Task 7.2: the API logs JSON, with request and pattern ids, and no secret.

A probe API on the deployed code is started with secrets planted in its configuration (random
provider API keys beside its JWT signing secret and the database password, if any), then given
the 13-pattern smoke and error runs: a pattern whose provider answers 500 and a pattern given
bad input. Its whole log (stdout and stderr) is then read: every line must be a JSON object
with `time`, `level`, `message`, `request_id` and `pattern_id`; the provider failure must be
logged under its request's id (the response's X-Request-Id) and its pattern's id; and no
planted secret may appear in any line, raw or URL-encoded. An empty log fails: nothing shown."""
from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.expectations.smoke import execute, sample_inputs, smoke
from runbook.expectations.week3.probe import probe_api
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.redaction import mask_url_password
from runbook.target import DAWSOS
from runbook.tasks.target.deploy import upstream

NAME = "week3:logging"
FIELDS = ("time", "level", "message", "request_id", "pattern_id")
PLANTED = ("POLYGON_API_KEY", "FMP_API_KEY", "FRED_API_KEY")
NEWS_PATTERN, NEWS_PROVIDER = "news_impact_analysis", "polygon"
REQUEST_ID = "X-Request-Id"


def planted_secrets() -> dict[str, str]:
    """Fresh random values for the provider keys (hex: the same raw, JSON-escaped or URL-encoded)."""
    return {name: f"rbsecret{secrets.token_hex(16)}" for name in PLANTED}


@dataclass
class ErrorRun:
    what: str
    status: int | None
    request_id: str | None
    pattern_id: str


def error_runs(ctx: RunContext, base_url: str, headers: dict, inputs: dict) -> list[ErrorRun]:
    """A provider forced to 500 under the pattern that calls it; a pattern given bad input."""
    control = upstream(ctx)
    runs = []
    with httpx.Client(timeout=120) as client:
        control.set_fault(NEWS_PROVIDER, status=500)
        try:
            r = execute(client, base_url, NEWS_PATTERN, {"portfolio_id": inputs["portfolio_id"]}, headers)
            runs.append(ErrorRun(f"{NEWS_PROVIDER} answers 500", r.status_code, r.headers.get(REQUEST_ID), NEWS_PATTERN))
        finally:
            control.heal(NEWS_PROVIDER)
        r = execute(client, base_url, "portfolio_overview", {"portfolio_id": "not-a-uuid"}, headers)
        runs.append(ErrorRun("bad input", r.status_code, r.headers.get(REQUEST_ID), "portfolio_overview"))
    return runs


def read_log(path: Path, settle_s: float = 5.0) -> list[str]:
    """The log's lines once it stops growing (the process may still be flushing)."""
    deadline, size = time.monotonic() + settle_s, -1
    while time.monotonic() < deadline and path.stat().st_size != size:
        size = path.stat().st_size
        time.sleep(0.3)
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


def redact(line: str, planted: dict[str, str]) -> str:
    """A line fit to show: secrets named, not shown; 200 characters around the first one."""
    for name, value in planted.items():
        line = line.replace(value, f"<{name}>").replace(quote(value, safe=""), f"<{name}>")
    line = mask_url_password(line)
    first = min((i for i in (line.find(f"<{name}>") for name in planted) if i >= 0), default=0)
    start = max(0, first - 80)
    return ("…" if start else "") + line[start:start + 200]


def line_problems(lines: list[str], planted: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """(problems by line, the parsed records)."""
    problems, records = [], []
    for number, line in enumerate(lines, 1):
        leaked = [name for name, value in planted.items() if value in line or quote(value, safe="") in line]
        if leaked:
            problems.append({"line": number, "problem": f"secret {', '.join(leaked)} in the log",
                             "text": redact(line, planted)})
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            problems.append({"line": number, "problem": "not a JSON object", "text": redact(line, planted)})
            continue
        missing = [f for f in FIELDS if f not in record]
        if missing:
            problems.append({"line": number, "problem": f"no {', '.join(missing)}", "text": redact(line, planted)})
        records.append(record)
    return problems, records


def correlation_problems(runs: list[ErrorRun], records: list[dict]) -> list[dict]:
    """Each error run answered an error, named its request, and the provider failure is logged
    under that request id and its pattern id."""
    problems = []
    for run in runs:
        if run.status is None or run.status < 400:
            problems.append({"line": "-", "problem": f"error run '{run.what}' answered HTTP {run.status}: "
                             "no error was logged on purpose", "text": ""})
        elif not run.request_id:
            problems.append({"line": "-", "problem": f"error run '{run.what}': no {REQUEST_ID} header", "text": ""})
    failed = runs[0]
    if failed.request_id and not any(r.get("request_id") == failed.request_id and r.get("pattern_id") == failed.pattern_id
                                     for r in records):
        problems.append({"line": "-", "problem": f"no line of request {failed.request_id} with pattern_id "
                         f"{failed.pattern_id} (the provider failure is not traceable)", "text": ""})
    return problems


@gate(NAME, checks="a probe API with planted secrets (provider keys, JWT secret, database password) runs the "
      "13-pattern smoke and error runs (a provider answering 500, bad input): every log line is a JSON "
      "object with time, level, message, request_id, pattern_id; the provider failure is logged under its "
      "request and pattern ids; no planted secret in any line; an empty log fails",
      runs_in="Week 3 Day 5 (gate:logging)")
def logging_check(ctx: RunContext) -> GateResult:
    planted = planted_secrets()
    problems: list[dict] = []
    details: dict = {}

    def result(observed) -> GateResult:
        return GateResult(NAME, passed=not problems,
                          expectation="every API log line is JSON with time, level, message, request_id and "
                                      "pattern_id; errors traceable by request and pattern; no secret in any line",
                          observed=observed, expected="0 problems", sample=problems[:20], details=details)

    try:
        with probe_api(ctx, environment=planted) as server:
            searched = {**planted, DAWSOS.auth_secret_env: server.jwt_secret}
            password = urlsplit(ctx.database_url).password
            if password:
                searched["DATABASE_URL password"] = password
            inputs = sample_inputs(ctx.database_url)
            smoked, _runs = smoke(server.base_url, server.checkout, ctx.database_url, server.headers())
            runs = error_runs(ctx, server.base_url, server.headers(), inputs)
            lines = read_log(server.log_path)
    except (RunbookError, httpx.HTTPError, ValueError) as exc:
        problems.append({"line": "-", "problem": f"the probe could not run: {exc}"[:300], "text": ""})
        return result("nothing checked")
    details.update(smoke=smoked.observed, error_runs=[vars(r) for r in runs], lines=len(lines),
                   searched=sorted(searched))
    if not lines:
        problems.append({"line": "-", "problem": "the API wrote no log line during a smoke and error runs: "
                         "nothing to judge", "text": ""})
        return result("0 lines")
    by_line, records = line_problems(lines, searched)
    # leaked secrets first: the sample is cut short
    problems += sorted(by_line, key=lambda p: not p["problem"].startswith("secret ")) + correlation_problems(runs, records)
    details["problems"] = dict(Counter(p["problem"].split(" in the log")[0] for p in problems))
    return result(f"{len(by_line)} bad of {len(lines)} lines")

"""Week 3, Days 1-2 gates (reliability fixes), black-box: HTTP against the API, the upstream
stand-in's control API and log, and the environment's database (docs/change_sets.md).

- timeout: which patterns call which provider is found by running them (the stand-in's log),
  then those providers are slowed past each such pattern's timeout while the other patterns run.
- cancellation: a probe pattern that reads a provider before it writes prices is cancelled
  while the provider is slow; the stand-in's in-flight count, the probe API's database sessions
  and the probe's price rows say whether anything is left behind.
- template: probe patterns whose args and conditions use `{{?a.b}}` and `{{a.b|default:V}}`,
  and a differential of every shipped pattern's `data` on the run's baseline code vs the new.
"""
from __future__ import annotations

import functools
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.expectations import latency
from runbook.expectations.smoke import (
    declared_inputs,
    execute,
    load_pattern,
    pattern_ids,
    sample_inputs,
)
from runbook.expectations.week3.probe import error_code, probe_api
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.target.api_server import ApiServer
from runbook.tasks.target.deploy import api, upstream
from runbook.tasks.target.upstream import UpstreamControl

RUNS_IN = "Week 3 Days 1-2 (flows/week3/day1_2.py), after the change set is deployed"
DEFAULT_TIMEOUT_S = 30.0        # PATTERN_TIMEOUT_S, the target README's documented default
TIMEOUT_GRACE_S = 1.0           # a timed-out pattern must have answered within its timeout + this
CANCEL_WITHIN_S = 1.0           # a cancelled run must have answered within this
SLOW_MARGIN_S = 3.0             # how far past a pattern's timeout its provider is slowed
MAX_LATENCY_S = 120.0           # the stand-in's limit
CANCEL_PROVIDER_LATENCY_S = 6.0  # under the provider client's own timeout: an uncancelled run would write
SETTLE_S = 5.0                  # how long leftovers (in-flight requests, sessions) may take to go
# Probe patterns take a shipped pattern's id (served by the probe API only): since Week 1 every
# pattern id needs an input model, so a new id would be refused; they take its portfolio_id.
CANCEL_PROBE, TEMPLATE_PROBE = "corporate_actions_upcoming", "macro_trend_monitor"
PROBE_INPUTS = {"portfolio_id": {"type": "uuid", "required": True}}
# a weekday long before any data: the pricing pack the cancel probe would write (never real data)
CANCEL_PROBE_DATE = "1990-01-02"


TIMEOUT, CANCELLATION, TEMPLATE = "week3:timeout", "week3:cancellation", "week3:template"
TIMEOUT_EXPECTATION = (
    "every pattern run carries timeout_s (its JSON's, else the default); a pattern whose provider is "
    f"slowed past its timeout ends within timeout + {TIMEOUT_GRACE_S:g} s with 504 pattern_timeout; "
    "the other patterns answer 200 meanwhile")
CANCELLATION_EXPECTATION = (
    f"a run (X-Run-Id) cancelled while its provider call waits ends 409 pattern_cancelled within "
    f"{CANCEL_WITHIN_S:g} s and GET /api/runs/{{id}} says cancelled; the provider request is closed, "
    "the API's database sessions return to baseline, nothing partial is written")
TEMPLATE_EXPECTATION = (
    "{{?a.b}} is null and {{a.b|default:V}} is V when a.b is missing, the value when present (args and "
    "conditions); every shipped pattern's data unchanged from the baseline code")


# -- shared observations ---------------------------------------------------------------------

def fails_closed(name: str, expectation: str):
    """A probe that cannot run (no stand-in, an external API, the API not answering) is a failed
    gate naming the cause, never an error without a verdict."""
    def wrap(check):
        @functools.wraps(check)
        def run(ctx: RunContext) -> GateResult:
            try:
                return check(ctx)
            except (RunbookError, httpx.HTTPError, ValueError) as exc:
                return GateResult(name, False, expectation, observed=f"the probe could not run: "
                                  f"{type(exc).__name__}: {exc}"[:300], expected="the probe's verdict")
        return run
    return wrap


@dataclass
class PatternCall:
    pattern: str
    http: int | None
    body: object = None
    seconds: float = 0.0
    providers: set[str] = field(default_factory=set)

    @property
    def timeout_s(self) -> float | None:
        return as_seconds(self.body.get("timeout_s") if isinstance(self.body, dict) else None)


def as_seconds(value: object) -> float | None:
    """A JSON number as seconds (true/false are not numbers here)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def call(client: httpx.Client, server: ApiServer, checkout: Path, pattern_id: str, inputs: dict) -> PatternCall:
    """One run of a pattern with the smoke inputs it declares: status, body, wall time."""
    start = time.monotonic()
    try:
        r = execute(client, server.base_url, pattern_id, declared_inputs(load_pattern(checkout, pattern_id), inputs),
                    server.headers())
    except httpx.HTTPError as exc:
        return PatternCall(pattern_id, None, {"request failed": type(exc).__name__}, time.monotonic() - start)
    try:
        body = r.json()
    except ValueError:
        body = r.text[:300]
    return PatternCall(pattern_id, r.status_code, body, time.monotonic() - start)


def provider_calls(ctx: RunContext, control: UpstreamControl, inputs: dict) -> list[PatternCall]:
    """Every shipped pattern run once on the deployed API with the providers healthy, and which
    providers the stand-in saw it call (the log cleared before each run)."""
    server = api(ctx)
    server.start()
    control.heal()
    out = []
    with httpx.Client(timeout=DEFAULT_TIMEOUT_S + 30) as client:
        for pid in pattern_ids(ctx.deploy_dir):
            control.clear_log()
            run = call(client, server, ctx.deploy_dir, pid, inputs)
            run.providers = {e["provider"] for e in control.log()}
            out.append(run)
    control.clear_log()
    return out


def declared_timeout(checkout: Path, pattern_id: str) -> float | None:
    return as_seconds(load_pattern(checkout, pattern_id).get("timeout_s"))


# -- timeout ---------------------------------------------------------------------------------

def timeout_declarations(checkout: Path, runs: list[PatternCall]) -> list[dict]:
    """Patterns whose run does not carry the timeout it declares (or a default shared by all that
    declare none)."""
    problems = []
    defaults = {r.timeout_s for r in runs if declared_timeout(checkout, r.pattern) is None}
    for r in runs:
        declared = declared_timeout(checkout, r.pattern)
        if r.http != 200:
            problems.append({"pattern": r.pattern, "problem": f"HTTP {r.http} with healthy providers"})
        elif r.timeout_s is None:
            problems.append({"pattern": r.pattern, "problem": "response carries no numeric timeout_s"})
        elif declared is not None and r.timeout_s != declared:
            problems.append({"pattern": r.pattern, "problem": f"runs under {r.timeout_s}s, declares {declared}s"})
    if len(defaults - {None}) > 1:
        problems.append({"pattern": "*", "problem": f"patterns declaring none run under different defaults "
                                                    f"{sorted(defaults - {None})}"})
    return problems


def slowed_runs(ctx: RunContext, control: UpstreamControl, inputs: dict, slow: list[PatternCall],
                others: list[str]) -> tuple[list[PatternCall], list[PatternCall]]:
    """The provider-calling patterns run at once against their slowed providers, and meanwhile
    the other patterns one by one. Providers healed afterwards, whatever happens."""
    server = api(ctx)
    results: dict[str, PatternCall] = {}
    longest = max(r.timeout_s or DEFAULT_TIMEOUT_S for r in slow)
    try:
        for provider in sorted({p for r in slow for p in r.providers}):
            control.set_fault(provider, latency_ms=int(min(longest + SLOW_MARGIN_S, MAX_LATENCY_S) * 1000))
        with httpx.Client(timeout=MAX_LATENCY_S + 10) as client:
            def run_slow(pid: str) -> None:
                results[pid] = call(client, server, ctx.deploy_dir, pid, inputs)
            threads = [threading.Thread(target=run_slow, args=(r.pattern,), daemon=True) for r in slow]
            for t in threads:
                t.start()
            unaffected = [call(client, server, ctx.deploy_dir, pid, inputs) for pid in others]
            for t in threads:
                t.join(MAX_LATENCY_S + 15)
    finally:
        control.heal()
    return [results.get(r.pattern, PatternCall(r.pattern, None, "no answer")) for r in slow], unaffected


@gate("week3:timeout", checks="a pattern whose provider is slowed past its timeout answers 504 "
      "pattern_timeout within timeout + 1 s while the other patterns answer 200; every run carries "
      "the timeout_s it declares (or the shared default); no pattern calling any provider fails it",
      runs_in=RUNS_IN)
@fails_closed(TIMEOUT, TIMEOUT_EXPECTATION)
def timeout_check(ctx: RunContext) -> GateResult:
    name, expectation = TIMEOUT, TIMEOUT_EXPECTATION
    control = upstream(ctx)
    inputs = sample_inputs(ctx.database_url)
    runs = provider_calls(ctx, control, inputs)
    slow = [r for r in runs if r.providers]
    if not slow:
        return GateResult(name, False, expectation, observed="no pattern called any provider",
                          expected="at least one provider-calling pattern to slow (the probe never fired)",
                          details={"patterns": [r.pattern for r in runs]})
    problems = timeout_declarations(ctx.deploy_dir, runs)
    slowed = {p for r in slow for p in r.providers}
    others = [r.pattern for r in runs if not r.providers & slowed]
    timed, unaffected = slowed_runs(ctx, control, inputs, slow, others)
    for before, r in zip(slow, timed):
        limit = (before.timeout_s or DEFAULT_TIMEOUT_S) + TIMEOUT_GRACE_S
        if r.http != 504 or error_code(r.body) != "pattern_timeout" or r.seconds > limit:
            problems.append({"pattern": r.pattern, "problem": f"slowed {', '.join(sorted(before.providers))}: "
                             f"HTTP {r.http} code {error_code(r.body)!r} after {r.seconds:.1f}s "
                             f"(limit {limit:g}s)"})
    problems += [{"pattern": r.pattern, "problem": f"HTTP {r.http} while {', '.join(sorted(slowed))} slow"}
                 for r in unaffected if r.http != 200]
    return GateResult(
        name, not problems, expectation, observed=f"{len(problems)} problems", expected="0 problems",
        sample=problems[:10],
        details={"provider_calls": {r.pattern: sorted(r.providers) for r in slow},
                 "timeout_s": {r.pattern: r.timeout_s for r in runs},
                 "slowed": {r.pattern: {"http": r.http, "code": error_code(r.body), "seconds": round(r.seconds, 2)}
                            for r in timed},
                 "unaffected_ok": sum(r.http == 200 for r in unaffected)})


# -- cancellation ----------------------------------------------------------------------------

def api_sessions(database_url: str, server: ApiServer) -> dict[str, int]:
    """The API process's sessions on the database: found by their client ports (the process's
    TCP connections to the server), else by application_name `dawsos-api`. Total and busy (any
    state but idle)."""
    ports: list[int] = []
    if server.proc is not None and server.proc.poll() is None:
        db_port = urlsplit(database_url).port or 5432
        try:
            procs = [psutil.Process(server.proc.pid)]
            procs += procs[0].children(recursive=True)
            ports = [c.laddr.port for p in procs for c in p.net_connections(kind="tcp")
                     if c.raddr and c.raddr.port == db_port]
        except psutil.Error:
            ports = []
    with connect(database_url) as conn:
        row = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE state IS DISTINCT FROM 'idle')
                 FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND (client_port = ANY(%s) OR (cardinality(%s::int[]) = 0 AND application_name = 'dawsos-api'))""",
            (ports, ports)).fetchone()
    return {"total": row[0], "busy": row[1]}


def probe_rows(database_url: str) -> int:
    """The rows the cancel probe would have written: its pricing pack and prices in it."""
    with connect(database_url) as conn:
        return conn.execute(
            """SELECT (SELECT count(*) FROM pricing_packs WHERE date = %(d)s::date)
                    + (SELECT count(*) FROM prices WHERE pricing_pack_id IN
                         (SELECT id FROM pricing_packs WHERE date = %(d)s::date))""",
            {"d": CANCEL_PROBE_DATE}).fetchone()[0]


def remove_probe_rows(database_url: str) -> None:
    with connect(database_url) as conn:
        conn.execute("""DELETE FROM prices WHERE pricing_pack_id IN
                          (SELECT id FROM pricing_packs WHERE date = %(d)s::date)""", {"d": CANCEL_PROBE_DATE})
        conn.execute("DELETE FROM pricing_packs WHERE date = %(d)s::date", {"d": CANCEL_PROBE_DATE})
        conn.commit()


def cancel_probe_pattern(symbol: str) -> dict:
    """One step that reads FMP (slowed), then writes the closes it got (the probe's own pack; its
    argument names are the Weeks 0-1 code's, after the field standardisation)."""
    return {"name": "runbook cancellation probe", "inputs": PROBE_INPUTS,
            "steps": [{"id": "refresh", "capability": "data_harvester.refresh_prices",
                       "args": {"symbols": [symbol], "asof_date": CANCEL_PROBE_DATE}, "as": "refresh"}],
            "outputs": ["refresh"]}


def wait_for(predicate, seconds: float, every: float = 0.05):
    """The predicate's last value, polled until true or `seconds` passed."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)


@contextmanager
def slowed(control: UpstreamControl, provider: str, seconds: float):
    control.set_fault(provider, latency_ms=int(seconds * 1000))
    try:
        yield
    finally:
        control.heal(provider)


def run_cancel_probe(ctx: RunContext, server: ApiServer, control: UpstreamControl,
                     inputs: dict) -> tuple[list[dict], dict]:
    """Start the probe run, cancel it while its provider call waits, and list what did not hold."""
    problems: list[dict] = []
    run_id = str(uuid.uuid4())
    headers = {**server.headers(), "X-Run-Id": run_id}
    route = f"{server.base_url}/api/runs/{run_id}"
    answer: dict = {}
    baseline = api_sessions(ctx.database_url, server)
    observed: dict = {"sessions_before": baseline}
    if not baseline["total"]:
        return [{"check": "the API's database sessions", "observed": "none found (neither by the API "
                 "process's connections nor by application_name dawsos-api): they cannot be compared"}], observed
    with httpx.Client(timeout=MAX_LATENCY_S) as client, slowed(control, "fmp", CANCEL_PROVIDER_LATENCY_S):
        def start() -> None:
            r = execute(client, server.base_url, CANCEL_PROBE, inputs, headers)
            answer.update(http=r.status_code, body=r.json() if r.content else None, at=time.monotonic())
        started = time.monotonic()
        runner = threading.Thread(target=start, daemon=True)
        runner.start()
        if not wait_for(lambda: control.inflight().get("fmp", 0) > 0 or not runner.is_alive(), 10) \
                or not runner.is_alive():
            runner.join(1)
            return [{"check": "probe fired", "observed": f"the run never reached FMP (answer: HTTP "
                     f"{answer.get('http')}, error code {error_code(answer.get('body'))!r})"}], observed
        status = client.get(route, headers=server.headers())
        observed["status_while_running"] = status.json().get("status") if status.status_code == 200 else status.status_code
        if observed["status_while_running"] != "running":
            problems.append({"check": "GET /api/runs/{id} while running", "observed": observed["status_while_running"]})
        cancelled_at = time.monotonic()
        cancel = client.post(f"{route}/cancel", headers=server.headers())
        if cancel.status_code != 202:
            problems.append({"check": "POST /api/runs/{id}/cancel", "observed": f"HTTP {cancel.status_code}"})
        runner.join(CANCEL_PROVIDER_LATENCY_S + 10)
        took = answer.get("at", float("inf")) - cancelled_at
        observed["execute"] = {"http": answer.get("http"), "code": error_code(answer.get("body")),
                               "seconds_after_cancel": round(took, 2)}
        if answer.get("http") != 409 or error_code(answer.get("body")) != "pattern_cancelled" or took > CANCEL_WITHIN_S:
            problems.append({"check": f"execute ends 409 pattern_cancelled within {CANCEL_WITHIN_S:g} s",
                             "observed": observed["execute"]})
        final = client.get(route, headers=server.headers())
        observed["status_after"] = final.json().get("status") if final.status_code == 200 else final.status_code
        if observed["status_after"] != "cancelled":
            problems.append({"check": "GET /api/runs/{id} after cancel", "observed": observed["status_after"]})
        inflight = wait_for(lambda: control.inflight().get("fmp", 0) == 0, SETTLE_S)
        if not inflight:
            problems.append({"check": "the stand-in's FMP requests in flight back to 0",
                             "observed": control.inflight().get("fmp")})
        def sessions_back() -> bool:
            now = api_sessions(ctx.database_url, server)
            return now["busy"] <= baseline["busy"] and now["total"] <= baseline["total"]
        back = wait_for(sessions_back, SETTLE_S)
        observed["sessions_after"] = api_sessions(ctx.database_url, server)
        if not back:
            problems.append({"check": "the API's database sessions back to baseline",
                             "observed": f"{observed['sessions_after']} vs {baseline}"})
        # had the run gone on, its provider call would have answered by now and it would have written
        time.sleep(max(0.0, started + CANCEL_PROVIDER_LATENCY_S + 1 - time.monotonic()))
    written = probe_rows(ctx.database_url)
    if written:
        problems.append({"check": "nothing written by the cancelled run", "observed": f"{written} probe rows"})
    return problems, observed


@gate("week3:cancellation", checks="a run cancelled through POST /api/runs/{id}/cancel while its "
      "provider is slow ends 409 pattern_cancelled within 1 s, reads back as cancelled, leaves no "
      "provider request in flight, no extra database session and nothing written",
      runs_in=RUNS_IN)
@fails_closed(CANCELLATION, CANCELLATION_EXPECTATION)
def cancellation_check(ctx: RunContext) -> GateResult:
    name, expectation = CANCELLATION, CANCELLATION_EXPECTATION
    control = upstream(ctx)
    sample = sample_inputs(ctx.database_url)
    remove_probe_rows(ctx.database_url)         # a probe killed half-way may have left its pack
    try:
        with probe_api(ctx, {CANCEL_PROBE: cancel_probe_pattern(sample["symbol"])}) as server:
            problems, observed = run_cancel_probe(ctx, server, control, {"portfolio_id": sample["portfolio_id"]})
    finally:
        control.heal("fmp")
        remove_probe_rows(ctx.database_url)
    return GateResult(name, not problems, expectation, observed=f"{len(problems)} problems",
                      expected="0 problems", sample=problems, details=observed)


# -- template --------------------------------------------------------------------------------

MISSING, PRESENT = "first.runbook_no_such_field", "first.series_id"
FIRST_SERIES = "CPI"


def template_probe_pattern() -> dict:
    """Steps whose args and conditions use the optional and default forms on a path that is
    missing and on one that is present (the first step's output). Each `runs_*` step must run and
    each `skips_*` step must be skipped; the args come back in their outputs' `series_id`."""
    def step(step_id: str, series: str, condition: str) -> dict:
        return {"id": step_id, "capability": "charts_agent.macro_chart", "as": step_id,
                "args": {"series_id": series, "weeks": 1}, "condition": condition}
    steps = [
        {"id": "first", "capability": "charts_agent.macro_chart", "as": "first",
         "args": {"series_id": FIRST_SERIES, "weeks": 1}},
        step("runs_optional_missing", f"{{{{?{MISSING}}}}}", f"{{{{?{MISSING}}}}} == None"),
        step("skips_optional_missing", FIRST_SERIES, f"{{{{?{MISSING}}}}} != None"),
        step("runs_default_missing", f"{{{{{MISSING}|default:probe_default}}}}", f"{{{{{MISSING}|default:5}}}} == 5"),
        step("skips_default_missing", FIRST_SERIES, f"{{{{{MISSING}|default:5}}}} != 5"),
        step("runs_default_present", f"{{{{{PRESENT}|default:probe_default}}}}",
             f"{{{{{PRESENT}|default:5}}}} == '{FIRST_SERIES}'"),
        step("skips_default_present", FIRST_SERIES, f"{{{{{PRESENT}|default:5}}}} == 5"),
    ]
    return {"name": "runbook template probe", "inputs": PROBE_INPUTS, "steps": steps,
            "outputs": [s["id"] for s in steps[1:]]}


# what each runs_* step's output series_id must be: the rendered arg
TEMPLATE_EXPECTED = {"runs_optional_missing": None, "runs_default_missing": "probe_default",
                     "runs_default_present": FIRST_SERIES}


def template_probe(ctx: RunContext) -> list[dict]:
    problems = []
    inputs = {"portfolio_id": sample_inputs(ctx.database_url)["portfolio_id"]}
    with probe_api(ctx, {TEMPLATE_PROBE: template_probe_pattern()}) as server, httpx.Client(timeout=60) as client:
        r = execute(client, server.base_url, TEMPLATE_PROBE, inputs, server.headers())
    body = r.json() if r.content else None
    if r.status_code != 200 or not isinstance(body, dict):
        return [{"probe": TEMPLATE_PROBE, "problem": f"HTTP {r.status_code} {error_code(body)!r}"}]
    ran = {t.get("step"): not t.get("skipped") for t in body.get("trace") or []}
    for step_id, ok in ran.items():
        if step_id.startswith("runs_") and not ok or step_id.startswith("skips_") and ok:
            problems.append({"probe": step_id, "problem": "ran" if ok else "skipped"})
    for step_id, series in TEMPLATE_EXPECTED.items():
        got = (body.get("data", {}).get(step_id) or {}).get("series_id", "<no output>")
        if got != series:
            problems.append({"probe": step_id, "problem": f"arg rendered as {got!r}, expected {series!r}"})
    missing = [s["id"] for s in template_probe_pattern()["steps"] if s["id"] not in ran]
    problems += [{"probe": s, "problem": "not in the trace"} for s in missing]
    return problems


def differing_paths(before: object, after: object, path: str = "data", depth: int = 3) -> list[str]:
    """Where two outputs differ, as dotted paths (never the values: they are customer data)."""
    if before == after:
        return []
    if depth and isinstance(before, dict) and isinstance(after, dict):
        return [p for k in sorted(set(before) | set(after), key=str)
                for p in differing_paths(before.get(k), after.get(k), f"{path}.{k}", depth - 1)]
    return [path]


def shipped_outputs_differ(ctx: RunContext, baseline_commit: str) -> tuple[list[dict], int]:
    """Every shipped pattern's `data` on the baseline code vs the deployed code (smoke inputs). A
    difference is confirmed once more on both sides (the old app may write meanwhile)."""
    before_server, after_server = latency.baseline_server(ctx, baseline_commit), api(ctx)
    after_server.start()
    inputs = sample_inputs(ctx.database_url)
    differ = []
    patterns = pattern_ids(ctx.deploy_dir)
    with httpx.Client(timeout=DEFAULT_TIMEOUT_S + 30) as client:
        def both(pid: str) -> tuple[PatternCall, PatternCall]:
            return (call(client, before_server, ctx.deploy_dir, pid, inputs),
                    call(client, after_server, ctx.deploy_dir, pid, inputs))

        def data(r: PatternCall) -> object:
            return r.body.get("data") if r.http == 200 and isinstance(r.body, dict) else f"HTTP {r.http}"
        for pid in patterns:
            before, after = both(pid)
            if data(before) != data(after):
                before, after = both(pid)
            if data(before) != data(after):
                differ.append({"pattern": pid, "paths": differing_paths(data(before), data(after))})
    return differ, len(patterns)


@gate("week3:template", checks="{{?a.b}} renders null and {{a.b|default:V}} V when a.b is missing "
      "(the value when present), in args and conditions of probe patterns; every shipped pattern's "
      "data is unchanged from the run's baseline code over the smoke inputs",
      runs_in=RUNS_IN)
@fails_closed(TEMPLATE, TEMPLATE_EXPECTATION)
def template_check(ctx: RunContext) -> GateResult:
    name, expectation = TEMPLATE, TEMPLATE_EXPECTATION
    problems = template_probe(ctx)
    baseline = (ctx.extra.get(latency.BASELINE_KEY) or {}).get("commit")
    if not baseline:
        problems.append({"probe": "differential", "problem": "no baseline commit recorded (the "
                         "code:change-set step records the commit deployed before it)"})
        compared = 0
    else:
        differ, compared = shipped_outputs_differ(ctx, baseline)
        problems += [{"probe": d["pattern"], "problem": f"data changed at {', '.join(d['paths'][:5])}"}
                     for d in differ]
    return GateResult(name, not problems, expectation, observed=f"{len(problems)} problems",
                      expected="0 problems", sample=problems[:10],
                      details={"baseline_commit": baseline, "shipped_patterns_compared": compared})

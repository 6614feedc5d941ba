"""Gate of Week 3 Task 6.4: per-provider rate limit, retry with backoff, circuit breaker —
measured at the provider (the upstream stand-in's log of arrivals), driven by a probe pattern
that calls Polygon once per run (`fetch_provider_news`), served by a probe API.

The configuration is the target's own (`GET /api/providers`, operator): the gate checks the
behaviour against what the service says it does.
- rate: a probe API of its own runs with the provider's limit lowered through the target's own settings
  (PROBE_RATE_PER_S, PROBE_BURST): the gate checks the limiter, whatever production's numbers,
  and a low limit is one any machine can outrun. A burst of concurrent runs (more than
  `rate_per_s + burst`), started at `t0`; the k-th call to arrive at Polygon (arrivals
  `started`) comes no earlier than `t0 + (k - burst) / rate_per_s`: the limiter holds at most
  `burst` grants and earns one more per `1/rate_per_s`, and a call arrives after its grant,
  never before. A call delayed on its way (the target's event loop busy on a loaded machine
  bunched calls granted apart into 20 ms) only arrives later, so this check cannot fail a
  limiter for the machine's slowness — a 1-s window count could, and did. Without a limiter
  the burst arrives ahead of that curve provided the machine runs it faster than the limit;
  that is measured, not assumed: the same number of concurrent runs of a provider-free control
  pattern must all answer within half the limiter's least span `(runs - burst) / rate_per_s`,
  else the gate fails as unable to tell a limiter from a slow machine;
The other checks run on a second probe API under the target's own settings (a lowered limit
would space retries by itself):
- 429: Polygon answers 429 with a `Retry-After` longer than the retry's first backoff; the
  run's calls arrive at least that far apart (at least one retry);
- other failures: Polygon answers 500; the run's calls arrive with growing gaps, each at least
  half its exponential step `min(base_s * 2**i, max_s)` (half: jittered backoffs);
- circuit: Polygon down; runs until the service reports the circuit `open` (it must, within
  `failure_threshold` + 2 runs); then a run answers at once (< 1 s) 503 `provider_unavailable`
  and no call reaches Polygon during `reset_timeout_s`; Polygon healed, after the cool-down a run
  succeeds and the circuit reports `closed`.
Whatever happens the stand-in is healed and the circuit brought back to closed.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

from runbook.context import RunContext
from runbook.expectations.week3.calls import PROBE_IDS, PROBE_INPUTS, Answer, call, execute, verdict
from runbook.expectations.week3.probe import error_code, probe_api
from runbook.expectations.week3.probe_prices import probe_day
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.target import DAWSOS
from runbook.tasks.target.api_server import ApiServer
from runbook.tasks.target.deploy import upstream
from runbook.tasks.target.upstream import UpstreamControl

NAME = "week3:rate-limiting"
PROVIDERS_ROUTE = "/api/providers"
PROVIDER = "polygon"
PATTERN = PROBE_IDS[0]
CONTROL_PATTERN = PROBE_IDS[1]   # the same runs without a provider call: the machine's pace
PROBE_RATE_PER_S = 2.0
PROBE_BURST = 2
JITTER_S = 0.02          # a retry's arrival may come this much early against its wait
AT_ONCE_S = 1.0          # an open circuit answers within this
MAX_BURST_RUNS = 80


def ahead_of_rate(starts: list[float], t0: float, rate_per_s: float, burst: int) -> list[tuple[int, float]]:
    """Arrivals that came earlier than a limiter of `rate_per_s` and `burst`, full at `t0`, can
    let them through: (k, seconds early) for the k-th arrival (1-based) before
    `t0 + (k - burst) / rate_per_s`, less JITTER_S for the two processes' clock reads."""
    return [(k, round(earliest - t, 3))
            for k, t in enumerate(sorted(starts), start=1)
            if t < (earliest := t0 + max(0, k - burst) / rate_per_s) - JITTER_S]


def gaps(entries: list[dict]) -> list[float]:
    starts = sorted(e["started"] for e in entries)
    return [round(b - a, 3) for a, b in pairwise(starts)]


class _Probe:
    """The probe API, the stand-in, and the provider's settings as the service reports them."""

    def __init__(self, server: ApiServer, stand_in: UpstreamControl, config: dict, portfolio_id: str):
        self.server, self.stand_in, self.config = server, stand_in, config
        self.portfolio_id = portfolio_id

    def run(self, pattern: str = PATTERN) -> Answer:
        return execute(self.server, pattern, self.portfolio_id)

    def burst(self, runs: int, pattern: str = PATTERN) -> tuple[list[Answer], float]:
        """`runs` concurrent runs of `pattern`: their answers and the seconds until the last."""
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=runs) as pool:
            answers = list(pool.map(lambda _: self.run(pattern), range(runs)))
        return answers, time.monotonic() - started

    def arrivals(self, since: float) -> list[dict]:
        return [e for e in self.stand_in.log(PROVIDER) if e["started"] >= since]

    def circuit(self) -> str | None:
        answer = call(self.server, "GET", PROVIDERS_ROUTE)
        return (((answer.body or {}).get(PROVIDER) or {}).get("circuit") or {}).get("state") \
            if isinstance(answer.body, dict) else None

    def until_closed(self) -> str | None:
        """Healed, then runs until one succeeds and the circuit reports closed (cool-down + 10 s
        at most): a success also clears the failures counted so far, so checks start even."""
        self.stand_in.heal(PROVIDER)
        deadline = time.monotonic() + float(self.config["circuit"]["reset_timeout_s"]) + 10
        while True:
            ok = self.run().status == 200
            state = self.circuit()
            if (ok and state == "closed") or time.monotonic() >= deadline:
                return state
            time.sleep(0.5)


def _config(server: ApiServer) -> tuple[dict | None, str | None]:
    answer = call(server, "GET", PROVIDERS_ROUTE)
    body = answer.body if isinstance(answer.body, dict) else {}
    conf = body.get(PROVIDER)
    try:
        float(conf["rate_per_s"]), int(conf["burst"])
        float(conf["retry"]["base_s"]), float(conf["retry"]["max_s"]), int(conf["retry"]["attempts"])
        int(conf["circuit"]["failure_threshold"]), float(conf["circuit"]["reset_timeout_s"])
        conf["circuit"]["state"]
    except (KeyError, TypeError, ValueError):
        return None, f"{PROVIDERS_ROUTE} has no complete {PROVIDER} entry: {answer.short()}"
    return conf, None


def least_span(runs: int, rate_per_s: float, burst: int) -> float:
    """The fewest seconds a limiter of `rate_per_s` and `burst` needs to let `runs` calls through."""
    return max(0, runs - burst) / rate_per_s


def _check_rate(p: _Probe, problems: list[dict], observed: dict) -> None:
    rate, burst = float(p.config["rate_per_s"]), int(p.config["burst"])
    runs = min(MAX_BURST_RUNS, 2 * int(rate + burst) + 4)
    control, control_s = p.burst(runs, CONTROL_PATTERN)
    since = time.time()
    answers, _ = p.burst(runs)
    arrivals = [e["started"] for e in p.arrivals(since)]
    early, span = ahead_of_rate(arrivals, since, rate, burst), least_span(runs, rate, burst)
    observed["rate"] = {"runs": runs, "arrivals": len(arrivals), "early": len(early),
                        "least_span_s": round(span, 3), "control_s": round(control_s, 3),
                        "statuses": sorted({a.status for a in answers}),
                        "arrivals_s": [round(t - since, 3) for t in sorted(arrivals)][:20]}
    if not arrivals:
        problems.append({"check": "rate", "problem": f"none of {runs} runs reached {PROVIDER}: nothing measured"})
    elif early:
        k, by = max(early, key=lambda e: e[1])
        problems.append({"check": "rate", "problem": f"{len(early)} of {len(arrivals)} calls reached {PROVIDER} "
                         f"ahead of rate_per_s + burst ({rate:g}/s + {burst}): call {k} arrived {by} s before "
                         f"a limiter could let it through"})
    if any(a.status != 200 for a in control) or control_s > span / 2:
        problems.append({"check": "rate", "problem": f"cannot tell a limiter from a slow machine: {runs} "
                         f"concurrent runs without a provider call took {control_s:.2f} s "
                         f"(statuses {sorted({a.status for a in control})}), more than half the "
                         f"{span:.2f} s a limiter of {rate:g}/s + {burst} needs for them"})
    if any(a.status >= 500 and error_code(a.body) != "provider_unavailable" for a in answers):
        problems.append({"check": "rate", "problem": f"a run of the burst failed: "
                         f"{next(a.short() for a in answers if a.status >= 500)}"})


def _check_retry_after(p: _Probe, problems: list[dict], observed: dict) -> None:
    retry_after = max(1.0, 2 * float(p.config["retry"]["base_s"]))
    p.stand_in.set_fault(PROVIDER, status=429, retry_after_s=retry_after)
    since = time.time()
    answer = p.run()
    spacing = gaps(p.arrivals(since))
    observed["429"] = {"retry_after_s": retry_after, "gaps_s": spacing, "status": answer.status}
    if not spacing:
        problems.append({"check": "429", "problem": f"no retry after a 429 ({answer.short()})"})
    elif min(spacing) < retry_after - JITTER_S:
        problems.append({"check": "429", "problem": f"retried {min(spacing)} s after a 429 asking "
                         f"Retry-After {retry_after} s"})


def _check_backoff(p: _Probe, problems: list[dict], observed: dict) -> None:
    base, cap = float(p.config["retry"]["base_s"]), float(p.config["retry"]["max_s"])
    p.stand_in.set_fault(PROVIDER, status=500)
    since = time.time()
    answer = p.run()
    spacing = gaps(p.arrivals(since))
    steps = [min(base * 2 ** i, cap) for i in range(len(spacing))]
    observed["500"] = {"gaps_s": spacing, "exponential_steps_s": steps, "status": answer.status}
    if not spacing:
        problems.append({"check": "backoff", "problem": f"no retry after a 500 ({answer.short()})"})
    short = [(g, s) for g, s in zip(spacing, steps) if g < s / 2 - JITTER_S]
    if short:
        problems.append({"check": "backoff", "problem": f"retries closer than their exponential step "
                         f"(gap, step): {short}"})


def _check_circuit(p: _Probe, problems: list[dict], observed: dict) -> None:
    threshold = int(p.config["circuit"]["failure_threshold"])
    cool_down = float(p.config["circuit"]["reset_timeout_s"])
    p.stand_in.set_fault(PROVIDER, down=True)
    runs = 0
    while p.circuit() != "open" and runs < threshold + 2:
        p.run()
        runs += 1
    opened = time.time()
    observed["circuit"] = {"runs_to_open": runs, "state": p.circuit()}
    if observed["circuit"]["state"] != "open":
        problems.append({"check": "circuit", "problem": f"not open after {runs} failing runs "
                         f"(failure_threshold {threshold})"})
        return
    # refused runs spread over the first half of the cool-down (it began before `opened`)
    for i in range(3):
        time.sleep(max(0.0, opened + i * cool_down / 6 - time.time()))
        refused = p.run()
        if refused.status != 503 or error_code(refused.body) != "provider_unavailable" or refused.seconds > AT_ONCE_S:
            problems.append({"check": "circuit", "problem": f"an open circuit answered {refused.short()} in "
                             f"{refused.seconds:.2f} s, expected 503 provider_unavailable within {AT_ONCE_S} s"})
    observed["circuit"]["while_open"] = {"status": refused.status, "code": error_code(refused.body)}
    leaked = p.arrivals(opened)
    if leaked:
        problems.append({"check": "circuit", "problem": f"{len(leaked)} call(s) reached {PROVIDER} "
                         f"while the circuit was open"})
    p.stand_in.heal(PROVIDER)
    time.sleep(max(0.0, opened + cool_down - time.time()) + 0.2)
    trial = p.run()
    state = p.circuit()
    observed["circuit"]["after_cool_down"] = {"status": trial.status, "state": state}
    if trial.status != 200 or state != "closed":
        problems.append({"check": "circuit", "problem": f"after the cool-down with {PROVIDER} healed: "
                         f"{trial.short()}, circuit {state!r} (expected 200 and closed)"})


def _run_checks(probe: _Probe, checks, problems: list[dict], observed: dict) -> bool:
    """Each check, the circuit closed again after each; False when it would not close."""
    try:
        for check in checks:
            check(probe, problems, observed)
            if probe.until_closed() != "closed":
                problems.append({"check": check.__name__.removeprefix("_check_"),
                                 "problem": "the circuit did not close again with the provider healed"})
                return False
        return True
    finally:
        probe.until_closed()


@gate(NAME, checks="per provider, as the stand-in counts arrivals: a burst of runs never exceeds "
      "what rate_per_s + burst lets through since the burst began (the k-th call no earlier than "
      "(k - burst) / rate_per_s), the limit lowered (in a probe API of its own) to "
      f"{PROBE_RATE_PER_S:g}/s + {PROBE_BURST} through the target's settings, and the machine "
      "shown to run as many provider-free runs in half that span; a 429 is "
      "retried after its Retry-After; other failures with exponential backoff; after "
      "failure_threshold failures the circuit opens (503 provider_unavailable at once, no call "
      "for reset_timeout_s), then closes when the provider recovers; the stand-in healed and the circuit closed afterwards",
      runs_in="Week 3 Days 3-4 (gate:rate-limiting)")
def rate_limiting_gate(ctx: RunContext) -> GateResult:
    problems: list[dict] = []
    observed: dict = {}
    expectation = ("provider calls within rate_per_s + burst per second; Retry-After honoured; "
                   "exponential backoff; the circuit opens, refuses at once, and closes on recovery")
    stand_in = upstream(ctx)
    day = probe_day(ctx.database_url)
    spec = {"name": "runbook probe: one Polygon call", "inputs": PROBE_INPUTS, "steps": [
        {"id": "news", "capability": "data_harvester.fetch_provider_news", "as": "news",
         "args": {"symbol": day.symbols[0], "limit": 1}}]}
    control = {"name": "runbook probe: no provider call", "inputs": PROBE_INPUTS, "steps": [
        {"id": "positions", "capability": "financial_analyst.get_valued_positions", "as": "positions",
         "args": {"portfolio_id": "{{inputs.portfolio_id}}"}}]}
    limit = {DAWSOS.provider_rate_setting.format(provider=PROVIDER.upper()): f"{PROBE_RATE_PER_S:g}",
             DAWSOS.provider_burst_setting.format(provider=PROVIDER.upper()): str(PROBE_BURST)}
    # the rate under a lowered limit; retries and the circuit under the target's own settings
    phases = ((limit, "rate_config", (_check_rate,)),
              ({}, "config", (_check_retry_after, _check_backoff, _check_circuit)))
    try:
        for environment, config_key, checks in phases:
            with probe_api(ctx, {PATTERN: spec, CONTROL_PATTERN: control}, environment=environment) as server:
                config, why = _config(server)
                if config is None:
                    problems.append({"check": "config", "problem": why})
                    break
                observed[config_key] = {k: config[k] for k in ("rate_per_s", "burst", "retry")}
                if not _run_checks(_Probe(server, stand_in, config, day.portfolio_id), checks, problems, observed):
                    break
    except Exception as exc:  # noqa: BLE001 - a probe that could not run fails the gate, named
        problems.append({"check": "-", "problem": f"{type(exc).__name__}: {str(exc)[:200]}"})
    finally:
        stand_in.heal(PROVIDER)
    return verdict(NAME, expectation, problems, observed)

"""Gates of the eval() -> simpleeval change (plan Week 0 Day 5):

- no-eval: no eval / exec / compile call left in backend/ (an AST walk, not grep);
- escape corpus: every known sandbox-escape payload is rejected by the checkout's evaluator,
  with no side effect (each in its own process, with a timeout and resource limits);
- differential: every pattern condition decides the same with the old and the new evaluator,
  over step states captured from real pattern runs.

The evaluator always runs in a child process (tasks/evaluator_probe.py, `python -I`): the
checkout's orchestrator module is imported there, never into the runbook's process.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import RunbookError
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.tasks.target import evaluator_probe
from runbook.tasks.target.upstream import UpstreamStandIn

PROBE = Path(evaluator_probe.__file__)
CORPUS = PROBE.with_name("escape_corpus.txt")
BANNED_CALLS = ("eval", "exec", "compile")
BUILTIN_MODULES = ("builtins", "__builtins__")
# what the escape payloads see as the step state (shaped like the patterns' real states)
ESCAPE_STATE = {
    "inputs": {"portfolio_id": "3f1c0d1e-0000-4000-8000-000000000001",
               "security_id": "3f1c0d1e-0000-4000-8000-000000000002", "symbol": "AAA"},
    "valued_positions": {"total_qty_open": 150.0, "total_market_value": 1234.5, "position_count": 2,
                         "positions": [{"symbol": "AAA", "qty_open": 150.0}]},
    "checklist": {"score": 7},
}


def backend_of(checkout: Path) -> Path:
    backend = Path(checkout).resolve() / "backend"
    if not (backend / "app" / "core" / "pattern_orchestrator.py").is_file():
        raise RunbookError(f"{checkout}: backend/app/core/pattern_orchestrator.py not found")
    return backend


# -- no eval / exec / compile ------------------------------------------------------------------

@dataclass
class CallHit:
    path: str
    line: int
    name: str
    text: str


def _banned_name(node: ast.AST) -> str | None:
    """eval(...), exec(...), compile(...), builtins.eval(...), __builtins__['eval'](...)."""
    if isinstance(node, ast.Name) and node.id in BANNED_CALLS:
        return node.id
    if isinstance(node, ast.Attribute) and node.attr in BANNED_CALLS \
            and isinstance(node.value, ast.Name) and node.value.id in BUILTIN_MODULES:
        return f"{node.value.id}.{node.attr}"
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
            and node.value.id in BUILTIN_MODULES and isinstance(node.slice, ast.Constant) \
            and node.slice.value in BANNED_CALLS:
        return f"{node.value.id}[{node.slice.value!r}]"
    return None


def find_eval_calls(checkout: Path, under: str = "backend") -> list[CallHit]:
    root = Path(checkout) / under
    if not root.is_dir():
        raise RunbookError(f"{root}: directory not found")
    hits: list[CallHit] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(checkout).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(text, filename=rel)
        except SyntaxError as exc:   # what cannot be parsed cannot be cleared: fail closed
            hits.append(CallHit(rel, exc.lineno or 0, "unparseable", str(exc.msg)))
            continue
        lines = text.splitlines()
        for node in ast.walk(tree):
            # calls, and the bare names too: `f = eval; f(x)` is an eval call by another name
            name = _banned_name(node.func) if isinstance(node, ast.Call) else None
            if name is None and isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                name = _banned_name(node)
            if name:
                src = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
                hits.append(CallHit(rel, node.lineno, name, src[:160]))
    # a call's func is also a bare Name: keep one hit per place
    return sorted({(h.path, h.line, h.name.split(".")[-1]): h for h in hits}.values(),
                  key=lambda h: (h.path, h.line))


@gate('code:no-eval', checks='no eval / exec / compile call in backend/ (no Python file to scan fails)',
      runs_in='Week 0 Day 5; scheduled verification')
def no_eval_gate(checkout: Path) -> GateResult:
    hits = find_eval_calls(checkout)
    if not any((Path(checkout) / "backend").rglob("*.py")):   # nothing scanned proves nothing
        hits = [CallHit("backend/", 0, "nothing scanned", "no Python file under backend/")]
    return GateResult(
        name="code:no-eval", passed=not hits,
        expectation="no eval / exec / compile call in backend/ (AST walk of every .py)",
        observed=len(hits), expected=0,
        sample=[{"where": f"{h.path}:{h.line}", "call": h.name, "text": h.text} for h in hits[:20]])


# -- escape corpus -----------------------------------------------------------------------------

@dataclass
class Payload:
    line: int
    kind: str          # the corpus class, from its "# [class]" header
    expression: str


def load_corpus(path: Path = CORPUS) -> list[Payload]:
    path = Path(path)
    if not path.is_file():
        raise RunbookError(f"escape corpus {path}: file not found")
    payloads, kind = [], "unclassified"
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith("# [") and "]" in line:
            kind = line[3:line.index("]")].strip()
        elif line and not line.startswith("#"):
            payloads.append(Payload(n, kind, line))
    if not payloads:
        raise RunbookError(f"escape corpus {path}: no payloads (one expression a line)")
    return payloads


@dataclass
class PayloadOutcome:
    payload: Payload
    verdict: str       # "rejected" | "evaluated" | "exhausted" | "side-effect"
    detail: str
    evaluator: str = ""

    @property
    def rejected(self) -> bool:
        return self.verdict == "rejected"


def _python_env(home: Path) -> dict[str, str]:
    # the payload's process gets no secrets: no DATABASE_URL, tokens or webhooks
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}


def _verdict(payload: Payload, sandbox: Path, result: Path, timeout_s: float) -> PayloadOutcome:
    created = sorted(p.name for p in sandbox.iterdir()) if sandbox.is_dir() else []
    seen = json.loads(result.read_text()) if result.exists() else None
    if created:
        return PayloadOutcome(payload, "side-effect", "created " + ", ".join(created),
                              (seen or {}).get("evaluator", ""))
    if seen is None:
        return PayloadOutcome(payload, "exhausted", f"killed (CPU/memory limit, or no answer within "
                                                    f"{timeout_s:.0f}s)")
    evaluator = seen.get("evaluator", "")
    if seen.get("state_changed"):
        return PayloadOutcome(payload, "side-effect", "changed the step state", evaluator)
    if seen.get("outcome") == "value":
        return PayloadOutcome(payload, "evaluated", f"{seen.get('type')}: {seen.get('detail')}", evaluator)
    if seen.get("type") == "MemoryError":
        return PayloadOutcome(payload, "exhausted", "MemoryError (stopped by the memory limit)", evaluator)
    if not seen.get("called"):
        return PayloadOutcome(payload, "rejected", "never reached the evaluator", evaluator)
    return PayloadOutcome(payload, "rejected", f"{seen.get('type')}: {seen.get('detail')}", evaluator)


# a plain condition of the shape the patterns use: it must reach the hooked evaluator (and come
# back as a value) before any payload's "never reached the evaluator" may count as rejected
CANARY = "{{valued_positions.total_qty_open}} > 0"


class ProbeNotReached(RunbookError):
    """The canary did not reach the hooked evaluator: the probe cannot see this backend's
    evaluation, so no payload verdict can be trusted."""


def check_canary(result: Path) -> None:
    seen = json.loads(result.read_text()) if result.exists() else None
    if seen is None:
        raise ProbeNotReached(f"probe never reached the evaluator: the canary {CANARY!r} gave no answer")
    if not seen.get("called"):
        raise ProbeNotReached(f"probe never reached the evaluator: the canary {CANARY!r} was decided without "
                              "calling any hooked evaluator (evaluate_condition, eval, simpleeval)")
    if seen.get("outcome") != "value":
        raise ProbeNotReached(f"the evaluator ({seen.get('evaluator')}) refused the canary {CANARY!r}: "
                              f"{seen.get('type')}: {seen.get('detail')}; a refusal proves nothing")


def run_corpus(checkout: Path, payloads: Iterable[Payload], timeout_s: float = 10,
               workers: int = 4) -> list[PayloadOutcome]:
    """Every payload through the checkout's orchestrator, each in its own child process
    (forked from one probe that imported the orchestrator), with CPU, memory and file-size
    limits and a wall-clock timeout; the child's working directory shows what it created."""
    backend = backend_of(checkout)
    payloads = list(payloads)
    request = json.dumps({"payloads": [p.expression for p in payloads], "state": ESCAPE_STATE,
                          "timeout_s": timeout_s, "workers": workers, "canary": CANARY})
    with tempfile.TemporaryDirectory(prefix="rb-escape-") as tmp:
        work = Path(tmp)
        budget = timeout_s * (len(payloads) / workers + 2) + 60
        proc = subprocess.run([sys.executable, "-I", str(PROBE), "escape", str(backend), str(work)], check=False,
                              input=request, capture_output=True, text=True, cwd=work,
                              env=_python_env(work), timeout=budget)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RunbookError(f"escape probe on {backend} failed: {tail[:300]}")
        check_canary(work / "canary" / "result.json")
        return [_verdict(p, work / str(n) / "sandbox", work / str(n) / "result.json", timeout_s)
                for n, p in enumerate(payloads)]


@gate('security:escape-corpus', checks='every sandbox-escape payload is rejected with no side effect, after a canary proved the probe reaches the evaluator',
      runs_in='Week 0 Day 5')
def escape_gate(checkout: Path, corpus: Path = CORPUS) -> GateResult:
    try:
        outcomes = run_corpus(checkout, load_corpus(corpus))
    except ProbeNotReached as exc:
        return GateResult(name="security:escape-corpus", passed=False,
                          expectation="every known sandbox-escape payload is rejected by the condition "
                                      "evaluator, with no side effect", observed=str(exc),
                          expected="the canary reaches the evaluator, then every payload rejected")
    bad = [o for o in outcomes if not o.rejected]
    kinds: dict[str, int] = {}
    for o in outcomes:
        kinds[o.payload.kind] = kinds.get(o.payload.kind, 0) + 1
    return GateResult(
        name="security:escape-corpus", passed=not bad,
        expectation="every known sandbox-escape payload is rejected by the condition evaluator, "
                    "with no side effect",
        observed=f"{len(outcomes) - len(bad)}/{len(outcomes)} rejected",
        expected=f"{len(outcomes)}/{len(outcomes)} rejected",
        sample=[{"line": o.payload.line, "class": o.payload.kind, "payload": o.payload.expression[:100],
                 "verdict": o.verdict, "detail": o.detail[:120]} for o in bad[:20]],
        details={"corpus": str(corpus), "classes": kinds,
                 "evaluator": sorted({o.evaluator for o in outcomes if o.evaluator})})


# -- differential: old vs new evaluator over captured states ------------------------------------

@dataclass
class Condition:
    pattern: str
    step: str
    expression: str


def pattern_conditions(checkout: Path) -> list[Condition]:
    out = []
    for path in sorted((Path(checkout) / "backend" / "patterns").glob("*.json")):
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunbookError(f"{path}: malformed pattern JSON at line {exc.lineno}: {exc.msg}") from None
        for step in spec.get("steps", []):
            if step.get("condition"):
                out.append(Condition(spec.get("id") or path.stem, step.get("id") or step.get("capability", "?"),
                                     step["condition"]))
    return out


def _probe(args: list[str], env: dict | None = None, timeout_s: float = 300) -> str:
    proc = subprocess.run([sys.executable, "-I", str(PROBE), *args], check=False, capture_output=True,
                          text=True, env=env, timeout=timeout_s)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RunbookError(f"evaluator probe {args[0]} on {args[1]} failed: {tail[:300]}")
    return proc.stdout


def capture_states(checkout: Path, database_url: str, inputs: dict, out: Path) -> dict:
    """Run every pattern with the checkout's code on the database; keep the states each
    condition saw (plus numbers-zeroed variants and an inputs-only state) in `out`. The
    patterns' provider calls go to a stand-in of the probe's own (never a real provider)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    inputs_file = out.with_suffix(".inputs.json")
    inputs_file.write_text(json.dumps(inputs))
    with UpstreamStandIn() as providers:
        env = {**_python_env(out.parent), "DATABASE_URL": database_url, **providers.provider_settings()}
        report = json.loads(_probe(["capture", str(backend_of(checkout)), str(inputs_file), str(out)], env)
                            .strip().splitlines()[-1])
    if report["errors"]:
        raise RunbookError("capturing condition states: patterns failed: "
                           + "; ".join(f"{k}: {v}" for k, v in report["errors"].items()))
    return report


def decide_all(checkout: Path, samples: Path, conditions: list[str], work: Path) -> dict:
    """{"labels": [state label], "matrix": conditions x states}, as the checkout's
    orchestrator decides them."""
    cond_file = work / f"conditions-{os.getpid()}.json"
    result = work / f"decisions-{abs(hash(str(checkout)))}.json"
    cond_file.write_text(json.dumps(conditions))
    _probe(["evaluate", str(backend_of(checkout)), str(samples), str(cond_file), str(result)],
           _python_env(work))
    return json.loads(result.read_text())


@gate('security:evaluator-differential', checks='every pattern condition decides the same with the old and the new evaluator',
      runs_in='Week 0 Day 5')
def differential_gate(old_checkout: Path, new_checkout: Path, samples: Path) -> GateResult:
    if not Path(samples).is_file():
        raise RunbookError(f"captured condition states {samples}: file not found")
    # every condition site (pattern, step) of both sides; each distinct expression evaluated once
    sites = {(c.pattern, c.step, c.expression): c
             for c in pattern_conditions(old_checkout) + pattern_conditions(new_checkout)}
    if not sites:
        raise RunbookError(f"{new_checkout}: no pattern has a condition; nothing to compare")
    exprs = sorted({c.expression for c in sites.values()})
    work = Path(samples).parent
    old_run = decide_all(old_checkout, samples, exprs, work)
    labels = old_run["labels"]
    old = dict(zip(exprs, old_run["matrix"], strict=True))
    new = dict(zip(exprs, decide_all(new_checkout, samples, exprs, work)["matrix"], strict=True))
    states = len(labels)
    counts = {e: {"true": sum(old[e]), "false": states - sum(old[e])} for e in exprs}
    differ = []
    for c in sites.values():
        cols = [j for j in range(states) if old[c.expression][j] != new[c.expression][j]]
        if cols:
            differ.append({"pattern": c.pattern, "step": c.step, "condition": c.expression,
                           "states_differing": len(cols), "first_state": labels[cols[0]][:120],
                           "old": old[c.expression][cols[0]],
                           "new": new[c.expression][cols[0]]})
    return GateResult(
        name="security:evaluator-differential", passed=not differ and states > 0,
        expectation="every pattern condition decides the same with the old (eval) and the new "
                    "(simpleeval) evaluator over states captured from real pattern runs",
        observed=f"{len(differ)} conditions differ over {states} states",
        expected="0 conditions differ over > 0 states",
        sample=differ[:20], details={"conditions": len(sites), "expressions": len(exprs),
                                     "states": states, "old_decisions": counts})

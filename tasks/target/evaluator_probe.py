"""Child-process side of the evaluator gates: loads a checkout's pattern orchestrator and
evaluates conditions with it. Run as a script with `python -I` (stdlib + the target's
backend only), so an expression that escapes the evaluator lands in a throwaway process.

    python -I evaluator_probe.py escape   BACKEND WORKDIR       < {"payloads", "state", ...}
    python -I evaluator_probe.py evaluate BACKEND SAMPLES_PKL CONDITIONS_JSON RESULT_JSON
    python -I evaluator_probe.py capture  BACKEND INPUTS_JSON SAMPLES_PKL   (DATABASE_URL env)
"""
from __future__ import annotations

import asyncio
import builtins
import copy
import decimal
import importlib.util
import inspect
import json
import os
import pickle
import resource
import signal
import sys
import time
from pathlib import Path

# the orchestrator's evaluator, by name: the simpleeval codemod's function, else builtin eval;
# and, wherever it is called from, builtin eval and simpleeval's evaluators (simple_eval builds a
# SimpleEval; every subclass with its own eval is hooked too)
EVALUATOR_NAMES = ("evaluate_condition", "eval")


def load_orchestrator(backend: Path):
    sys.path.insert(0, str(backend))
    path = backend / "app" / "core" / "pattern_orchestrator.py"
    spec = importlib.util.spec_from_file_location("app.core.pattern_orchestrator", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def bare_orchestrator(module):
    """An orchestrator without patterns or agents: enough to call _eval_condition."""
    return module.PatternOrchestrator.__new__(module.PatternOrchestrator)


def _soft_limit(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY and (value == resource.RLIM_INFINITY or value > hard):
        value = hard
    resource.setrlimit(which, (value, hard))


def limit_resources(cpu_s: int = 2, memory_mb: int = 768, file_kb: int = 64) -> None:
    """CPU seconds, address space and file size for the payload (soft limits, so the
    result can still be written afterwards; the parent's wall-clock timeout backs them)."""
    _soft_limit(resource.RLIMIT_CPU, cpu_s)
    _soft_limit(resource.RLIMIT_AS, memory_mb << 20)
    _soft_limit(resource.RLIMIT_FSIZE, file_kb << 10)


def _probe_one(module, expression: str, state: dict, result_path: Path) -> None:
    """In a forked child: evaluate one payload through the orchestrator's own _eval_condition,
    recording what its evaluator did (returned a value, or raised) and whether the state
    was touched."""
    seen: dict = {"called": False, "evaluator": ""}
    hook_evaluators(module, seen)
    before = json.dumps(state, sort_keys=True, default=repr)
    limit_resources()
    try:
        seen["returned"] = bare_orchestrator(module)._eval_condition(expression, state)
    except BaseException as exc:  # noqa: BLE001 - _eval_condition swallows errors; record if not
        seen.setdefault("outcome", "error")
        seen.setdefault("type", type(exc).__name__)
        seen.setdefault("detail", str(exc)[:200])
    _soft_limit(resource.RLIMIT_AS, resource.RLIM_INFINITY)
    seen["state_changed"] = json.dumps(state, sort_keys=True, default=repr) != before
    result_path.write_text(json.dumps(seen, default=repr))


def _recorder(real, label: str, seen: dict):
    """`real`, recording that it was reached, and what it returned or raised (the outermost
    hooked call's outcome wins: it is what the orchestrator saw)."""
    def recorder(*args, **kwargs):
        seen["called"] = True
        seen["evaluator"] = seen["evaluator"] or label
        try:
            value = real(*args, **kwargs)
        except BaseException as exc:
            seen.update(outcome="error", type=type(exc).__name__, detail=str(exc)[:200])
            raise
        seen.update(outcome="value", type=type(value).__name__, detail=_short_repr(value))
        return value
    return recorder


def hook_evaluators(module, seen: dict) -> list[str]:
    """Interpose a recorder on every way the orchestrator may evaluate a condition: its own
    evaluator function and `eval` (module globals shadow builtins), builtin eval, and the
    eval method of simpleeval's SimpleEval and each subclass defining its own (which covers
    simple_eval, a SimpleEval instance, and the codemod's ConditionEvaluator)."""
    hooked = []
    for name in EVALUATOR_NAMES:
        if name in vars(module) or name == "eval":
            setattr(module, name, _recorder(vars(module).get(name, builtins.eval), name, seen))
            hooked.append(name)
    builtins.eval = _recorder(builtins.eval, "builtins.eval", seen)
    try:   # also when the backend imports it only inside the evaluation
        simpleeval = importlib.import_module("simpleeval")
    except ImportError:
        simpleeval = None
    if simpleeval is not None:
        pending = [simpleeval.SimpleEval]
        while pending:
            cls = pending.pop()
            pending += cls.__subclasses__()
            if "eval" in vars(cls):
                cls.eval = _recorder(vars(cls)["eval"], f"{cls.__name__}.eval", seen)
                hooked.append(f"{cls.__name__}.eval")
    return hooked


def escape(backend: Path, workdir: Path) -> None:
    """Each payload of stdin's {"payloads", "state", "timeout_s", "workers", "canary"} in its
    own forked child, cwd workdir/N/sandbox, result in workdir/N/result.json; a child still
    running at timeout_s is killed (no result file). The canary (a plain condition) goes
    first, to workdir/canary/: proof that the hooks see the orchestrator's evaluation."""
    request = json.loads(sys.stdin.read())
    module = load_orchestrator(backend)      # loaded once; every child is a fork of this
    timeout_s, workers = float(request["timeout_s"]), int(request["workers"])
    pending = [("canary", request["canary"])] if request.get("canary") else []
    pending += list(enumerate(request["payloads"]))
    running: dict[int, float] = {}
    while pending or running:
        while pending and len(running) < workers:
            n, expression = pending.pop(0)
            sandbox = workdir / str(n) / "sandbox"
            sandbox.mkdir(parents=True)
            pid = os.fork()
            if pid == 0:  # child
                code = 0
                try:
                    os.chdir(sandbox)
                    _probe_one(module, expression, request["state"], workdir / str(n) / "result.json")
                except BaseException:  # noqa: BLE001 - no result file tells the parent
                    code = 1
                os._exit(code)
            running[pid] = time.monotonic() + timeout_s
        pid, _status = os.waitpid(-1, os.WNOHANG)
        if pid:
            running.pop(pid, None)
            continue
        now = time.monotonic()
        for pid, deadline in list(running.items()):
            if now > deadline:
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _short_repr(value) -> str:
    try:
        return repr(value)[:200]
    except Exception as exc:  # noqa: BLE001 - e.g. an int too long to print
        return f"<{type(value).__name__}: {type(exc).__name__}>"


def evaluate(backend: Path, samples_path: Path, conditions_path: Path, result_path: Path) -> None:
    """Every condition against every sample state, as the orchestrator decides it (bool)."""
    samples = pickle.loads(samples_path.read_bytes())
    conditions = json.loads(conditions_path.read_text())
    orch = bare_orchestrator(load_orchestrator(backend))
    matrix = [[bool(orch._eval_condition(c, copy.deepcopy(s["state"]))) for s in samples]
              for c in conditions]
    result_path.write_text(json.dumps({"labels": [s["label"] for s in samples], "matrix": matrix}))


def _zeroed(value):
    """The same state with every number set to 0: drives comparisons to their other side."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        return type(value)(0)
    if isinstance(value, dict):
        return {k: _zeroed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_zeroed(v) for v in value]
    return value


def capture(backend: Path, inputs_path: Path, samples_path: Path) -> None:
    """Run every pattern with the checkout's own orchestrator and agents on the real database,
    keeping the step state each condition was evaluated against (plus variants of it)."""
    module = load_orchestrator(backend)
    from app.core import database  # the checkout's pool, on DATABASE_URL

    inputs = json.loads(inputs_path.read_text())
    samples: list[dict] = []
    original = module.PatternOrchestrator._eval_condition
    current = {"pattern": ""}

    def recording(self, condition, state):
        samples.append({"label": f"{current['pattern']}: state at {condition!r}",
                        "state": copy.deepcopy(state)})
        return original(self, condition, state)

    module.PatternOrchestrator._eval_condition = recording

    async def run_all() -> dict:
        await database.init_pool()
        errors = {}
        try:
            orch = module.PatternOrchestrator()
            takes_rights = "rights" in inspect.signature(orch.run_pattern).parameters
            for pid in orch.list_patterns():
                current["pattern"] = pid
                kwargs = {"rights": ["patterns:execute"]} if takes_rights else {}
                try:
                    await orch.run_pattern(pid, dict(inputs), **kwargs)
                except Exception as exc:  # noqa: BLE001 - reported, the others still run
                    errors[pid] = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            await database.close_pool()
        return errors

    errors = asyncio.run(run_all())
    real = list(samples)
    samples += [{"label": s["label"] + " (numbers zeroed)", "state": _zeroed(s["state"])} for s in real]
    samples.append({"label": "inputs only", "state": {"inputs": dict(inputs)}})
    samples_path.write_bytes(pickle.dumps(samples))
    print(json.dumps({"captured": len(real), "samples": len(samples), "errors": errors}))


if __name__ == "__main__":
    mode, backend, *rest = sys.argv[1:]
    paths = [Path(p) for p in rest]
    {"escape": escape, "evaluate": evaluate, "capture": capture}[mode](Path(backend), *paths)

"""Pattern orchestrator: runs the JSON patterns in backend/patterns/.

A pattern is a list of steps; each step calls one agent capability ("agent.method") with
args rendered from templates:

    {"id": "valuation", "capability": "financial_analyst.get_valued_positions",
     "args": {"portfolio_id": "{{inputs.portfolio_id}}"}, "as": "valued_positions",
     "condition": "{{valued_positions.total_qty_open}} > 0"}

`{{inputs.x}}` reads the request inputs, `{{step_name.field}}` the output of an earlier
step. A template that is the whole string keeps the value's type; templates embedded in a
longer string are formatted with str(). A step whose condition is false is skipped.
"""
from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from app.agents import AgentRegistry, default_registry

log = logging.getLogger("dawsos.orchestrator")

TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
_MISSING = object()


class PatternNotFound(KeyError):
    pass


class StepFailed(RuntimeError):
    def __init__(self, pattern_id: str, step_id: str, error: Exception):
        super().__init__(f"pattern {pattern_id}: step {step_id} failed: {error}")
        self.pattern_id = pattern_id
        self.step_id = step_id
        self.error = error


def default_patterns_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "patterns"


class PatternOrchestrator:
    def __init__(self, patterns_dir: Path | None = None, registry: AgentRegistry | None = None):
        self.patterns_dir = Path(patterns_dir) if patterns_dir else default_patterns_dir()
        self.registry = registry or default_registry()
        self.patterns: dict[str, dict] = {}
        self.load_patterns()

    # ------------------------------------------------------------------ loading
    def load_patterns(self) -> None:
        self.patterns.clear()
        for path in sorted(self.patterns_dir.glob("*.json")):
            spec = json.loads(path.read_text(encoding="utf-8"))
            pattern_id = spec.get("id") or path.stem
            self.patterns[pattern_id] = spec
        log.info("loaded %d patterns from %s", len(self.patterns), self.patterns_dir)

    def list_patterns(self) -> list[str]:
        return sorted(self.patterns)

    def get_pattern(self, pattern_id: str) -> dict:
        try:
            return self.patterns[pattern_id]
        except KeyError:
            raise PatternNotFound(pattern_id) from None

    # ---------------------------------------------------------------- templates
    @staticmethod
    def _lookup(path: str, state: dict) -> Any:
        value: Any = state
        for part in path.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return _MISSING
        return value

    def _render(self, value: Any, state: dict) -> Any:
        if isinstance(value, str):
            whole = TEMPLATE_RE.fullmatch(value.strip())
            if whole:
                found = self._lookup(whole.group(1), state)
                return None if found is _MISSING else found

            def repl(m: re.Match) -> str:
                found = self._lookup(m.group(1), state)
                return "" if found is _MISSING or found is None else str(found)

            return TEMPLATE_RE.sub(repl, value)
        if isinstance(value, dict):
            return {k: self._render(v, state) for k, v in value.items()}
        if isinstance(value, list):
            return [self._render(v, state) for v in value]
        return value

    def _eval_condition(self, condition: str, state: dict) -> bool:
        """Evaluate a step condition such as "{{valued_positions.total_qty_open}} > 0".

        Templates are replaced by the repr of their value, then the expression is evaluated
        against the state. Any error means "condition false"."""
        try:
            def repl(m: re.Match) -> str:
                found = self._lookup(m.group(1), state)
                return repr(None if found is _MISSING else found)

            safe_condition = TEMPLATE_RE.sub(repl, condition)
            result = eval(safe_condition, {"__builtins__": {}}, state)
            return bool(result)
        except Exception as exc:  # noqa: BLE001 - a broken condition skips the step
            log.warning("condition %r failed: %s", condition, exc)
            return False

    # ---------------------------------------------------------------- execution
    async def run_pattern(self, pattern_id: str, inputs: dict, rights: list[str] | None = None) -> dict:
        spec = self.get_pattern(pattern_id)
        inputs = dict(inputs or {})
        for name, decl in (spec.get("inputs") or {}).items():
            if name not in inputs and "default" in decl:
                inputs[name] = decl["default"]
            if decl.get("required") and inputs.get(name) in (None, ""):
                raise ValueError(f"pattern {pattern_id}: missing required input {name!r}")
        # rights are carried along for the agents; authorization is not enforced yet.
        state: dict[str, Any] = {"inputs": inputs}
        context = {"pattern_id": pattern_id, "rights": list(rights or [])}
        trace: list[dict] = []
        outputs: dict[str, Any] = {}
        started = time.perf_counter()
        for step in spec.get("steps", []):
            step_id = step.get("id") or step["capability"]
            out_name = step.get("as") or step_id
            t0 = time.perf_counter()
            condition = step.get("condition")
            if condition and not self._eval_condition(condition, state):
                trace.append({"step": step_id, "capability": step["capability"], "skipped": True,
                              "ms": round((time.perf_counter() - t0) * 1000, 2)})
                continue
            try:
                args = self._render(step.get("args") or {}, state)
                result = await self.registry.call(step["capability"], args, context)
            except Exception as exc:
                raise StepFailed(pattern_id, step_id, exc) from exc
            state[out_name] = result
            outputs[out_name] = result
            trace.append({"step": step_id, "capability": step["capability"], "skipped": False,
                          "ms": round((time.perf_counter() - t0) * 1000, 2)})
        wanted = spec.get("outputs") or list(outputs)
        data = {name: outputs[name] for name in wanted if name in outputs}
        return {"pattern_id": pattern_id, "data": data, "trace": trace,
                "ms": round((time.perf_counter() - started) * 1000, 2)}

"""Pattern smoke tests: every pattern through the real API, every panel non-blank.

Panels are the ones the UI renders: the frontend registry's (`patternRegistry`, wherever the
frontend keeps it) while it defines them, else the pattern's own `display.panels` (Week 1
moves them there). Each pattern gets the sample inputs it declares, and only those.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runbook.errors import RunbookError
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.target import DAWSOS
from runbook.tasks.code.frontend_registry import registry_panels

PATTERNS = Path(DAWSOS.patterns_dir)


@dataclass
class PatternRun:
    pattern: str
    status: str            # "ok" | "error" | "blank"
    http: int | None = None
    rows: int = 0
    ms: float = 0.0
    problems: list[str] = field(default_factory=list)


def pattern_ids(checkout: Path) -> list[str]:
    ids = sorted(p.stem for p in (Path(checkout) / PATTERNS).glob("*.json"))
    if not ids:
        raise RunbookError(f"no pattern JSON in {Path(checkout) / PATTERNS}")
    return ids


def load_pattern(checkout: Path, pattern_id: str) -> dict:
    path = Path(checkout) / PATTERNS / f"{pattern_id}.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunbookError(f"{path}: malformed pattern JSON at line {exc.lineno}: {exc.msg}") from None


def backend_panels(spec: dict) -> list[dict]:
    return (spec.get("display") or {}).get("panels") or []


def rendered_panels(checkout: Path) -> dict[str, list[dict]]:
    """pattern id -> the panels the UI renders for it (see the module docstring)."""
    frontend = registry_panels(checkout, DAWSOS.frontend_registry)
    return {pid: frontend.get(pid) or backend_panels(load_pattern(checkout, pid))
            for pid in pattern_ids(checkout)}


def panel_columns(panel: dict) -> list[dict]:
    """A table panel's columns: at the top level of the panel or in its config."""
    cols = panel.get("columns")
    if cols is None:
        cols = (panel.get("config") or {}).get("columns")
    return [c for c in cols or [] if isinstance(c, dict)]


def declared_inputs(spec: dict, inputs: dict) -> dict:
    """The sample inputs the pattern declares (all of them when it declares none)."""
    declared = spec.get("inputs")
    return {k: v for k, v in inputs.items() if k in declared} if isinstance(declared, dict) else dict(inputs)


def sample_inputs(database_url: str) -> dict[str, str]:
    """A portfolio with open lots and one of its securities: inputs every pattern accepts."""
    with connect(database_url) as conn:
        # works before and after the rename: read the open quantity under either name
        row = conn.execute(
            """SELECT p.id::text, s.id::text, s.symbol
                 FROM (SELECT id FROM portfolios ORDER BY id LIMIT 1) p
                 JOIN lots l ON l.portfolio_id = p.id
                  AND coalesce(to_jsonb(l) ->> 'quantity_open', to_jsonb(l) ->> 'qty_open')::numeric > 0
                 JOIN securities s ON s.id = l.security_id
                ORDER BY s.symbol LIMIT 1""").fetchone()
    if not row:
        raise RunbookError("smoke: no portfolio with lots found in the target database")
    return {"portfolio_id": row[0], "security_id": row[1], "symbol": row[2]}


def resolve(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def panel_problems(data: dict, panel: dict) -> tuple[list[str], int]:
    """Why a panel would render blank or wrong on this response: no dataPath, a dataPath that
    resolves to nothing, a column field or metric key absent from the resolved data. And how
    many rows it would show."""
    pid, path = panel.get("id", "?"), panel.get("dataPath")
    if not isinstance(path, str) or not path:
        return [f"panel {pid}: no dataPath"], 0
    value = resolve(data, path)
    if value in (None, [], {}, ""):
        return [f"panel {pid}: {path} resolves to nothing"], 0
    problems = []
    rows = value if isinstance(value, list) else [value]
    first = rows[0] if isinstance(rows[0], dict) else {}
    missing = [c.get("field") for c in panel_columns(panel) if c.get("field") not in first]
    if missing:
        problems.append(f"panel {pid}: rows of {path} lack column field {', '.join(map(str, missing))}")
    keys = [m.get("key") for m in (panel.get("config") or {}).get("metrics") or [] if isinstance(m, dict)]
    absent = [k for k in keys if not isinstance(value, dict) or k not in value]
    if absent:
        problems.append(f"panel {pid}: {path} lacks metric key {', '.join(map(str, absent))}")
    return problems, len(rows)


def blank_reasons(data: dict, panels: list[dict]) -> tuple[list[str], int]:
    problems, rows = [], 0
    for panel in panels:
        p, n = panel_problems(data, panel)
        problems += p
        rows += n
    return problems, rows


def execute(client: httpx.Client, base_url: str, pattern_id: str, inputs: Any,
            headers: dict | None = None) -> httpx.Response:
    """One request to the target's pattern route (inputs sent as given)."""
    return client.post(f"{base_url}{DAWSOS.execute_route.format(pattern_id=pattern_id)}",
                       json={"inputs": inputs}, headers=headers or {})


def run_pattern(client: httpx.Client, base_url: str, checkout: Path, pattern_id: str,
                inputs: dict, headers: dict | None = None, panels: list[dict] | None = None) -> PatternRun:
    start = time.perf_counter()
    try:
        r = execute(client, base_url, pattern_id,
                    declared_inputs(load_pattern(checkout, pattern_id), inputs), headers)
    except httpx.HTTPError as exc:
        return PatternRun(pattern_id, "error", None, 0, (time.perf_counter() - start) * 1000,
                          [f"request failed: {type(exc).__name__}"])
    ms = (time.perf_counter() - start) * 1000
    if r.status_code != 200:
        return PatternRun(pattern_id, "error", r.status_code, 0, ms, [r.text[:300]])
    if panels is None:
        panels = rendered_panels(checkout)[pattern_id]
    problems, rows = blank_reasons(r.json().get("data", {}), panels)
    return PatternRun(pattern_id, "blank" if problems else "ok", 200, rows, ms, problems)


@gate('smoke:patterns', checks='every pattern executes through the API with no blank panel (no pattern JSON found fails)',
      runs_in='every plan day after its changes; scheduled verification; rollback')
def smoke(base_url: str, checkout: Path, database_url: str, headers: dict | None = None,
          timeout_s: float = 60) -> tuple[GateResult, list[PatternRun]]:
    inputs = sample_inputs(database_url)
    panels = rendered_panels(checkout)
    with httpx.Client(timeout=timeout_s) as client:
        runs = [run_pattern(client, base_url, checkout, pid, inputs, headers, panels[pid])
                for pid in pattern_ids(checkout)]
    bad = [r for r in runs if r.status != "ok"]
    result = GateResult(
        name="smoke:patterns", passed=not bad,
        expectation="every pattern executes through the API with no blank panel",
        observed=f"{len(runs) - len(bad)}/{len(runs)} ok", expected=f"{len(runs)}/{len(runs)} ok",
        sample=[{"pattern": r.pattern, "status": r.status, "http": r.http,
                 "problem": "; ".join(r.problems)[:200]} for r in bad],
        details={"latency_ms": {r.pattern: round(r.ms, 1) for r in runs},
                 "rows": {r.pattern: r.rows for r in runs}})
    return result, runs

"""Pattern smoke tests: every pattern through the real API, every panel non-blank.

Panels come from the pattern's own `display.panels` (after Week 1) or, before that, from the
frontend registry (frontend/src/patternRegistry.json) — the same definitions the UI renders.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runbook.errors import RunbookError
from runbook.gate_result import GateResult
from runbook.pg import connect

REGISTRY = Path("frontend/src/patternRegistry.json")
PATTERNS = Path("backend/patterns")


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


def panels_for(checkout: Path, pattern_id: str) -> list[dict]:
    display = load_pattern(checkout, pattern_id).get("display") or {}
    if display.get("panels"):
        return display["panels"]
    registry_path = Path(checkout) / REGISTRY
    if registry_path.exists():
        try:
            return json.loads(registry_path.read_text()).get(pattern_id, {}).get("panels", [])
        except json.JSONDecodeError as exc:
            raise RunbookError(f"{registry_path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    return []


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


def blank_reasons(data: dict, panels: list[dict]) -> tuple[list[str], int]:
    problems, rows = [], 0
    for panel in panels:
        value = resolve(data, panel.get("dataPath", ""))
        pid = panel.get("id", "?")
        if value in (None, [], {}, ""):
            problems.append(f"panel {pid}: {panel.get('dataPath')} is empty")
            continue
        if isinstance(value, list):
            rows += len(value)
            first = value[0] if isinstance(value[0], dict) else {}
            missing = [c["field"] for c in panel.get("columns", []) if c.get("field") not in first]
            if missing:
                problems.append(f"panel {pid}: rows lack {', '.join(missing)}")
        else:
            rows += 1
    return problems, rows


def run_pattern(client: httpx.Client, base_url: str, checkout: Path, pattern_id: str,
                inputs: dict, headers: dict | None = None) -> PatternRun:
    start = time.perf_counter()
    try:
        r = client.post(f"{base_url}/api/patterns/{pattern_id}/execute", json={"inputs": inputs},
                        headers=headers or {})
    except httpx.HTTPError as exc:
        return PatternRun(pattern_id, "error", None, 0, (time.perf_counter() - start) * 1000,
                          [f"request failed: {type(exc).__name__}"])
    ms = (time.perf_counter() - start) * 1000
    if r.status_code != 200:
        return PatternRun(pattern_id, "error", r.status_code, 0, ms, [r.text[:300]])
    problems, rows = blank_reasons(r.json().get("data", {}), panels_for(checkout, pattern_id))
    return PatternRun(pattern_id, "blank" if problems else "ok", 200, rows, ms, problems)


def smoke(base_url: str, checkout: Path, database_url: str, headers: dict | None = None,
          timeout_s: float = 60) -> tuple[GateResult, list[PatternRun]]:
    inputs = sample_inputs(database_url)
    with httpx.Client(timeout=timeout_s) as client:
        runs = [run_pattern(client, base_url, checkout, pid, inputs, headers)
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

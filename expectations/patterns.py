"""Checks of the pattern system (plan Week 1): the pattern JSON's panels, their dataPaths on
live responses, the input models as the API enforces them, and backend/frontend panel parity.

The live checks are black-box: they call the running API with real inputs and compare what
comes back with the pattern JSON of the checkout it serves.
"""
from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from runbook.expectations.authorization import _audit
from runbook.expectations.smoke import (
    backend_panels,
    declared_inputs,
    execute,
    load_pattern,
    panel_columns,
    panel_problems,
    pattern_ids,
    sample_inputs,
)
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.target import DAWSOS
from runbook.tasks.code.frontend_panels import panel_reads
from runbook.tasks.code.frontend_registry import candidates, find_registry
from runbook.tasks.code.js_literal import JSON_SUFFIXES, scripts
from runbook.tasks.code.rename import find_old_names

REQUIRED_PANEL_KEYS = ("id", "title", "type", "dataPath")


def line_of(source: bytes, offset: int) -> int:
    return source.count(b"\n", 0, offset) + 1


def _result(name: str, expectation: str, problems: list[dict], checked: int, unit: str,
            details: dict | None = None) -> GateResult:
    return GateResult(name=name, passed=not problems and checked > 0, expectation=expectation,
                      observed=f"{len(problems)} problems in {checked} {unit}" if checked else f"no {unit}",
                      expected=f"0 problems, at least one {unit[:-1]}", sample=problems[:50],
                      details=details or {})


def _specs(checkout: Path) -> dict[str, dict]:
    return {pid: load_pattern(checkout, pid) for pid in pattern_ids(checkout)}


# -------------------------------------------------------------------------------- static

@gate('pattern-json', checks='every pattern JSON lists its panels with id, title, type and dataPath',
      runs_in='Week 1 Day 3-5; scheduled verification')
def pattern_json_gate(checkout: Path) -> GateResult:
    """Every pattern JSON declares display.panels, each with an id, title, type and dataPath,
    ids unique within the pattern, table columns naming a field."""
    problems, checked = [], 0
    for pid, spec in _specs(checkout).items():
        panels = backend_panels(spec)
        if not isinstance(panels, list) or not panels:
            problems.append({"pattern": pid, "panel": "", "problem": "no display.panels"})
            continue
        for panel_id, n in Counter(p.get("id") for p in panels if isinstance(p, dict)).items():
            if n > 1:
                problems.append({"pattern": pid, "panel": panel_id, "problem": f"id used by {n} panels"})
        for p in panels:
            checked += 1
            if not isinstance(p, dict):
                problems.append({"pattern": pid, "panel": "", "problem": "panel is not an object"})
                continue
            missing = [k for k in REQUIRED_PANEL_KEYS if not isinstance(p.get(k), str) or not p[k]]
            if missing:
                problems.append({"pattern": pid, "panel": p.get("id", ""), "problem": f"no {', '.join(missing)}"})
            if any(not isinstance(c.get("field"), str) for c in panel_columns(p)):
                problems.append({"pattern": pid, "panel": p.get("id", ""), "problem": "a column has no field"})
    return _result("pattern-json", "every pattern JSON lists its panels, each with id, title, type "
                   "and dataPath (ids unique, columns with a field)", problems, checked, "panels")


@gate('pattern-names', checks='no old field name in the pattern JSON or the frontend registry',
      runs_in='Week 1 Day 3-5')
def pattern_names_gate(checkout: Path) -> GateResult:
    """No old field name left in the pattern JSON or the frontend registry (plan Week 1 success
    criterion 1), by the rename's boundary rule."""
    reg = find_registry(checkout, DAWSOS.frontend_registry, required=False)
    scope = (DAWSOS.patterns_dir.rstrip("/") + "/", reg.path if reg else None)
    found, _near = find_old_names(checkout, list(DAWSOS.code_renames))
    hits = [o for o in found if o.path.startswith(scope[0]) or o.path == scope[1]]
    checked = len(pattern_ids(checkout))
    return _result("pattern-names", "0 occurrences of " + ", ".join(DAWSOS.code_renames)
                   + " in the pattern JSON and the frontend registry",
                   [{"file": o.path, "line": o.line, "name": o.name, "text": o.text.strip()[:120]}
                    for o in hits], checked, "patterns")


def frontend_panel_definitions(checkout: Path) -> list[dict]:
    """Panel definitions still in the frontend: registry entries with panels, and code reading
    panels from a registry entry."""
    out = []
    reg = find_registry(checkout, DAWSOS.frontend_registry, required=False)
    if reg is None:
        return out
    out += [{"pattern": pid, "where": reg.path, "problem": "registry entry still defines panels"}
            for pid in reg.with_panels()]
    for path in candidates(checkout, DAWSOS.frontend_registry):
        if path.suffix.lower() in JSON_SUFFIXES:
            continue
        rel = path.relative_to(checkout).as_posix()
        for script in scripts(rel, path.read_bytes()):
            edits, _done, unresolved = panel_reads(script, DAWSOS.frontend_registry,
                                                   DAWSOS.frontend_execute_call)
            out += [{"pattern": "", "where": f"{rel}:{line_of(script.source, start)}",
                     "problem": "frontend reads panels from the registry"} for start, _e, _t in edits]
            out += [{"pattern": "", "where": u, "problem": "frontend reads panels from the registry"}
                    for u in unresolved]
    return out


# -------------------------------------------------------------------------------- live

def _responses(base_url: str, checkout: Path, database_url: str, headers: dict | None,
               ) -> tuple[dict[str, dict], dict[str, Any], list[dict]]:
    """Each pattern run once with the sample inputs it declares: specs, bodies, failures."""
    specs, inputs = _specs(checkout), sample_inputs(database_url)
    bodies, problems = {}, []
    with httpx.Client(timeout=60) as client:
        for pid, spec in specs.items():
            try:
                r = execute(client, base_url, pid, declared_inputs(spec, inputs), headers)
            except httpx.HTTPError as exc:
                problems.append({"pattern": pid, "panel": "", "problem": f"request failed: {type(exc).__name__}"})
                continue
            if r.status_code != 200:
                problems.append({"pattern": pid, "panel": "", "problem": f"HTTP {r.status_code}: {r.text[:150]}"})
                continue
            bodies[pid] = r.json()
    return specs, bodies, problems


@gate('panel-datapaths', checks="every panel's dataPath resolves to data in its pattern's live response",
      runs_in='Week 1 Day 3-5; scheduled verification')
def panel_datapath_gate(base_url: str, checkout: Path, database_url: str,
                        headers: dict | None = None) -> GateResult:
    """Every panel of every pattern JSON has a dataPath that resolves to data in the pattern's
    live response; a table's column fields and a grid's metric keys exist in what it resolves to."""
    specs, bodies, problems = _responses(base_url, checkout, database_url, headers)
    checked = 0
    for pid, body in bodies.items():
        panels = backend_panels(specs[pid])
        if not panels:
            problems.append({"pattern": pid, "panel": "", "problem": "no display.panels in the pattern JSON"})
        for panel in panels:
            checked += 1
            problems += [{"pattern": pid, "panel": panel.get("id", ""), "problem": p}
                         for p in panel_problems(body.get("data") or {}, panel)[0]]
    return _result("panel-datapaths", "every panel's dataPath resolves to data in its pattern's live "
                   "response (columns and metric keys present)", problems, checked, "panels")


@gate('panel-parity', checks="every response carries its pattern JSON's panels; none left in the frontend",
      runs_in='Week 1 Day 3-5; scheduled verification')
def panel_parity_gate(base_url: str, checkout: Path, database_url: str,
                      headers: dict | None = None) -> GateResult:
    """Each live response's panel metadata equals the pattern JSON's panels, and the frontend
    defines no panel of its own any more."""
    specs, bodies, problems = _responses(base_url, checkout, database_url, headers)
    for pid, body in bodies.items():
        served = (body.get("display") or {}).get("panels") if isinstance(body.get("display"), dict) else None
        declared = backend_panels(specs[pid])
        if served is None:
            problems.append({"pattern": pid, "where": "response", "problem": "no display.panels in the response"})
        elif served != declared:
            ids = [p.get("id") for p in served] if isinstance(served, list) else served
            problems.append({"pattern": pid, "where": "response",
                             "problem": f"panels {ids} differ from the pattern JSON's "
                                        f"{[p.get('id') for p in declared]}"})
    problems += frontend_panel_definitions(checkout)
    return _result("panel-parity", "every response carries its pattern JSON's panels; no panel "
                   "definition left in the frontend", problems, len(bodies), "responses")


# ---------------------------------------------------------------------- input models

SAMPLES = {"uuid": lambda: str(uuid.uuid4()), "integer": lambda: 1, "number": lambda: 1.5,
           "boolean": lambda: True, "date": lambda: "2025-01-02", "string": lambda: "x",
           "array": list, "object": dict}
# a value of the wrong type for each declared type (for a uuid: a malformed one)
WRONG = {"uuid": "not-a-uuid", "integer": "not-a-number", "number": "not-a-number",
         "boolean": "not-a-boolean", "date": "not-a-date", "string": 12345, "array": "not-a-list",
         "object": "not-an-object"}
UNKNOWN = "runbook_unknown_input"


def input_cases(spec: dict, valid: dict) -> list[tuple[str, dict, str]]:
    """(case, inputs, the field the 422 must name) for one pattern, from its declarations."""
    cases = []
    for name, decl in (spec.get("inputs") or {}).items():
        if not isinstance(decl, dict):
            continue
        if decl.get("required"):
            cases.append((f"missing required {name}", {k: v for k, v in valid.items() if k != name}, name))
        kind = "enum" if decl.get("enum") else decl.get("type", "string")
        bad = "not-one-of-them" if kind == "enum" else WRONG.get(kind)
        if bad is not None:
            label = "malformed UUID" if kind == "uuid" else f"wrong type for {kind}"
            cases.append((f"{label} {name}", {**valid, name: bad}, name))
    cases.append(("unknown input", {**valid, UNKNOWN: 1}, UNKNOWN))
    return cases


def valid_inputs(spec: dict, sample: dict) -> dict:
    """The sample inputs the pattern declares, plus a value for any other required input."""
    out = declared_inputs(spec, sample)
    for name, decl in (spec.get("inputs") or {}).items():
        if isinstance(decl, dict) and decl.get("required") and name not in out:
            out[name] = decl["enum"][0] if decl.get("enum") else SAMPLES.get(decl.get("type", "string"), str)()
    return out


def _names_field(body: Any, pid: str, field: str) -> str | None:
    """Why a 422 body is not the documented shape naming `field` (None when it is)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, dict) or detail.get("error") != "invalid_inputs" or detail.get("pattern_id") != pid:
        return f"body is not the documented error shape: {str(body)[:120]}"
    errors = detail.get("errors")
    if not isinstance(errors, list) or not all(isinstance(e, dict) and {"field", "type", "message"} <= set(e)
                                               for e in errors):
        return f"errors are not [{{field, type, message}}]: {str(errors)[:120]}"
    if field not in [e["field"] for e in errors]:
        return f"errors name {[e['field'] for e in errors]}, not {field}"
    return None


@gate('input-models', checks='invalid inputs get 422 naming the field and run nothing; valid inputs run',
      runs_in='Week 1 Day 3-5; scheduled verification')
def input_models_gate(base_url: str, checkout: Path, database_url: str,
                      headers: Callable[[str], dict] | None = None,
                      audit: Callable[[str, str], dict[str, int]] = _audit) -> GateResult:
    """For every pattern: inputs made invalid from its declarations (missing required, wrong
    type, malformed UUID, unknown input) get 422 naming the field in the documented shape, and
    run nothing (no audit row); its valid inputs get 200 and exactly one audit row — the
    proof that the audit would have seen a run. Probe requests carry a unique marker right, so
    their audit rows are told apart from other traffic. `headers(user)`: the headers of a
    caller (a bearer token) whose verified user is `user`, the marker its audit rows carry."""
    specs, sample = _specs(checkout), sample_inputs(database_url)
    problems, checked = [], 0
    with httpx.Client(timeout=60) as client:
        for pid, spec in specs.items():
            marker = f"runbook-probe:{uuid.uuid4().hex[:12]}-inputs"
            h = headers(marker) if headers else {}
            valid = valid_inputs(spec, sample)
            for case, inputs, field in input_cases(spec, valid):
                checked += 1
                r = execute(client, base_url, pid, inputs, h)
                if r.status_code != 422:
                    problems.append({"pattern": pid, "case": case, "problem": f"HTTP {r.status_code}, expected 422"})
                    continue
                why = _names_field(r.json(), pid, field)
                if why:
                    problems.append({"pattern": pid, "case": case, "problem": why})
            try:
                ran = audit(database_url, marker)
            except Exception as exc:  # noqa: BLE001 - no audit: nothing proves "nothing ran"
                first = str(exc).splitlines()[0][:120] if str(exc) else ""
                problems.append({"pattern": pid, "case": "audit", "problem": f"audit_log unreadable "
                                 f"({type(exc).__name__}: {first}): cannot prove refused inputs ran nothing"})
                break
            if ran:
                problems.append({"pattern": pid, "case": "refused requests", "problem": f"audit rows {ran}: they ran"})
            r = execute(client, base_url, pid, valid, h)
            if r.status_code != 200:
                problems.append({"pattern": pid, "case": "valid inputs", "problem": f"HTTP {r.status_code}: {r.text[:150]}"})
            elif audit(database_url, marker).get("pattern.execute") != 1:
                problems.append({"pattern": pid, "case": "valid inputs",
                                 "problem": "a valid run left no audit row: cannot prove refused ones ran nothing"})
    return _result("input-models", "every pattern refuses invalid inputs with 422 naming the field "
                   "(documented shape) and runs nothing; valid inputs run", problems, checked, "cases")

"""Codemod (plan Week 1, Task 4.3 steps 2-3): the frontend reads panels from the backend.

- The orchestrator's pattern response carries the pattern's panel metadata
  (`"display": {"panels": [...]}` beside `data`), from the pattern JSON (libcst).
- Every read of panels from a registry entry in the frontend (`patternRegistry[p].display.panels`,
  or through a variable bound to `patternRegistry[p]`) reads the pattern response instead
  (the variable bound to `await ….executePattern(…)` in the same function).
- The registry keeps only what is not a panel (name, icon, category, …): each entry's
  `panels` (and a `display` left empty by that) is removed, whole lines where it stands on its
  own lines.

Run it after `panels` (which moved the definitions): an entry whose panels are not all in the
pattern JSON yet is refused, so nothing is lost. A read it cannot rewrite is an error naming
its line, and nothing is changed. Re-running it changes nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from runbook.errors import RunbookError
from runbook.target import DAWSOS
from runbook.tasks.code.frontend_registry import Registry, candidates, find_registry
from runbook.tasks.code.js_literal import JSON_SUFFIXES, Script, apply_edits, scripts
from runbook.tasks.code.python_source import code_of, parse_python
from runbook.tasks.code.text_diff import diff_files

FUNCTIONS = {"function_declaration", "function_expression", "arrow_function", "method_definition",
             "generator_function_declaration", "function"}


@dataclass
class FrontendPanelsReport:
    registry: str = ""
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    reads_rewritten: list[str] = field(default_factory=list)
    entries_stripped: list[str] = field(default_factory=list)
    response: str = ""

    def diff(self) -> str:
        return diff_files(self.files)

    def as_dict(self) -> dict:
        return {"registry": self.registry, "files": len(self.files), "changed": sorted(self.files),
                "response": self.response, "reads_rewritten": self.reads_rewritten,
                "entries_stripped": self.entries_stripped, "diff": self.diff()}


# --------------------------------------------------------------------------- the backend

RESPONSE_PANELS = '{{"panels": ({spec}.get("display") or {{}}).get("panels") or []}}'


class _Response(cst.CSTTransformer):
    """In PatternOrchestrator.run_pattern: `"display": ...` added to each returned dict that
    carries "data", built from the variable holding the pattern spec."""

    def __init__(self, path: str):
        self.path = path
        self.spec: str | None = None
        self.depth = 0
        self.changed = self.found = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if self.depth:
            self.depth += 1
            return True
        if node.name.value == "run_pattern":
            self.depth = 1
            for stmt in node.body.body:
                if isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], cst.Assign):
                    assign = stmt.body[0]
                    code = code_of(assign.value)
                    if ("get_pattern(" in code or "self.patterns" in code) and \
                            isinstance(assign.targets[0].target, cst.Name):
                        self.spec = assign.targets[0].target.value
                        break
        return True

    def leave_FunctionDef(self, original, updated):
        if self.depth:
            self.depth -= 1
        return updated

    def leave_Return(self, original: cst.Return, updated: cst.Return) -> cst.Return:
        value = updated.value
        if self.depth != 1 or not isinstance(value, cst.Dict):
            return updated
        keys = {e.key.evaluated_value for e in value.elements
                if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)}
        if "data" not in keys:
            return updated
        self.found += 1
        if "display" in keys:
            return updated
        if self.spec is None:
            raise RunbookError(f"{self.path}: run_pattern: no variable holding the pattern spec "
                               "(`spec = self.get_pattern(...)` or `self.patterns...`)")
        element = cst.DictElement(cst.SimpleString('"display"'),
                                  cst.parse_expression(RESPONSE_PANELS.format(spec=self.spec)))
        # the new element on a line of its own when the dict spans lines
        breaks = [e.comma for e in value.elements if isinstance(e.comma, cst.Comma)
                  and isinstance(e.comma.whitespace_after, cst.ParenthesizedWhitespace)]
        comma = breaks[0] if breaks else cst.MaybeSentinel.DEFAULT
        last = value.elements[-1]
        elements = [*value.elements[:-1], last.with_changes(comma=comma), element]
        self.changed += 1
        return updated.with_changes(value=value.with_changes(elements=elements))


def response_carries_panels(source: str, path: str) -> str:
    module = parse_python(source, path)
    t = _Response(path)
    module = module.visit(t)
    if not t.found:
        raise RunbookError(f"{path}: run_pattern returns no dict with a \"data\" key to add the panels to")
    return module.code


# --------------------------------------------------------------------------- the frontend

def _node_at(script: Script, span: tuple[int, int]):
    start, end = span[0] - script.offset, span[1] - script.offset
    node = script.tree.root_node.descendant_for_byte_range(start, end)
    while node is not None and (node.start_byte, node.end_byte) != (start, end):
        node = node.parent
    return node


def _siblings(node) -> list:
    return [c for c in node.parent.named_children if c.type != "comment"]


def _removal(script: Script, pair, json_file: bool) -> list[tuple[int, int, bytes]]:
    """Edits that remove one pair of an object literal: whole lines where it has its own lines
    (the previous member keeps its comma in JS, loses it in JSON when the pair was last)."""
    src = script.source
    start, end = script.span(pair)
    siblings = _siblings(pair)
    i = siblings.index(pair)
    line_start = src.rfind(b"\n", 0, start) + 1
    after = end
    while after < len(src) and src[after:after + 1] in (b",", b" ", b"\t"):
        after += 1
    own_lines = not src[line_start:start].strip() and src[after:after + 1] in (b"\n", b"\r", b"")
    edits = []
    if own_lines:
        edits.append((line_start, after + (2 if src[after:after + 2] == b"\r\n" else 1), b""))
        if json_file and i == len(siblings) - 1 and i > 0:
            prev_end = script.span(siblings[i - 1])[1]
            if src[prev_end:prev_end + 1] == b",":
                edits.append((prev_end, prev_end + 1, b""))
    elif i + 1 < len(siblings):
        edits.append((start, script.span(siblings[i + 1])[0], b""))
    elif i > 0:
        edits.append((script.span(siblings[i - 1])[1], end, b""))
    else:
        edits.append((start, end, b""))
    return edits


def _strip_entries(reg: Registry, json_file: bool, report: FrontendPanelsReport) -> list:
    edits = []
    for pid, entry in reg.entries.items():
        if entry.panels_pair is None:
            continue
        only_panels = entry.display_pair is not None and entry.display_keys == ("panels",)
        span = entry.display_pair if only_panels else entry.panels_pair
        edits += _removal(reg.script, _node_at(reg.script, span), json_file)
        report.entries_stripped.append(f"{pid}: {'display' if only_panels else 'panels'} removed")
    return edits


def _enclosing_function(node):
    while node is not None and node.type not in FUNCTIONS:
        node = node.parent
    return node


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _is_lookup(node, name: str) -> bool:
    return node.type == "subscript_expression" and node.child_by_field_name("object").text.decode() == name


def _bound_to(scope, ident: str, test) -> list:
    """Declarators `ident = <value>` in scope whose value passes test."""
    out = []
    for n in _walk(scope):
        if n.type == "variable_declarator":
            name, value = n.child_by_field_name("name"), n.child_by_field_name("value")
            if name is not None and value is not None and (ident is None or name.text.decode() == ident) \
                    and test(value):
                out.append(n)
    return out


def _awaits_execute(value, call: str) -> bool:
    if value.type != "await_expression":
        return False
    inner = value.named_children[0]
    if inner.type != "call_expression":
        return False
    fn = inner.child_by_field_name("function")
    last = fn.child_by_field_name("property") if fn.type == "member_expression" else fn
    return last is not None and last.text.decode() == call


def panel_reads(script: Script, name: str, call: str) -> tuple[list[tuple[int, int, bytes]], list[str], list[str]]:
    """Edits turning panel reads from registry entries into reads from the response."""
    edits, done, unresolved = [], [], []
    for node in _walk(script.tree.root_node):
        if node.type != "member_expression" or node.child_by_field_name("property").text != b"panels":
            continue
        base = node.child_by_field_name("object")
        if base.type == "member_expression" and base.child_by_field_name("property").text == b"display":
            base = base.child_by_field_name("object")
        scope = _enclosing_function(node) or script.tree.root_node
        is_entry = _is_lookup(base, name) or (
            base.type == "identifier"
            and _bound_to(scope, base.text.decode(), lambda v: _is_lookup(v, name)))
        if not is_entry:
            continue
        line = script.line_of(node)
        responses = [d for d in _bound_to(scope, None, lambda v: _awaits_execute(v, call))
                     if d.start_byte < node.start_byte]
        if not responses:
            unresolved.append(f"{script.path}:{line}: `{node.text.decode()}` (no `await …{call}(…)` "
                              "result in the same function)")
            continue
        resp = responses[-1].child_by_field_name("name").text.decode()
        start, end = script.span(node)
        edits.append((start, end, f"{resp}.display.panels".encode()))
        done.append(f"{script.path}:{line}: {node.text.decode()} -> {resp}.display.panels")
    return edits, done, unresolved


def _unmoved(repo: Path, reg: Registry) -> list[str]:
    """Registry panels whose dataPath no panel of the pattern JSON has yet."""
    missing = []
    for pid, entry in reg.entries.items():
        if entry.panels_pair is None:
            continue
        path = repo / DAWSOS.patterns_dir / f"{pid}.json"
        backend = json.loads(path.read_text()).get("display", {}).get("panels", []) if path.exists() else []
        paths = {p.get("dataPath") for p in backend}
        missing += [f"{pid}/{p.get('id')}" for p in entry.panels if p.get("dataPath") not in paths]
    return missing


def read_panels_from_backend(repo: Path, dry_run: bool = False) -> FrontendPanelsReport:
    repo = Path(repo)
    reg = find_registry(repo, DAWSOS.frontend_registry)
    report = FrontendPanelsReport(registry=reg.path)
    unmoved = _unmoved(repo, reg)
    if unmoved:
        raise RunbookError(f"{len(unmoved)} registry panels are not in the pattern JSON yet "
                           f"(run `runbook codemod panels` first): {', '.join(unmoved[:10])}")
    orch = repo / DAWSOS.orchestrator
    if not orch.is_file():
        raise RunbookError(f"{orch}: not found")
    old_orch = orch.read_text(encoding="utf-8")
    new_orch = response_carries_panels(old_orch, DAWSOS.orchestrator)
    report.response = "run_pattern response carries display.panels"
    if new_orch != old_orch:
        report.files[DAWSOS.orchestrator] = (old_orch, new_orch)
    # the frontend: every file that reads panels from the registry (the registry's own, first)
    new_sources: dict[str, bytes] = {}
    unresolved: list[str] = []
    for path in candidates(repo, DAWSOS.frontend_registry):
        rel = path.relative_to(repo).as_posix()
        source = path.read_bytes()
        json_file = path.suffix.lower() in JSON_SUFFIXES
        edits = _strip_entries(reg, json_file, report) if rel == reg.path else []
        if not json_file:
            for script in scripts(rel, source):
                e, done, bad = panel_reads(script, DAWSOS.frontend_registry, DAWSOS.frontend_execute_call)
                edits += e
                report.reads_rewritten += done
                unresolved += bad
        if edits:
            new_sources[rel] = apply_edits(source, edits)
            report.files[rel] = (source.decode(), new_sources[rel].decode())
    if unresolved:
        raise RunbookError(f"{len(unresolved)} panel reads could not be pointed at the pattern "
                           "response: " + "; ".join(unresolved))
    if not dry_run:
        for rel, (_old, new) in report.files.items():
            (repo / rel).write_bytes(new.encode())
    return report

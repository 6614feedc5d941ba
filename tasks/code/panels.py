"""Codemod (plan Week 1, Task 4.1 steps 2-3, Task 4.3 step 1): the frontend registry's panel
definitions move into the backend pattern JSON.

Frontend and backend panels of a pattern are paired by id, then by (title, type). A paired
backend panel gains what only the frontend had — `dataPath`, `columns`, `config` (merged key by
key) and any other key it lacks; a value both sides hold differently is a conflict: the
backend's is kept and the conflict listed. A frontend panel with no partner is added to the
backend; a backend panel with no partner is kept, and given the `dataPath` of the pattern
output of its own name when there is one. Every pairing by title, every unmatched panel and
every conflict is in the report. JSON files are edited minimally (json_edit). Re-running it
changes nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from runbook.errors import RunbookError
from runbook.target import DAWSOS
from runbook.tasks.code.frontend_registry import Registry, find_registry
from runbook.tasks.code.json_edit import JsonDocument
from runbook.tasks.code.text_diff import diff_files


@dataclass
class PanelsReport:
    registry: str = ""
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    by_id: list[str] = field(default_factory=list)
    by_title: list[str] = field(default_factory=list)        # pairings by (title, type)
    added: list[str] = field(default_factory=list)           # frontend-only panels, added
    backend_only: list[str] = field(default_factory=list)    # kept, with what was done
    conflicts: list[str] = field(default_factory=list)       # backend value kept
    unmatched_patterns: list[str] = field(default_factory=list)

    def diff(self) -> str:
        return diff_files(self.files)

    def as_dict(self) -> dict:
        return {"registry": self.registry, "files": len(self.files), "changed": sorted(self.files),
                "paired_by_id": len(self.by_id), "paired_by_title": self.by_title,
                "added_from_frontend": self.added, "backend_only": self.backend_only,
                "conflicts": self.conflicts, "unmatched_patterns": self.unmatched_patterns,
                "diff": self.diff()}


def pair_panels(backend: list[dict], frontend: list[dict]
                ) -> tuple[list[tuple[int, int, str]], list[int], list[int], list[str]]:
    """(backend index, frontend index, "id" | "title") pairs, unpaired backend and frontend
    indexes, and the ambiguities that kept a pair from forming."""
    pairs, ambiguous = [], []
    free_b, free_f = list(range(len(backend))), list(range(len(frontend)))
    for bi in list(free_b):
        fi = next((f for f in free_f if frontend[f].get("id") == backend[bi].get("id")), None)
        if fi is not None:
            pairs.append((bi, fi, "id"))
            free_b.remove(bi)
            free_f.remove(fi)

    def sig(p: dict) -> tuple:
        return (p.get("title"), p.get("type"))
    for bi in list(free_b):
        same_b = [b for b in free_b if sig(backend[b]) == sig(backend[bi])]
        same_f = [f for f in free_f if sig(frontend[f]) == sig(backend[bi])]
        if len(same_b) == 1 and len(same_f) == 1:
            pairs.append((bi, same_f[0], "title"))
            free_b.remove(bi)
            free_f.remove(same_f[0])
        elif same_f:
            ambiguous.append(f"{len(same_b)} backend and {len(same_f)} frontend panels titled "
                             f"{sig(backend[bi])[0]!r} ({sig(backend[bi])[1]}): not paired")
    return pairs, free_b, free_f, sorted(set(ambiguous))


def _merge(doc: JsonDocument, node, backend: dict, frontend: dict, where: str,
           conflicts: list[str]) -> None:
    """Add to the backend object what only the frontend has; recurse into objects both have."""
    missing = []
    for key, value in frontend.items():
        if key == "id":
            continue
        if key not in backend:
            missing.append((key, value))
        elif isinstance(value, dict) and isinstance(backend[key], dict):
            _merge(doc, doc.member(node, key), backend[key], value, f"{where}.{key}", conflicts)
        elif backend[key] != value:
            conflicts.append(f"{where}.{key}: backend {json.dumps(backend[key])} kept, "
                             f"frontend has {json.dumps(value)}")
    doc.add_members(node, missing)


def output_names(spec: dict) -> set[str]:
    outs = spec.get("outputs")
    names = set(outs) if isinstance(outs, list) else set(outs or {})
    return names | {s["as"] for s in spec.get("steps") or [] if isinstance(s, dict) and s.get("as")}


def move_pattern(doc: JsonDocument, spec: dict, pid: str, frontend: list[dict], report: PanelsReport) -> None:
    root = doc.root
    display = doc.member(root, "display")
    if display is None or display.type != "object":
        if frontend:
            doc.add_members(root, [("display", {"panels": frontend})])
            report.added += [f"{pid}/{p.get('id')}" for p in frontend]
        return
    panels_node = doc.member(display, "panels")
    if panels_node is None:
        if frontend:
            doc.add_members(display, [("panels", frontend)])
            report.added += [f"{pid}/{p.get('id')}" for p in frontend]
        return
    backend = (spec.get("display") or {}).get("panels") or []
    nodes = doc.elements(panels_node)
    pairs, free_b, free_f, ambiguous = pair_panels(backend, frontend)
    report.conflicts += [f"{pid}: {a}" for a in ambiguous]
    for bi, fi, how in pairs:
        b, f = backend[bi], frontend[fi]
        if how == "id":
            report.by_id.append(f"{pid}/{b.get('id')}")
        else:
            report.by_title.append(f"{pid}: backend {b.get('id')} <- frontend {f.get('id')} "
                                   f"(title {b.get('title')!r}, type {b.get('type')})")
        _merge(doc, nodes[bi], b, f, f"{pid}/{b.get('id')}", report.conflicts)
    outputs = output_names(spec)
    for bi in free_b:
        b = backend[bi]
        if b.get("dataPath"):
            report.backend_only.append(f"{pid}/{b.get('id')}: kept (has its dataPath)")
        elif b.get("id") in outputs:
            doc.add_members(nodes[bi], [("dataPath", b["id"])])
            report.backend_only.append(f"{pid}/{b.get('id')}: kept, dataPath {b['id']!r} "
                                       "(the pattern output of the same name)")
        else:
            report.backend_only.append(f"{pid}/{b.get('id')}: kept WITHOUT dataPath "
                                       "(no frontend panel or pattern output matches; give it one)")
    added = [frontend[fi] for fi in free_f]
    doc.append_elements(panels_node, added)
    report.added += [f"{pid}/{p.get('id')}" for p in added]


def move_panels(repo: Path, dry_run: bool = False, registry: Registry | None = None) -> PanelsReport:
    """Apply the codemod to a checkout (or only report it with dry_run)."""
    repo = Path(repo)
    registry = registry or find_registry(repo, DAWSOS.frontend_registry)
    report = PanelsReport(registry=registry.path)
    patterns_dir = repo / DAWSOS.patterns_dir
    files = {p.stem: p for p in sorted(patterns_dir.glob("*.json"))}
    if not files:
        raise RunbookError(f"no pattern JSON in {patterns_dir}")
    specs = {}
    for stem, path in files.items():
        try:
            specs[stem] = json.loads(path.read_bytes())
        except json.JSONDecodeError as exc:
            raise RunbookError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    by_id = {spec.get("id", stem): stem for stem, spec in specs.items()}
    for pid, entry in registry.entries.items():
        if entry.panels is None:
            continue
        if pid not in by_id:
            report.unmatched_patterns.append(f"{pid}: in the frontend registry, no pattern JSON: "
                                             "its panels stay in the frontend")
            continue
        stem = by_id[pid]
        rel = files[stem].relative_to(repo).as_posix()
        doc = JsonDocument(rel, files[stem].read_bytes())
        move_pattern(doc, specs[stem], pid, entry.panels, report)
        if doc.edits:
            report.files[rel] = (doc.source.decode(), doc.text().decode())
    for pid in sorted(set(by_id) - set(registry.entries)):
        report.unmatched_patterns.append(f"{pid}: pattern JSON with no frontend registry entry")
    if not dry_run:
        for rel, (_old, new) in report.files.items():
            (repo / rel).write_bytes(new.encode())
    return report

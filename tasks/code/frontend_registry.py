"""The frontend's pattern registry, wherever it is: a JSON file named after it, or a
`const patternRegistry = { ... }` object literal in a .js/.jsx/.ts/.tsx file or in a <script>
of an HTML page (the real DawsOS keeps it in full_ui.html). Read with a JavaScript parser.

An entry is `pattern_id: { name, icon, category, ..., display: { panels: [...] } }`, or with
`panels` directly in the entry; both shapes are read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runbook.errors import RunbookError
from runbook.tasks.code.js_literal import (
    JSON_SUFFIXES,
    SOURCE_SUFFIXES,
    NotData,
    Script,
    find_declaration,
    pairs,
    scripts,
    value_of,
)

REGISTRY_NAME = "patternRegistry"
# folders that hold copies, builds or history, never the live frontend
SKIP_DIRS = {"node_modules", "dist", "build", "vendor", "__pycache__"}


@dataclass
class Entry:
    """One pattern's entry: its data and the byte spans a codemod edits."""
    pattern_id: str
    value: dict
    entry: tuple[int, int]                       # the `id: {...}` pair
    panels_pair: tuple[int, int] | None = None   # the `panels: [...]` pair
    display_pair: tuple[int, int] | None = None  # the `display: {...}` pair holding it
    display_keys: tuple[str, ...] = ()           # every key of display

    @property
    def panels(self) -> list[dict] | None:
        display = self.value.get("display")
        if isinstance(display, dict) and isinstance(display.get("panels"), list):
            return display["panels"]
        if isinstance(self.value.get("panels"), list):
            return self.value["panels"]
        return None


@dataclass
class Registry:
    path: str                    # relative to the checkout
    source: bytes
    script: Script
    entries: dict[str, Entry] = field(default_factory=dict)

    def panels(self, pattern_id: str) -> list[dict] | None:
        entry = self.entries.get(pattern_id)
        return entry.panels if entry else None

    def with_panels(self) -> list[str]:
        """Patterns whose entry still defines panels."""
        return [pid for pid, e in self.entries.items() if e.panels_pair is not None]


def candidates(checkout: Path, name: str = REGISTRY_NAME) -> list[Path]:
    """Frontend source files that may hold the registry (a cheap byte test first)."""
    out = []
    for root, dirs, files in os.walk(checkout):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for f in sorted(files):
            p = Path(root) / f
            suffix = p.suffix.lower()
            if suffix not in SOURCE_SUFFIXES:
                continue
            if suffix in JSON_SUFFIXES:
                if p.stem == name:
                    out.append(p)
            elif name.encode() in p.read_bytes():
                out.append(p)
    return out


def find_registry(checkout: Path, name: str = REGISTRY_NAME, *, required: bool = True) -> Registry | None:
    checkout = Path(checkout)
    found: list[Registry] = []
    for path in candidates(checkout, name):
        reg = read_registry(checkout, path.relative_to(checkout).as_posix(), name)
        if reg is not None:
            found.append(reg)
    if len(found) > 1:
        raise RunbookError(f"{len(found)} frontend pattern registries named {name}: "
                           + ", ".join(r.path for r in found) + " (expected one)")
    if not found:
        if required:
            raise RunbookError(f"no frontend pattern registry `{name}` found under {checkout} "
                               "(a JSON file or a JS object literal in .js/.jsx/.ts/.html)")
        return None
    return found[0]


def read_registry(checkout: Path, rel: str, name: str = REGISTRY_NAME) -> Registry | None:
    source = (Path(checkout) / rel).read_bytes()
    for script in scripts(rel, source):
        obj = find_declaration(script, name)
        if obj is not None:
            return _read(rel, source, script, obj)
    return None


def _read(rel: str, source: bytes, script: Script, obj) -> Registry:
    reg = Registry(rel, source, script)
    try:
        for pid, pair in pairs(obj):
            value_node = pair.child_by_field_name("value")
            if value_node.type != "object":
                raise NotData(value_node, f"entry {pid} is not an object literal")
            entry = Entry(pid, value_of(value_node), script.span(pair))
            for key, p in pairs(value_node):
                v = p.child_by_field_name("value")
                if key == "panels":
                    entry.panels_pair = script.span(p)
                elif key == "display" and v.type == "object":
                    inner = pairs(v)
                    entry.display_keys = tuple(k for k, _ in inner)
                    for k2, p2 in inner:
                        if k2 == "panels":
                            entry.panels_pair, entry.display_pair = script.span(p2), script.span(p)
            reg.entries[pid] = entry
    except NotData as exc:
        raise RunbookError(f"{rel}:{script.line_of(exc.node)}: {exc.what} in the pattern registry "
                           "is code, not data") from None
    return reg


def registry_panels(checkout: Path, name: str = REGISTRY_NAME) -> dict[str, list[dict]]:
    """pattern id -> panels the frontend still defines (empty when it has no registry)."""
    reg = find_registry(checkout, name, required=False)
    if reg is None:
        return {}
    return {pid: e.panels for pid, e in reg.entries.items() if e.panels is not None}

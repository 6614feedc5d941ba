"""Minimal edits of a JSON document: new members appended to an object, new elements to an
array, written in the file's own indentation at that depth. Everything else keeps its bytes,
so a diff shows only what was added.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runbook.tasks.code.js_literal import Script, apply_edits, pairs, scripts


@dataclass
class JsonDocument:
    path: str
    source: bytes
    script: Script = field(init=False)
    edits: list[tuple[int, int, bytes]] = field(default_factory=list)   # (start, end, new bytes)

    def __post_init__(self) -> None:
        self.script = scripts(self.path, self.source)[0]

    @property
    def root(self):
        expr = self.script.tree.root_node.named_children[0].named_children[0]
        while expr.type == "parenthesized_expression":
            expr = expr.named_children[0]
        return expr

    # ----------------------------------------------------------------- reading
    def member(self, obj, key: str):
        """The value node of obj[key], or None."""
        return next((p.child_by_field_name("value") for k, p in pairs(obj) if k == key), None)

    def elements(self, array) -> list:
        return [c for c in array.named_children if c.type != "comment"]

    # ----------------------------------------------------------------- style
    def _line_indent(self, offset: int) -> str:
        start = self.source.rfind(b"\n", 0, offset) + 1
        line = self.source[start:offset]
        return line[:len(line) - len(line.lstrip(b" \t"))].decode()

    def _unit(self) -> str:
        """The file's indentation step: the indent of its first indented line (2 spaces if none)."""
        for line in self.source.splitlines()[1:]:
            stripped = line.lstrip(b" \t")
            if stripped and len(stripped) < len(line):
                return line[:len(line) - len(stripped)].decode()
        return "  "

    def _inner_indent(self, node, children: list) -> str:
        """Where a child of node starts its line: like its existing children, or one step in."""
        start, _ = self.script.span(node)
        for child in children:
            cstart, _ = self.script.span(child)
            if self.source.count(b"\n", start, cstart):
                return self._line_indent(cstart)
        return self._line_indent(start) + self._unit()

    def _dump(self, value: Any, indent: str) -> str:
        text = json.dumps(value, indent=self._unit(), ensure_ascii=False)
        return text.replace("\n", "\n" + indent)

    # ----------------------------------------------------------------- edits
    def _inline(self, container) -> bool:
        """A container written on one line stays on one line."""
        start, end = self.script.span(container)
        return b"\n" not in self.source[start:end]

    def _insert(self, container, children: list, rendered: list) -> None:
        """New items after the container's last child: one per line in the file's indentation,
        or inline when the container is written on one line. `rendered(indent)` -> texts."""
        if not rendered:
            return
        start, end = self.script.span(container)
        if self._inline(container):
            text, at = ", ".join(rendered(None)), end - 1
            if children:
                text, at = ", " + text, self.script.span(children[-1])[1]
            self.edits.append((at, at, text.encode()))
            return
        inner = self._inner_indent(container, children)
        items = rendered(inner)
        if children:
            at = self.script.span(children[-1])[1]
            text = "".join(f",\n{inner}{item}" for item in items)
        else:     # empty container: items between its brackets, closing bracket on its own line
            at = end - 1
            text = "\n" + ",\n".join(inner + item for item in items) + "\n" + self._line_indent(start)
        self.edits.append((at, at, text.encode()))

    def _render(self, value: Any, indent: str | None) -> str:
        if indent is None:
            return json.dumps(value, ensure_ascii=False)
        return self._dump(value, indent)

    def add_members(self, obj, members: list[tuple[str, Any]]) -> None:
        if not members:
            return
        children = [p for _, p in pairs(obj)]
        self._insert(obj, children, lambda indent: [
            f"{json.dumps(k, ensure_ascii=False)}: {self._render(v, indent)}" for k, v in members])

    def append_elements(self, array, values: list[Any]) -> None:
        if not values:
            return
        self._insert(array, self.elements(array), lambda indent: [self._render(v, indent) for v in values])

    def text(self) -> bytes:
        return apply_edits(self.source, self.edits)

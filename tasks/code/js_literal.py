"""JavaScript source read with a real parser (tree-sitter): the script blocks of an HTML file,
a module's `const NAME = { ... }` object literal, and that literal's data as Python values.

Every position is a byte offset into the whole file, so callers edit the original bytes and
leave everything they do not touch exactly as it was. JSON is read the same way (it is a
JavaScript expression), which gives its values the same offsets.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from runbook.errors import RunbookError

HTML_SUFFIXES = (".html", ".htm")
SCRIPT_SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx")
JSON_SUFFIXES = (".json",)
SOURCE_SUFFIXES = HTML_SUFFIXES + SCRIPT_SUFFIXES + JSON_SUFFIXES


@cache
def _parser(grammar: str):
    import tree_sitter as ts

    if grammar == "html":
        import tree_sitter_html as mod
        lang = mod.language()
    elif grammar in ("typescript", "tsx"):
        import tree_sitter_typescript as mod
        lang = mod.language_typescript() if grammar == "typescript" else mod.language_tsx()
    else:
        import tree_sitter_javascript as mod
        lang = mod.language()
    return ts.Parser(ts.Language(lang))


@dataclass(frozen=True)
class Script:
    """One piece of JavaScript in a file: its parse tree and where it starts in the file."""
    path: str
    source: bytes          # the whole file
    offset: int            # byte offset of the script in the file
    tree: Any              # tree_sitter.Tree of source[offset:offset + length]

    def line_of(self, node) -> int:
        return self.source.count(b"\n", 0, self.offset + node.start_byte) + 1

    def span(self, node) -> tuple[int, int]:
        """A node's byte range in the whole file."""
        return self.offset + node.start_byte, self.offset + node.end_byte


def scripts(path: str, source: bytes) -> list[Script]:
    """The JavaScript in a file: each <script> of an HTML file, a whole .js/.ts file, or a JSON
    document (parsed as the expression it is). A script that does not parse is an error naming
    the file and line: a codemod must never edit what it could not read."""
    suffix = Path(path).suffix.lower()
    if suffix in HTML_SUFFIXES:
        html = _parser("html").parse(source)
        out, stack = [], [html.root_node]
        while stack:
            node = stack.pop()
            if node.type == "script_element":
                raw = next((c for c in node.children if c.type == "raw_text"), None)
                if raw is not None and raw.end_byte > raw.start_byte and _is_javascript(node):
                    out.append(_parse(path, source, raw.start_byte, raw.end_byte, "javascript"))
                continue
            stack.extend(reversed(node.children))
        return out
    if suffix in JSON_SUFFIXES:
        # "(" + document + ")": an expression statement whose offsets are the file's, minus one
        wrapped = b"(" + source + b"\n)"
        tree = _parser("javascript").parse(wrapped)
        _check(path, wrapped, tree, 0)
        return [Script(path, source, -1, tree)]
    grammar = {".ts": "typescript", ".tsx": "tsx"}.get(suffix, "javascript")
    return [_parse(path, source, 0, len(source), grammar)]


JS_TYPES = {"", "text/javascript", "application/javascript", "module", "text/babel", "text/jsx"}


def _is_javascript(script_element) -> bool:
    """A <script> whose type says it holds JavaScript (not JSON data, templates, …)."""
    tag = next((c for c in script_element.children if c.type == "start_tag"), None)
    for attr in (tag.named_children if tag is not None else []):
        if attr.type != "attribute":
            continue
        name = next((c for c in attr.named_children if c.type == "attribute_name"), None)
        if name is not None and name.text.decode().lower() == "type":
            value = next((c for c in attr.named_children if c.type in ("quoted_attribute_value",
                                                                        "attribute_value")), None)
            text = value.text.decode().strip("'\"").strip().lower() if value is not None else ""
            return text in JS_TYPES
    return True


def _parse(path: str, source: bytes, start: int, end: int, grammar: str) -> Script:
    tree = _parser(grammar).parse(source[start:end])
    _check(path, source[start:end], tree, source.count(b"\n", 0, start))
    return Script(path, source, start, tree)


def _check(path: str, text: bytes, tree, lines_before: int) -> None:
    if not tree.root_node.has_error:
        return
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            line = lines_before + text.count(b"\n", 0, node.start_byte) + 1
            raise RunbookError(f"{path}:{line}: JavaScript does not parse here")
        stack.extend(c for c in node.children if c.has_error or c.is_missing or c.type == "ERROR")
    raise RunbookError(f"{path}: JavaScript does not parse")


def find_declaration(script: Script, name: str):
    """The object literal bound by `const|let|var NAME = { ... }` (or the whole JSON document
    when name is None), or None."""
    root = script.tree.root_node
    if script.offset < 0:          # JSON: the document itself
        expr = root.named_children[0].named_children[0] if root.named_children else None
        while expr is not None and expr.type == "parenthesized_expression":
            expr = expr.named_children[0]
        return expr if expr is not None and expr.type == "object" else None
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "variable_declarator":
            ident, value = node.child_by_field_name("name"), node.child_by_field_name("value")
            if ident is not None and ident.text.decode() == name and value is not None:
                while value.type in ("parenthesized_expression", "as_expression", "satisfies_expression"):
                    value = value.named_children[0]
                if value.type == "object":
                    return value
        stack.extend(reversed(node.children))
    return None


def apply_edits(source: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """The source with each (start, end, replacement) applied; edits must not overlap."""
    out, last = [], 0
    for start, end, text in sorted(edits, key=lambda e: (e[0], e[1])):
        if start < last:
            raise RunbookError(f"overlapping edits at byte {start}")
        out += [source[last:start], text]
        last = end
    out.append(source[last:])
    return b"".join(out)


# ------------------------------------------------------------------------------ values

def pairs(obj) -> list[tuple[str, Any]]:
    """(key, pair node) of an object literal, in source order; comments skipped. A spread, a
    method or a computed key is not data: an error naming it."""
    out = []
    for child in obj.named_children:
        if child.type == "comment":
            continue
        if child.type != "pair":
            raise NotData(child, f"{child.type} in an object literal")
        out.append((key_of(child), child))
    return out


def key_of(pair) -> str:
    key = pair.child_by_field_name("key")
    if key.type in ("property_identifier", "number"):
        return key.text.decode()
    if key.type == "string":
        return _string(key)
    raise NotData(key, f"computed key {key.text.decode()[:40]}")


class NotData(Exception):
    """A node that is code, not a literal value."""

    def __init__(self, node, what: str):
        super().__init__(what)
        self.node = node
        self.what = what


def value_of(node) -> Any:
    """The Python value of a JavaScript literal (objects, arrays, strings, numbers, booleans,
    null; template strings without substitutions)."""
    t = node.type
    if t == "object":
        return {k: value_of(p.child_by_field_name("value")) for k, p in pairs(node)}
    if t == "array":
        return [value_of(c) for c in node.named_children if c.type != "comment"]
    if t == "string":
        return _string(node)
    if t == "template_string":
        if any(c.type == "template_substitution" for c in node.named_children):
            raise NotData(node, "template string with substitutions")
        return _unescape_parts(node)
    if t == "number":
        return _number(node.text.decode())
    if t in ("true", "false"):
        return t == "true"
    if t in ("null", "undefined"):
        return None
    if t == "unary_expression" and node.child_by_field_name("operator").text in (b"-", b"+") \
            and node.child_by_field_name("argument").type == "number":
        n = _number(node.child_by_field_name("argument").text.decode())
        return -n if node.child_by_field_name("operator").text == b"-" else n
    if t == "parenthesized_expression":
        return value_of(node.named_children[0])
    raise NotData(node, f"{t.replace('_', ' ')} `{node.text.decode()[:40]}`")


def _number(text: str) -> int | float:
    text = text.replace("_", "")
    low = text.lower()
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if low.startswith(prefix):
            return int(low[2:], base)
    try:
        return int(text)
    except ValueError:
        return float(text)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _string(node) -> str:
    return _unescape_parts(node)


def _unescape_parts(node) -> str:
    out = []
    for c in node.named_children:
        if c.type == "string_fragment":
            out.append(c.text.decode())
        elif c.type == "escape_sequence":
            out.append(_unescape(c.text.decode()))
    return "".join(out)


def _unescape(seq: str) -> str:
    body = seq[1:]
    if body.startswith("u{"):
        return chr(int(body[2:-1], 16))
    if body.startswith(("u", "x")) and len(body) > 1:
        return chr(int(body[1:], 16))
    if body in ("\n", "\r\n", "\r"):       # line continuation
        return ""
    return _ESCAPES.get(body, body)

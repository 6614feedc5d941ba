"""Python source for libcst codemods: parsed with a clear error naming the file, and the code
of a node (for the codemods that find statements by what they say)."""
from __future__ import annotations

import libcst as cst

from runbook.errors import RunbookError


def parse_python(source: str, path: str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise RunbookError(f"{path}: not valid Python ({exc.message} at line {exc.raw_line})") from None


def code_of(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)

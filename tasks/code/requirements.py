"""The target's pip requirements file: a requirement added once, the file otherwise untouched."""
from __future__ import annotations

import re


def add_requirement(text: str, requirement: str) -> tuple[str, bool]:
    """`text` with `requirement` (e.g. "simpleeval>=1.0") appended unless a line already
    requires that package; and whether it was added."""
    name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
    pattern = re.compile(rf"^\s*{re.escape(name)}(?![A-Za-z0-9_.-])", re.IGNORECASE)
    if any(pattern.match(line) for line in text.splitlines()):
        return text, False
    if text and not text.endswith("\n"):
        text += "\n"
    return text + requirement + "\n", True

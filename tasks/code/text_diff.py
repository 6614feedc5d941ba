"""One unified-diff renderer for every code update's preview (dry runs, artifacts)."""
from __future__ import annotations

import difflib


def unified_diff(path: str, before: str, after: str) -> str:
    """git-style a/ b/ diff of one file; a last line without newline is marked as git does."""
    def lines(s: str) -> list[str]:
        parts = s.split("\n")
        out = [p + "\n" for p in parts[:-1]]
        if parts[-1]:
            out.append(parts[-1])
        return out

    chunks = []
    for line in difflib.unified_diff(lines(before), lines(after), f"a/{path}", f"b/{path}"):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        chunks.append(line)
    return "".join(chunks)


def diff_files(files: dict[str, tuple[str, str]]) -> str:
    """Concatenated diffs of {path: (before, after)}."""
    return "".join(unified_diff(p, old, new) for p, (old, new) in files.items())

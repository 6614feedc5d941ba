"""Byte-level rename codemod over a git work tree, and the matching "no old names left" gate.

An OLD name matches where it is bounded on each side by the start/end of the text, a byte that
is not an ASCII letter or digit, or ``_``. So with ``qty_open=quantity_open``:

    total_qty_open -> total_quantity_open     qty_open_sum -> quantity_open_sum
    qty_opened_at, xqty_open, qty_open2       stay (reported as near-misses)

Matching is case-sensitive; when several OLD names could match at one spot the longest wins.

Only files git tracks are read (``git ls-files``), so ``.git`` and untracked files are never
touched. Symlinks are never followed, binary files (a NUL byte in the first 8 KiB, or content
that is neither UTF-8 nor CP-1252/Latin-1) are skipped, and edits are made on the raw bytes,
so every file keeps its encoding, line endings (CRLF stays CRLF), BOM, inode and mode.

Plain functions; the CLI and the Prefect flows wrap them.
"""
from __future__ import annotations

import bisect
import fnmatch
import os
import re
import stat
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runbook.errors import RunbookError
from runbook.tasks.code.text_diff import unified_diff

BINARY_SNIFF_BYTES = 8192
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
# Environment variables that would make git look at another repository than the one we name.
_GIT_ENV_OVERRIDES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                      "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES")


# --------------------------------------------------------------------------- results

@dataclass
class FileChange:
    path: str          # repo-relative posix path
    count: int         # renamed spans in this file
    diff: str          # unified diff (a/path -> b/path)


@dataclass
class Occurrence:
    path: str          # repo-relative posix path
    line: int          # 1-based
    column: int        # 1-based, in characters of the decoded line
    name: str          # the OLD name found
    text: str          # the whole line, without its line ending


@dataclass
class RenameReport:
    changes: list[FileChange] = field(default_factory=list)
    aliases: list[Occurrence] = field(default_factory=list)       # `old AS other` found before renaming
    near_misses: list[Occurrence] = field(default_factory=list)   # OLD as a substring, not renamed
    skipped_binary: list[str] = field(default_factory=list)       # binary files containing an OLD name
    skipped_symlinks: list[str] = field(default_factory=list)     # every tracked symlink

    @property
    def total(self) -> int:
        return sum(c.count for c in self.changes)

    def diff(self) -> str:
        return "".join(c.diff for c in self.changes)

    def counts_table(self) -> list[tuple[str, int]]:
        return [(c.path, c.count) for c in self.changes]


# --------------------------------------------------------------------------- mapping

def _check_name(name: str, item: str) -> None:
    if not name:
        raise RunbookError(f"rename {item!r}: empty name on one side (expected OLD=NEW)")
    if not _NAME_RE.match(name):
        raise RunbookError(f"rename {item!r}: {name!r} is not an identifier "
                           "(ASCII letters, digits and _, not starting with a digit)")


def _old_inside_new(old: str, new: str) -> bool:
    """True when OLD matches inside NEW by the boundary rule. NEW is only ever written where OLD
    was bounded, so NEW's own ends count as boundaries: a second run would rename it again."""
    return re.search(r"(?<![A-Za-z0-9])" + re.escape(old) + r"(?![A-Za-z0-9])", new) is not None


def _validate_mapping(mapping: dict[str, str]) -> None:
    if not mapping:
        raise RunbookError("no renames given (expected at least one OLD=NEW)")
    for old, new in mapping.items():
        item = f"{old}={new}"
        _check_name(old, item)
        _check_name(new, item)
        if old == new:
            raise RunbookError(f"rename {item!r}: OLD and NEW are identical")
    for new in set(mapping.values()):
        for old in mapping:
            if _old_inside_new(old, new):
                src = next(o for o, n in mapping.items() if n == new)
                raise RunbookError(
                    f"rename {src}={new}: NEW {new!r} contains OLD {old!r}, so a second run "
                    f"would rename it again (chained renames are not idempotent)")


def parse_map(items: list[str]) -> dict[str, str]:
    """["qty_open=quantity_open", ...] -> {"qty_open": "quantity_open", ...}.

    RunbookError on: no items, an item without exactly one '=', an empty or non-identifier
    side, identical sides, an OLD given twice, or a NEW that contains an OLD by the boundary
    rule, so that running the rename twice would change more (`qty=qty_total`, `a=b` + `b=c`).
    Overlaps that depend on the text (`a=b` + `b_c=d` turns `a_c` into `b_c`) are caught per
    file by `rename`, before anything is written.
    """
    mapping: dict[str, str] = {}
    for raw in items:
        if raw.count("=") != 1:
            raise RunbookError(f"rename {raw!r}: expected exactly one '=' (OLD=NEW)")
        old, new = (s.strip() for s in raw.split("="))
        _check_name(old, raw)
        _check_name(new, raw)
        if old in mapping:
            raise RunbookError(f"rename {raw!r}: OLD {old!r} given twice "
                               f"(already mapped to {mapping[old]!r})")
        mapping[old] = new
    _validate_mapping(mapping)
    return mapping


def _validate_names(names: Iterable[str]) -> list[str]:
    out = list(dict.fromkeys(names))
    if not out:
        raise RunbookError("no names given to look for")
    for n in out:
        _check_name(n, n)
    return out


# --------------------------------------------------------------------------- patterns

class _Patterns:
    def __init__(self, names: Iterable[str]):
        # Longest first so the alternation prefers e.g. qty_open_total over qty_open.
        ordered = sorted(set(names), key=lambda s: (-len(s), s))
        alts = b"|".join(re.escape(n.encode("ascii")) for n in ordered)
        self.names = ordered
        self.any = re.compile(alts)                                  # cheap prefilter
        self.bounded = re.compile(rb"(?<![A-Za-z0-9])(?:" + alts + rb")(?![A-Za-z0-9])")
        self.alias = re.compile(
            rb"(?<![A-Za-z0-9])(?P<old>" + alts + rb")(?![A-Za-z0-9])"
            rb"[ \t\r\n]+(?i:as)[ \t\r\n]+"
            rb"[\"`'\[]?(?P<alias>[A-Za-z_][A-Za-z0-9_$]*)(?![A-Za-z0-9_$])")
        self.substr = [(n, re.compile(b"(?=" + re.escape(n.encode("ascii")) + b")"))
                       for n in ordered]


# --------------------------------------------------------------------------- git

def _git(repo: Path, *args: str) -> bytes:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_OVERRIDES}
    try:
        proc = subprocess.run(["git", "-c", "core.quotepath=off", "-C", str(repo), *args],
                              capture_output=True, env=env, check=False)
    except FileNotFoundError as e:
        raise RunbookError("git is not installed or not on PATH") from e
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RunbookError(f"git {args[0]} failed in {repo}: {msg[-1] if msg else proc.returncode}")
    return proc.stdout


def _work_tree(repo: Path | str) -> Path:
    repo = Path(repo)
    if not repo.is_dir():
        raise RunbookError(f"repository {repo} does not exist or is not a directory")
    try:
        inside = _git(repo, "rev-parse", "--is-inside-work-tree").strip()
    except RunbookError as e:
        raise RunbookError(f"{repo} is not a git work tree ({e})") from None
    if inside != b"true":
        raise RunbookError(f"{repo} is not a git work tree")
    return repo


def _dirty_files(repo: Path) -> list[str]:
    out = _git(repo, "status", "--porcelain").decode("utf-8", "replace")
    return [line[3:] for line in out.splitlines() if line.strip()]


def _tracked_files(repo: Path) -> list[str]:
    raw = _git(repo, "ls-files", "-z")
    # Unmerged paths appear once per stage; keep the first.
    return list(dict.fromkeys(os.fsdecode(p) for p in raw.split(b"\0") if p))


def _excluded(path: str, patterns: Iterable[str]) -> bool:
    """fnmatch against the repo-relative posix path, or against any parent directory of it
    (so `backend/db/migrations` excludes everything under that folder)."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return any(fnmatch.fnmatchcase(c, pat.rstrip("/")) for pat in patterns for c in candidates)


# --------------------------------------------------------------------------- scanning

@dataclass
class _Text:
    path: str
    full: Path
    data: bytes
    encoding: str
    _nl: list[int] | None = None

    def line_col(self, pos: int) -> tuple[int, int, str]:
        if self._nl is None:
            self._nl = [m.start() for m in re.finditer(rb"\n", self.data)]
        idx = bisect.bisect_left(self._nl, pos)
        start = self._nl[idx - 1] + 1 if idx else 0
        end = self._nl[idx] if idx < len(self._nl) else len(self.data)
        line = self.data[start:end].rstrip(b"\r")
        column = len(self.data[start:pos].decode(self.encoding, "replace")) + 1
        return idx + 1, column, line.decode(self.encoding, "replace")

    def occurrence(self, pos: int, name: str) -> Occurrence:
        line, column, text = self.line_col(pos)
        return Occurrence(self.path, line, column, name, text)


def _decode_encoding(data: bytes) -> str | None:
    """The encoding the file is text in, or None when it is binary."""
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None
    for enc in ("utf-8", "cp1252"):
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError:
            pass
    return None


def _scan(repo: Path, pats: _Patterns, exclude: Iterable[str],
          binary: list[str], symlinks: list[str]) -> Iterator[_Text]:
    """Text files git tracks, not excluded, not symlinks, that contain an OLD name as bytes."""
    exclude = list(exclude)
    root = os.path.realpath(repo)
    for rel in _tracked_files(repo):
        if exclude and _excluded(rel, exclude):
            continue
        full = repo / rel
        try:
            st = os.lstat(full)
        except OSError:           # deleted, sparse checkout, path through a symlinked dir...
            continue
        if stat.S_ISLNK(st.st_mode):
            symlinks.append(rel)
            continue
        if not stat.S_ISREG(st.st_mode):   # submodule (gitlink) directory, fifo, ...
            continue
        # A parent directory replaced by a symlink must not be followed either.
        if os.path.realpath(full) != os.path.join(root, *rel.split("/")):
            symlinks.append(rel)
            continue
        data = full.read_bytes()
        if not pats.any.search(data):
            continue
        enc = _decode_encoding(data)
        if enc is None:
            binary.append(rel)
            continue
        yield _Text(rel, full, data, enc)


def _near_misses(text: _Text, pats: _Patterns) -> list[Occurrence]:
    out = []
    data = text.data
    for name, rx in pats.substr:
        n = len(name)
        for m in rx.finditer(data):
            s = m.start()
            left_ok = s == 0 or data[s - 1] not in _ALNUM
            right_ok = s + n == len(data) or data[s + n] not in _ALNUM
            if not (left_ok and right_ok):
                out.append(text.occurrence(s, name))
    out.sort(key=lambda o: (o.line, o.column, o.name))
    return out


# --------------------------------------------------------------------------- API

def rename(repo: Path, mapping: dict[str, str], exclude: list[str] = (),
           dry_run: bool = False) -> RenameReport:
    """Rename every OLD to its NEW (boundary rule above) in the files git tracks under `repo`.

    Refuses, changing nothing, unless `git status --porcelain` is empty. Computes every change
    first and writes only when all of them are known (and each is verified idempotent), in place
    so mode, owner and inode are kept. `dry_run` computes the same report and writes nothing.
    """
    repo = _work_tree(repo)
    _validate_mapping(mapping)
    dirty = _dirty_files(repo)
    if dirty:
        shown = ", ".join(dirty[:20]) + (f" (+{len(dirty) - 20} more)" if len(dirty) > 20 else "")
        raise RunbookError(f"refusing to rename in {repo}: the work tree is not clean "
                           f"({len(dirty)} file(s): {shown}); commit or stash first")

    pats = _Patterns(mapping)
    report = RenameReport()
    planned: list[tuple[_Text, bytes]] = []
    for text in _scan(repo, pats, exclude, report.skipped_binary, report.skipped_symlinks):
        for m in pats.alias.finditer(text.data):
            old = m.group("old").decode("ascii")
            alias = m.group("alias").decode("ascii")
            if alias not in (old, mapping[old]):
                report.aliases.append(text.occurrence(m.start("old"), old))
        report.near_misses.extend(_near_misses(text, pats))

        count = 0

        def repl(m: re.Match) -> bytes:
            nonlocal count
            count += 1
            return mapping[m.group(0).decode("ascii")].encode("ascii")

        new = pats.bounded.sub(repl, text.data)
        if not count:
            continue
        again = pats.bounded.search(new)
        if again:     # e.g. a=b + b_c=d on "a_c": the result holds an OLD, a rerun would change it
            line = new.count(b"\n", 0, again.start()) + 1
            raise RunbookError(
                f"rename is not idempotent on {text.path}:{line}: the result would contain "
                f"{again.group(0).decode('ascii')!r} again (renames overlap across '_'); "
                "nothing was changed - split the mapping into separate runs or exclude the file")
        if not dry_run and not os.access(text.full, os.W_OK):
            raise RunbookError(f"{text.path} is not writable; nothing was changed")
        diff = unified_diff(text.path, text.data.decode(text.encoding),
                             new.decode(text.encoding))
        report.changes.append(FileChange(text.path, count, diff))
        planned.append((text, new))

    if not dry_run:
        for written, (text, new) in enumerate(planned):
            try:
                with open(text.full, "r+b") as f:   # in place: keeps mode, owner, inode
                    f.write(new)
                    f.truncate()
            except OSError as e:
                raise RunbookError(
                    f"could not write {text.path}: {e}; {written} file(s) were already "
                    f"rewritten - revert with `git checkout -- .` in {repo}") from e
    return report


def find_old_names(repo: Path, names: list[str],
                   exclude: list[str] = ()) -> tuple[list[Occurrence], list[Occurrence]]:
    """(occurrences by the boundary rule, near-misses) of `names` in the text files git tracks.

    Read-only and works on a dirty tree (it is the gate run right after `rename`). Symlinks,
    binary files and `exclude` globs are skipped exactly as in `rename`.
    """
    repo = _work_tree(repo)
    pats = _Patterns(_validate_names(names))
    found: list[Occurrence] = []
    near: list[Occurrence] = []
    for text in _scan(repo, pats, exclude, [], []):
        for m in pats.bounded.finditer(text.data):
            found.append(text.occurrence(m.start(), m.group(0).decode("ascii")))
        near.extend(_near_misses(text, pats))
    return found, near

"""Duplicate table definitions in the target's SQL, their removal, and the proof that removing
them changed nothing (Week 0, Task 2.2).

* `table_definitions` parses every file of backend/db/schema/ and backend/db/migrations/ with
  pglast and lists each CREATE TABLE by (schema-qualified) table name.
* `dedupe` removes, from the migration files only, the CREATE TABLE statements of tables that
  backend/db/schema/ also defines (schema/ is kept, as the plan says). Everything else in the
  file — comments, other statements, line endings — is left as it was.
* `compare_rebuild` builds a scratch database from a checkout's schema/ + migrations, applies
  the runbook migrations the live database has applied, and compares the public schema's
  tables, columns and constraints with the live database.

What "same" means for the rebuild comparison: the live database is the target's own SQL
(schema/ then migrations/, as demo/schema_loader applies them) plus the runbook's migrations
recorded as applied in its ledger (014+, from this project's migrations/) plus whatever steps
derive from the catalog (the FK indexes of Day 3–4, passed in as `after_build`). The scratch
database is built the same way — from the SQL live was built from, with the dedupe applied —
so any difference is either a definition the dedupe lost or drift (a change made to the live
database outside both). Compared, in schema public only
(runbook and quarantine are the runbook's own bookkeeping): the set of tables; per table the
columns by name (type, NOT NULL, default — not their position, which a dropped column shifts);
the constraints by name (type and pg_get_constraintdef). Data, indexes, views and functions are
not compared (indexes have their own gate).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from runbook.errors import RunbookError
from runbook.target import DAWSOS
from runbook.tasks.code.text_diff import unified_diff

SCHEMA_DIR = DAWSOS.schema_dir
MIGRATIONS_DIR = DAWSOS.migrations_dir


@dataclass(frozen=True)
class TableDef:
    table: str          # schema-qualified, e.g. "public.audit_log"
    path: str           # repo-relative posix path
    line: int           # 1-based line of CREATE
    start: int          # character offsets of the statement (CREATE ... up to, not incl., ';')
    end: int

    @property
    def in_schema_dir(self) -> bool:
        return self.path.startswith(SCHEMA_DIR + "/")


def sql_files(repo: Path) -> list[Path]:
    """schema/ then migrations/, each sorted by name (the order the schema loader applies)."""
    repo = Path(repo)
    out: list[Path] = []
    for sub in (SCHEMA_DIR, MIGRATIONS_DIR):
        out += sorted((repo / sub).glob("*.sql"), key=lambda p: p.name)
    return out


def read_sql(path: Path) -> str:
    # newline="" keeps CRLF as written, so offsets and the rewritten file match the original
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def file_definitions(repo: Path, path: Path) -> list[TableDef]:
    from pglast import parser
    from pglast.parser import ParseError

    text = read_sql(path)
    rel = path.relative_to(repo).as_posix()
    try:
        stmts = parser.parse_sql(text)
    except ParseError as exc:
        raise RunbookError(f"{rel}: not parseable SQL: {exc}") from None
    out = []
    for raw in stmts:
        node = raw.stmt
        if type(node).__name__ != "CreateStmt":
            continue
        rel_name = node.relation
        table = f"{rel_name.schemaname or 'public'}.{rel_name.relname}"
        start = _first_token(text, raw.stmt_location)
        end = raw.stmt_location + raw.stmt_len
        out.append(TableDef(table, rel, text.count("\n", 0, start) + 1, start, end))
    return out


def _first_token(text: str, location: int) -> int:
    """Older parsers start a statement right after the previous ';' (comments included)."""
    from pglast.parser import scan

    for tok in scan(text[location:]):
        if tok.name not in ("SQL_COMMENT", "C_COMMENT"):
            return location + tok.start
    return location


def table_definitions(repo: Path) -> dict[str, list[TableDef]]:
    repo = Path(repo)
    files = sql_files(repo)
    if not files:
        raise RunbookError(f"{repo}: no SQL files under {SCHEMA_DIR} or {MIGRATIONS_DIR}")
    defs: dict[str, list[TableDef]] = defaultdict(list)
    for path in files:
        for d in file_definitions(repo, path):
            defs[d.table].append(d)
    return dict(defs)


def duplicates(repo: Path) -> dict[str, list[TableDef]]:
    """Tables created by more than one statement."""
    return {t: ds for t, ds in sorted(table_definitions(repo).items()) if len(ds) > 1}




# -- the code update --------------------------------------------------------------------------

@dataclass
class DedupeReport:
    removed: list[TableDef] = field(default_factory=list)
    unresolved: dict[str, list[str]] = field(default_factory=dict)   # duplicates not in schema/
    diffs: list[str] = field(default_factory=list)

    def diff(self) -> str:
        return "".join(self.diffs)


def dedupe(repo: Path, dry_run: bool = False) -> DedupeReport:
    """Remove from migration files the CREATE TABLE of every table schema/ also defines."""
    repo = Path(repo)
    report = DedupeReport()
    by_file: dict[str, list[TableDef]] = defaultdict(list)
    keeper: dict[str, str] = {}
    for table, defs in duplicates(repo).items():
        keep = [d for d in defs if d.in_schema_dir]
        if len(keep) != 1:   # none (or several) in schema/: no rule says which one is right
            report.unresolved[table] = [f"{d.path}:{d.line}" for d in defs]
            continue
        keeper[table] = keep[0].path
        for d in defs:
            if not d.in_schema_dir:
                by_file[d.path].append(d)
                report.removed.append(d)
    for rel, defs in sorted(by_file.items()):
        path = repo / rel
        before = read_sql(path)
        after = before
        for d in sorted(defs, key=lambda d: d.start, reverse=True):
            after = _cut(after, d, keeper[d.table])
        report.diffs.append(unified_diff(str(rel), before, after))
        if not dry_run:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(after)
    return report


def _cut(text: str, d: TableDef, kept_in: str) -> str:
    """Replace the statement (and its ';') with a one-line note saying where the table lives."""
    end = d.end
    while end < len(text) and text[end] in " \t":
        end += 1
    if end < len(text) and text[end] == ";":
        end += 1
    name = d.table.removeprefix("public.")
    return text[:d.start] + f"-- {name}: defined in {kept_in} (duplicate definition removed)" + text[end:]


# -- the rebuild comparison -------------------------------------------------------------------










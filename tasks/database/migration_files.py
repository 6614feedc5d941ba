"""Migration triads on disk (NNN_name.up.sql / .down.sql / .verify.sql) and their sections.

A file is split on "-- runbook:section NAME [no-transaction]" and
"-- runbook:backfill TABLE new=old [new=old ...]" lines. Each section runs in its own short
transaction (or autocommit for CONCURRENTLY); backfills run as batches of heap blocks in Python.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from runbook.errors import RunbookError

MIGRATIONS_DIR = Path(str(resources.files("runbook.migrations")))
_DIRECTIVE = re.compile(r"^--\s*runbook:(section|backfill|check)\s+(.*)$", re.MULTILINE)


@dataclass
class Section:
    name: str
    sql: str
    transactional: bool = True
    backfill_table: str | None = None
    backfill_pairs: list[tuple[str, str]] = field(default_factory=list)  # (new, old)
    # generated migrations: the objects this section creates or changes (recorded in the ledger
    # as it runs), and the ledger ids of the objects an undo section undoes (forgotten as it runs)
    objects: list[dict] = field(default_factory=list)
    forget: list[int] = field(default_factory=list)

    @property
    def is_backfill(self) -> bool:
        return self.backfill_table is not None

    def to_json(self) -> dict:
        return {"name": self.name, "sql": self.sql, "transactional": self.transactional,
                "backfill_table": self.backfill_table,
                "backfill_pairs": [list(p) for p in self.backfill_pairs], "objects": self.objects}

    @classmethod
    def from_json(cls, d: dict) -> Section:
        return cls(d["name"], d["sql"], d["transactional"], d["backfill_table"],
                   [tuple(p) for p in d["backfill_pairs"]], d.get("objects") or [])

    def preview(self) -> str:
        """What the runner does for this section, as SQL text (a backfill as a comment)."""
        if self.is_backfill:
            return (f"-- batched backfill of {self.backfill_table} (heap-block batches, triggers kept out): "
                    + ", ".join(f"{n} = {o}" for n, o in self.backfill_pairs))
        return self.sql

    def as_executed(self, lock_timeout_ms: int) -> str:
        """The SQL exactly as the runner sends it (what squawk must lint)."""
        head = f"SET lock_timeout = '{int(lock_timeout_ms)}ms';\nSET statement_timeout = '0';\n"
        if not self.transactional:
            return head + self.sql
        return "BEGIN;\n" + head.replace("SET ", "SET LOCAL ") + self.sql + "\nCOMMIT;\n"


@dataclass
class Migration:
    """A triad of files. The url/stored/recorded arguments of the section methods exist for
    generated migrations (tasks.database.expand) and are ignored here."""
    id: str
    up: Path
    down: Path
    verify: Path

    @property
    def number(self) -> int:
        return int(self.id.split("_", 1)[0])

    @property
    def checksum(self) -> str:
        h = hashlib.sha256()
        for p in (self.up, self.down, self.verify):
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
        return h.hexdigest()

    @property
    def verify_name(self) -> str:
        return self.verify.name

    def up_sections(self, url: str | None = None, stored: dict | None = None) -> list[Section]:
        return parse_sections(self.up)

    def down_sections(self, url: str | None = None) -> list[Section]:
        return parse_sections(self.down)

    def revert_sections(self, url: str) -> list[Section]:
        """down.sql: every statement guarded, so it also cleans up a partial apply."""
        return parse_sections(self.down)

    def checks(self, url: str | None = None, stored: dict | None = None) -> list[dict]:
        """verify.sql: "-- runbook:check DESCRIPTION" then a query returning one boolean."""
        text = self.verify.read_text()
        parts = _DIRECTIVE.split(text)
        out = []
        for i in range(1, len(parts) - 2, 3):
            if parts[i] == "check":
                out.append({"description": parts[i + 1].strip(), "sql": parts[i + 2].strip().rstrip(";")})
        if not out:
            raise RunbookError(f"{self.verify.name}: no '-- runbook:check' queries")
        return out


def parse_sections(path: Path) -> list[Section]:
    text = path.read_text()
    matches = list(_DIRECTIVE.finditer(text))
    sections: list[Section] = []
    for i, m in enumerate(matches):
        kind, args = m.group(1), m.group(2).split()
        body = text[m.end(): matches[i + 1].start() if i + 1 < len(matches) else len(text)].strip()
        if kind == "section":
            sections.append(Section(args[0], body, transactional="no-transaction" not in args[1:]))
        elif kind == "backfill":
            try:
                pairs = [tuple(a.split("=", 1)) for a in args[1:]]
                assert pairs and all(len(p) == 2 and all(p) for p in pairs)
            except (AssertionError, IndexError):
                raise RunbookError(f"{path.name}: malformed backfill directive {m.group(0)!r}") from None
            sections.append(Section(f"backfill_{args[0]}", "", backfill_table=args[0],
                                    backfill_pairs=pairs))
    if not sections:
        raise RunbookError(f"{path.name}: no '-- runbook:section' directives")
    names = [s.name for s in sections]
    if len(set(names)) != len(names):
        raise RunbookError(f"{path.name}: duplicate section names {names}")
    return sections


def load(migration_id: str, directory: Path = MIGRATIONS_DIR):
    """The migration by id (`014` or its full name): a generated one (generated.registry) or a
    triad of files."""
    migration_id = resolve_id(migration_id, directory)
    from runbook.tasks.database import generated  # generated migrations build on this module

    if migration_id in (found := generated.registry()):
        return found[migration_id]
    files = {kind: directory / f"{migration_id}.{kind}.sql" for kind in ("up", "down", "verify")}
    missing = [p.name for p in files.values() if not p.exists()]
    if missing:
        raise RunbookError(f"migration {migration_id}: missing {', '.join(missing)} in {directory}")
    return Migration(migration_id, files["up"], files["down"], files["verify"])


def known_ids(directory: Path = MIGRATIONS_DIR) -> list[str]:
    from runbook.tasks.database import generated

    on_disk = {p.name.removesuffix(".up.sql") for p in directory.glob("*.up.sql")}
    return sorted(on_disk | set(generated.registry()))


def resolve_id(migration_id: str, directory: Path = MIGRATIONS_DIR) -> str:
    """`014` -> `014_standardize_quantity_fields`; a full id is returned as is."""
    if "_" in migration_id:
        return migration_id
    matches = [m for m in known_ids(directory) if m.split("_", 1)[0] == migration_id]
    if len(matches) != 1:
        raise RunbookError(f"unknown migration {migration_id!r}; choose one of: {', '.join(known_ids(directory))}")
    return matches[0]

"""Migrations generated from the live catalog, and what they share.

A generated migration is a spec (data from the target description) and a builder that reads
the catalog and returns a Plan: sections of SQL, each listing the objects it creates or changes
with the SQL that undoes them (a change: the prior definition), plus the checks of its verify.
The runner records each object in the ledger in the transaction that makes it, fixes the plan in
the ledger when a fresh apply starts (a resumed apply runs the plan it began with), and reverts
by undoing exactly the recorded objects, newest first.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from runbook.errors import RunbookError
from runbook.tasks.database import ledger
from runbook.tasks.database.migration_files import Section


def q(*names: str) -> str:
    return ".".join(sql.Identifier(n).as_string(None) for n in names)


@dataclass
class Change:
    """One object the up creates or changes, and the SQL that undoes it."""
    kind: str                 # column | constraint | index | trigger | function | view
    name: str
    action: str               # created | replaced
    undo: str
    prior: str | None = None
    concurrent: bool = False  # the undo must run outside a transaction (DROP INDEX CONCURRENTLY)

    def record(self) -> dict:
        return {"kind": self.kind, "name": self.name, "action": self.action, "prior": self.prior,
                "detail": {"undo": self.undo, "concurrent": self.concurrent}}


@dataclass
class Plan:
    sections: list[Section] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)     # {"description", "sql"} | {"function", "names"}
    notes: list[str] = field(default_factory=list)
    pairs: dict[str, list[list[str]]] = field(default_factory=dict)   # table -> [old, new] kept in sync
    facts: dict = field(default_factory=dict)     # what gates need to know of the plan (e.g. tables)

    def to_json(self) -> dict:
        return {"sections": [s.to_json() for s in self.sections], "checks": self.checks,
                "notes": self.notes, "pairs": self.pairs, "facts": self.facts}

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        return cls([Section.from_json(s) for s in data["sections"]], data["checks"], data["notes"],
                   data.get("pairs") or {}, data.get("facts") or {})

    def sql_text(self) -> str:
        """The whole plan as SQL text, section by section (what `runbook migrate plan` prints)."""
        parts = [f"-- note: {n}" for n in self.notes]
        for s in self.sections:
            parts.append(f"-- section {s.name}{'' if s.transactional else ' (no transaction)'}\n{s.preview()}")
        return "\n\n".join(parts) + "\n"


def section(name: str, statements: list[str], changes: list[Change], transactional: bool = True) -> Section | None:
    if not statements:
        return None
    return Section(name, "\n".join(statements), transactional=transactional,
                   objects=[c.record() for c in changes])



# -- the down: exactly the recorded objects, newest first -------------------------------------

def undo_sections(objects: list[dict]) -> list[Section]:
    """Sections undoing `objects` (ledger rows or planned records) in reverse order; each
    section carries the ledger ids it undoes so it can forget them as it commits."""
    out: list[Section] = []
    for o in reversed(objects):
        detail = o["detail"] if isinstance(o["detail"], dict) else json.loads(o["detail"])
        concurrent = bool(detail.get("concurrent"))
        if not out or out[-1].transactional == concurrent:
            out.append(Section(f"undo_{len(out) + 1}", "", transactional=not concurrent))
        s = out[-1]
        s.sql = (s.sql + "\n" if s.sql else "") + detail["undo"]
        if o.get("id") is not None:
            s.forget.append(o["id"])
    return out


# -- the migration ------------------------------------------------------------------------------

@dataclass
class GeneratedMigration:
    """A migration whose SQL the runner generates from the catalog (see module docstring)."""
    id: str
    spec: tuple
    builder: Callable[[str, int, tuple], Plan]     # (database url, migration number, spec)
    sources: tuple[str, ...]                       # the files that make its SQL (checksum)

    @property
    def number(self) -> int:
        return int(self.id.split("_", 1)[0])

    @property
    def checksum(self) -> str:
        """The spec and the code that turns it into SQL: equal on staging and production."""
        h = hashlib.sha256(self.id.encode())
        h.update(json.dumps(self.spec, default=list).encode())
        for module in ("generated.py", *self.sources):
            h.update((Path(__file__).parent / module).read_bytes())
        return h.hexdigest()

    @property
    def verify_name(self) -> str:
        return f"{self.id} (generated checks)"

    def plan(self, url: str) -> Plan:
        return self.builder(url, self.number, self.spec)

    def up_sections(self, url: str | None = None, stored: dict | None = None) -> list[Section]:
        if stored:
            return Plan.from_json(stored).sections
        if url is None:
            raise RunbookError(f"{self.id} is generated from a database's catalog: give its URL")
        return self.plan(url).sections

    def down_sections(self, url: str | None = None) -> list[Section]:
        """What a revert would run after a complete apply of this database's plan (preview)."""
        return undo_sections([o for s in self.up_sections(url) for o in s.objects])

    def revert_sections(self, url: str) -> list[Section]:
        """Exactly the objects the ledger says an apply created or changed, newest first."""
        return undo_sections(ledger.recorded_objects(url, self.id))

    def checks(self, url: str | None = None, stored: dict | None = None) -> list[dict]:
        if stored:
            return Plan.from_json(stored).checks
        return self.plan(url).checks


def registry() -> dict[str, GeneratedMigration]:
    """The generated migrations by id."""
    from runbook.plan import MIGRATION_014, MIGRATION_015
    from runbook.target import DAWSOS
    from runbook.tasks.database import expand, fk_quarantine

    return {MIGRATION_014: GeneratedMigration(MIGRATION_014, DAWSOS.column_renames, expand.build_plan,
                                              ("expand.py", "sql_rewrite.py", "sql/sync_renamed_columns.sql")),
            MIGRATION_015: GeneratedMigration(MIGRATION_015, DAWSOS.foreign_keys, fk_quarantine.build_plan,
                                              ("fk_quarantine.py",))}


def plan_facts(url: str, migration_id: str) -> dict:
    """The facts of the plan the ledger holds for an apply of `migration_id` ({} if none)."""
    state = ledger.migration_state(url, migration_id)
    return Plan.from_json(state["plan"]).facts if state and state.get("plan") else {}

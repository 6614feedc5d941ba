"""Schema gates of Week 0, Task 2.2: the deployed SQL, rebuilt in a scratch database, has the
live catalog exactly."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect, drop_database, recreate_database
from runbook.target import DAWSOS
from runbook.tasks.code.schema_defs import duplicates
from runbook.tasks.database import queries


@gate('schema:defined-once', checks='every table is created by exactly one statement in schema/ + migrations',
      runs_in='Week 0 Day 3-4 (schema dedupe)')
def duplicates_gate(repo: Path) -> GateResult:
    dups = duplicates(repo)
    return GateResult(
        name="schema:defined-once", passed=not dups,
        expectation=f"every table is created by exactly one statement in {DAWSOS.schema_dir} + {DAWSOS.migrations_dir}",
        observed=len(dups), expected=0,
        sample=[{"table": t, "defined_in": ", ".join(f"{d.path}:{d.line}" for d in ds)} for t, ds in dups.items()])



CATALOG_QUERIES = {kind: queries.text(f"snapshot_{kind}") for kind in ("tables", "columns", "constraints")}



def catalog_snapshot(url: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    with connect(url) as conn:
        for kind, query in CATALOG_QUERIES.items():
            rows = conn.execute(query).fetchall()
            out[kind] = {r[0]: (r[1] if len(r) > 1 else "") for r in rows}
    return out



def catalog_diff(live: dict[str, dict[str, str]], scratch: dict[str, dict[str, str]]) -> list[dict]:
    diffs = []
    for kind in CATALOG_QUERIES:
        a, b = live.get(kind, {}), scratch.get(kind, {})
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                diffs.append({"kind": kind, "name": name, "live": a.get(name, "(missing)"),
                              "rebuilt": b.get(name, "(missing)")})
    return diffs



def build(url: str, checkout: Path) -> tuple[list[str], str | None]:
    """Apply the checkout's schema/ + migrations; (files applied, first error or None)."""
    from runbook.tasks.database.schema_build import load_schema

    try:
        return load_schema(url, Path(checkout)), None
    except RuntimeError as exc:
        return [], str(exc).splitlines()[0]



@gate('schema:rebuild-matches-live', checks='a database rebuilt from the deployed SQL has the live catalog exactly (nothing rebuilt fails)',
      runs_in='Week 0 Day 3-4 (schema dedupe)')
def compare_rebuild(live_url: str, server_url: str, scratch_db: str, checkout: Path,
                    after_build: Callable[[str], None] | None = None) -> GateResult:
    """Scratch database from the checkout's SQL (+ `after_build(url)`: the runbook's own
    changes), its public catalog compared with the live one; the scratch DB is dropped after."""
    name = "schema:rebuild-matches-live"
    expectation = ("a database rebuilt from schema/ + migrations (+ the runbook's applied "
                   "migrations) has the live database's tables, columns and constraints")
    scratch = recreate_database(server_url, scratch_db)
    try:
        files, error = build(scratch, checkout)
        if error:
            return GateResult(name=name, passed=False, expectation=expectation, observed="rebuild failed",
                              expected="0 differences", sample=[{"kind": "rebuild", "error": error}])
        if after_build:
            after_build(scratch)
        rebuilt = catalog_snapshot(scratch)
        diffs = catalog_diff(catalog_snapshot(live_url), rebuilt)
    finally:
        drop_database(server_url, scratch_db)
    if not rebuilt.get("tables"):   # an empty rebuild matched against nothing proves nothing
        diffs = diffs or [{"kind": "rebuild", "name": "(all)", "live": "-", "rebuilt": "no table rebuilt"}]
    return GateResult(name=name, passed=not diffs, expectation=expectation,
                      observed=f"{len(diffs)} differences", expected="0 differences", sample=diffs[:20],
                      details={"files_applied": len(files), "rebuilt": {k: len(v) for k, v in rebuilt.items()}})

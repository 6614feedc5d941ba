"""The plan's code updates: each a transform (checkout, dry_run) -> report wrapping one codemod,
the name of its step, and its commit message. The code-update step commits, deploys and
reverts around the transform."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from runbook.target import DAWSOS
from runbook.tasks.code.authorization import add_authorization
from runbook.tasks.code.frontend_panels import read_panels_from_backend
from runbook.tasks.code.input_schemas import add_input_schemas
from runbook.tasks.code.panels import move_panels
from runbook.tasks.code.pool import configure_pool
from runbook.tasks.code.rename import rename
from runbook.tasks.code.schema_defs import dedupe
from runbook.tasks.code.simpleeval import convert


def rename_excludes(checkout: Path) -> list[str]:
    """What the rename and its gate leave alone in this checkout (see TargetDescription)."""
    migdir = Path(checkout) / DAWSOS.migrations_dir
    return DAWSOS.history_excludes([p.name for p in migdir.glob("*.sql")])


def rename_fields(checkout, dry_run: bool) -> dict:
    """Week 0 Day 1-2: the code names that follow the columns 014 adds."""
    report = rename(Path(checkout), DAWSOS.code_renames, exclude=rename_excludes(checkout), dry_run=dry_run)
    return {"files": len(report.changes), "replacements": report.total, "diff": report.diff(),
            "per_file": report.counts_table(),
            "aliases_to_review": [f"{o.path}:{o.line}: {o.text.strip()}" for o in report.aliases],
            "near_misses_left": len(report.near_misses)}


def pool_config(checkout, dry_run: bool) -> dict:
    """Week 0 Day 3-4, Task 2.3: the plan's connection pool."""
    report = configure_pool(Path(checkout), dry_run=dry_run)
    return {"files": len(report.changed), "changed": report.changed,
            "create_pool_calls": report.calls_configured, "diff": report.diff()}


def dedupe_schema(checkout, dry_run: bool) -> dict:
    """Week 0 Day 3-4, Task 2.2: duplicate table definitions out of the migrations."""
    report = dedupe(Path(checkout), dry_run=dry_run)
    return {"files": len(report.diffs), "removed": [f"{d.table} from {d.path}:{d.line}" for d in report.removed],
            "unresolved": report.unresolved, "diff": report.diff()}


def simpleeval(checkout, dry_run: bool) -> dict:
    """Week 0 Day 5, Task 3.1: eval() -> simpleeval."""
    return convert(Path(checkout), dry_run=dry_run).as_dict()


def authorization(checkout, dry_run: bool) -> dict:
    """Week 0 Day 5, Task 3.2: the caller's rights checked."""
    return add_authorization(Path(checkout), dry_run=dry_run).as_dict()


def panels(checkout, dry_run: bool) -> dict:
    """Week 1, Tasks 4.1 + 4.3 step 1: panel definitions from the frontend into the pattern JSON."""
    return move_panels(Path(checkout), dry_run=dry_run).as_dict()


def frontend_panels(checkout, dry_run: bool) -> dict:
    """Week 1, Task 4.3 steps 2-3: responses carry the panels; the frontend renders from them."""
    return read_panels_from_backend(Path(checkout), dry_run=dry_run).as_dict()


def input_schemas(checkout, dry_run: bool) -> dict:
    """Week 1, Task 4.2: Pydantic input models, validated before a pattern runs (422)."""
    return add_input_schemas(Path(checkout), dry_run=dry_run).as_dict()


class CodeUpdate(NamedTuple):
    step: str                                  # the flow step (and ledger) name
    preview: str                               # the name `runbook codemod` and dry runs show
    transform: Callable[[object, bool], dict]
    message: str                               # the commit message on the environment's branch


RENAME_FIELDS = CodeUpdate(
    "code:rename-fields", "rename", rename_fields,
    "Week 0 Day 1-2: standardize field names (qty_open -> quantity_open, "
    "qty_original -> quantity_original, dates -> asof_date)")
POOL_CONFIG = CodeUpdate(
    "code:pool-config", "pool-config", pool_config,
    "Week 0 Day 3-4: connection pool (min 5, max 20, timeout 30 s, command timeout 60 s) "
    "with a health check in /health")
DEDUPE_SCHEMA = CodeUpdate(
    "code:dedupe-schema", "dedupe-schema", dedupe_schema,
    "Week 0 Day 3-4: remove duplicate table definitions from migrations "
    "(backend/db/schema/ is the one definition)")
SIMPLEEVAL = CodeUpdate(
    "code:simpleeval", "simpleeval", simpleeval,
    "Week 0 Day 5: replace eval() in the pattern orchestrator with simpleeval")
AUTHORIZATION = CodeUpdate(
    "code:authorization", "authorization", authorization,
    "Week 0 Day 5: check the caller's rights, from the verified token's role, on every route "
    "and in the orchestrator")
PANELS = CodeUpdate(
    "code:panels", "panels", panels,
    "Week 1 Days 3-5: panel definitions (dataPath, columns, config) move from the frontend "
    "patternRegistry into the backend pattern JSON")
FRONTEND_PANELS = CodeUpdate(
    "code:frontend-panels", "frontend-panels", frontend_panels,
    "Week 1 Days 3-5: pattern responses carry their panel metadata; the frontend renders panels "
    "from the response and its registry keeps only name, icon and category")
INPUT_SCHEMAS = CodeUpdate(
    "code:input-schemas", "input-schemas", input_schemas,
    "Week 1 Days 3-5: Pydantic input models generated from each pattern's inputs; run_pattern "
    "validates before running (422 with field-level errors)")
WEEK1_UPDATES = (PANELS, INPUT_SCHEMAS, FRONTEND_PANELS)

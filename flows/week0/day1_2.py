"""Week 0 of the plan: Foundation. One flow per plan day; each reads like the plan's day."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow

from runbook.tasks.steps.day import DayOutcome, DayPlan, run_day, smoke_step
from runbook.context import RunContext
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.database import migration_files
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import code_update_step
from runbook.tasks.code.rename import find_old_names, rename
from runbook.tasks.database.migrate import primary_key
from runbook.tasks.steps.migration import backup_step, migration_step, rehearsal_step
from runbook.tasks.steps.core import gate_step

Environment = Literal["staging", "production"]

# -- Day 1-2: database field standardisation ------------------------------------------------

MIGRATION_014 = "014_standardize_quantity_fields"
# code names that follow the columns 014 adds (old -> new)
RENAMES_014 = {"qty_open": "quantity_open", "qty_original": "quantity_original",
               "as_of_date": "asof_date", "price_date": "asof_date"}


def migration_history_excludes(checkout: Path, below: int) -> list[str]:
    """Left alone by the rename and its gate: the target's migration history before `below`
    (history is never rewritten), and the schema DDL in backend/db/schema, which describes the
    live tables — they keep their old columns until the contract flow drops them, and the
    migration history must still build on top of that DDL."""
    migdir = Path(checkout) / "backend" / "db" / "migrations"
    return ["backend/db/schema/*"] + sorted(
        f"backend/db/migrations/{p.name}" for p in migdir.glob("*.sql")
        if p.name[:3].isdigit() and int(p.name[:3]) < below)


def plan_validation_gate(url: str) -> GateResult:
    """The plan's own Task 1.1 validation queries, verbatim, and its expected result."""
    from runbook.expectations.parity import plan_validation_queries

    out = plan_validation_queries(url)
    d = out.get("data") or {}
    not_null = {c["column_name"]: c["is_nullable"] for c in out["columns"]}
    ok = (bool(d) and d["total_lots"] == d["matching_open"] == d["matching_original"]
          and not_null.get("quantity_open") == "NO" and not_null.get("quantity_original") == "NO")
    return GateResult(name="plan-validation:014", passed=ok,
                      expectation="the plan's Task 1.1 queries: all lots match, no NULLs in the new columns",
                      observed={"data": d, "columns": not_null},
                      expected="total_lots = matching_open = matching_original; new columns NOT NULL",
                      details={"queries": out["queries"], "error": out.get("data_error")})


def parity_gates(url: str, data: dict) -> list[GateResult]:
    """Parity of every column pair 014 backfills (one GX scan per table), and the plan's own
    validation queries."""
    from runbook.expectations.parity import parity_gate

    m = migration_files.load(MIGRATION_014)
    rows = (data or {}).get("rows") or {}
    out = []
    with connect(url) as conn:
        keys = {s.backfill_table: primary_key(conn, s.backfill_table) for s in m.up_sections() if s.is_backfill}
    for s in m.up_sections():
        if s.is_backfill:
            out.append(parity_gate(url, s.backfill_table, s.backfill_pairs, key=keys[s.backfill_table][0],
                                   expected_rows=rows.get(s.backfill_table)))
    return [*out, plan_validation_gate(url)]


def rename_transform(checkout, dry_run: bool) -> dict:
    report = rename(Path(checkout), RENAMES_014, exclude=migration_history_excludes(checkout, 14),
                    dry_run=dry_run)
    return {"files": len(report.changes), "replacements": report.total, "diff": report.diff(),
            "per_file": report.counts_table(),
            "aliases_to_review": [f"{o.path}:{o.line}: {o.text.strip()}" for o in report.aliases],
            "near_misses_left": len(report.near_misses)}


def old_names_gate(ctx: RunContext) -> GateResult:
    """The plan's grep validation, by the boundary rule, outside the migration history."""
    found, near = find_old_names(ctx.deploy_dir, list(RENAMES_014),
                                 exclude=migration_history_excludes(ctx.deploy_dir, 14))
    return GateResult(name="code:old-names", passed=not found,
                      expectation="0 occurrences of " + ", ".join(RENAMES_014) + " in the deployed code",
                      observed=len(found), expected=0,
                      sample=[{"file": o.path, "line": o.line, "name": o.name, "text": o.text.strip()[:120]}
                              for o in found[:10]],
                      details={"near_misses_left_alone": [f"{o.path}:{o.line} {o.name}" for o in near[:50]]})


def day1_2_steps(ctx: RunContext) -> list:
    m = migration_files.load(MIGRATION_014)
    return [
        backup_step(),
        rehearsal_step(m, parity_gates),
        approval_step("migration 014 (standardize quantity fields)"),
        migration_step(m, parity_gates),
        code_update_step("code:rename-fields", rename_transform,
                         "Week 0 Day 1-2: standardize field names (qty_open -> quantity_open, "
                         "qty_original -> quantity_original, dates -> asof_date)"),
        gate_step("code:old-names", old_names_gate),
        smoke_step("smoke"),
    ]


DAY_1_2 = DayPlan("week0-day1-2-standardize-fields", [MIGRATION_014], day1_2_steps, [("rename", rename_transform)])


@flow(name="week0-day1-2-standardize-fields",
      description="Week 0, Day 1-2: Database field standardization. Migration 014 (expand: "
                  "quantity_open/quantity_original and asof_date beside the old columns, synced), "
                  "parity gate, backend code + pattern JSON rename, grep gate, 13-pattern smoke.")
def standardize_fields(environment: Environment = "staging", dry_run: bool = False,
                       require_approval: bool | None = None, batch_size: int = 2000,
                       lock_timeout_ms: int = 2000) -> DayOutcome:
    return run_day(DAY_1_2, environment=environment, dry_run=dry_run, require_approval=require_approval,
                   batch_size=batch_size, lock_timeout_ms=lock_timeout_ms)

"""Week 0 Day 3-4 as commands: the pool and duplicate-definition codemods (previewable), and
the integrity, FK-index and duplicate-definition gates on their own."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from runbook.cli.app import codemod_app, console, gate_app
from runbook.gate_result import GateResult

ENV_OPTION = typer.Option("staging", help="which configured database: staging or production")
REPO_OPTION = typer.Option(..., help="work tree of the DawsOS backend")
DRY_RUN_OPTION = typer.Option(False, help="print the diff, change nothing")


def _database(environment: str) -> str:
    from runbook.context import database_for
    from runbook.errors import RunbookError
    from runbook.plan import ENVIRONMENTS
    from runbook.settings import get_settings

    if environment not in ENVIRONMENTS:
        raise RunbookError(f"--environment must be 'staging' or 'production', not {environment!r}")
    return database_for(environment, get_settings())  # type: ignore[arg-type]


def _show(results: list[GateResult]) -> None:
    table = Table("gate", "result", "observed", "expected", title="gates")
    for r in results:
        table.add_row(r.name, "[green]passed[/]" if r.passed else "[red]FAILED[/]", str(r.observed), str(r.expected))
    console.print(table)
    for r in results:
        for row in r.sample[:10] if not r.passed else []:
            console.print(f"  {r.name}: {row}", markup=False, highlight=False)
    raise typer.Exit(0 if all(r.passed for r in results) else 1)


@codemod_app.command("pool-config")
def codemod_pool_config(repo: Path = REPO_OPTION,
                        dry_run: bool = DRY_RUN_OPTION) -> None:
    """The plan's asyncpg pool (min 5, max 20, timeout 30, command timeout 60) and a pool
    health report in /health (libcst: database.py and main.py)."""
    from runbook.tasks.code.pool import configure_pool

    report = configure_pool(repo, dry_run=dry_run)
    console.print(report.diff() or "(no change: already configured)", markup=False, highlight=False)
    console.print(f"{'would change' if dry_run else 'changed'}: {', '.join(report.changed) or 'nothing'}; "
                  f"{report.calls_configured} create_pool call(s) configured")


@codemod_app.command("dedupe-schema")
def codemod_dedupe_schema(repo: Path = REPO_OPTION,
                          dry_run: bool = DRY_RUN_OPTION) -> None:
    """Remove from backend/db/migrations the CREATE TABLE of tables backend/db/schema defines."""
    from runbook.tasks.code.schema_defs import dedupe

    report = dedupe(repo, dry_run=dry_run)
    console.print(report.diff() or "(no duplicate definitions)", markup=False, highlight=False)
    for d in report.removed:
        console.print(f"{'would remove' if dry_run else 'removed'} {d.table} from {d.path}:{d.line}", markup=False)
    for table, places in report.unresolved.items():
        console.print(f"[yellow]left alone[/] {table} (not in schema/ exactly once): {', '.join(places)}")


@gate_app.command("duplicate-tables")
def gate_duplicate_tables(repo: Path = REPO_OPTION) -> None:
    """Every table is created by exactly one statement in backend/db/schema + migrations (pglast)."""
    from runbook.expectations.schema import duplicates_gate

    _show([duplicates_gate(repo)])


@gate_app.command("integrity")
def gate_integrity(environment: str = ENV_OPTION) -> None:
    """0 orphans in lots/transactions.security_id, FKs present and validated, an orphan insert
    rejected (rolled back)."""
    from runbook.expectations.week0.day3_4 import integrity_suite

    _show(integrity_suite(_database(environment)))


@gate_app.command("fk-indexes")
def gate_fk_indexes(environment: str = ENV_OPTION) -> None:
    """Every FK has a covering index, and EXPLAIN (enable_seqscan = off) of the common queries
    and FK lookups uses one."""
    from runbook.expectations.week0.day3_4 import fk_index_gates

    _show(fk_index_gates(_database(environment)))

"""`runbook migrate status|plan|apply|verify|revert ID --database-url URL`: one migration, with
the flows' ledger, lock, batches, timeouts and proofs, and none of the flow (no backup, no
code, no Prefect): for the DBA who runs one migration by hand."""
from __future__ import annotations

import time
import uuid
from typing import Optional

import typer

from runbook.cli.app import app, console
from runbook.errors import RunbookError

migrate_app = typer.Typer(help="One migration on its own: status, plan (the SQL generated for that "
                               "database), apply, verify, revert.", no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")

ID = typer.Argument(None, help="migration id, e.g. 014 or 014_standardize_quantity_fields")
URL = typer.Option(..., "--database-url", envvar="DATABASE_URL", help="the target database")


def _options(batch_size: int, lock_timeout_ms: int, statement_timeout_ms: int, idle_timeout_ms: int,
             accept: list[str]):
    from runbook.tasks.database.migrate import MigrationOptions

    return MigrationOptions(batch_size=batch_size, lock_timeout_ms=lock_timeout_ms,
                            statement_timeout_ms=statement_timeout_ms,
                            idle_in_transaction_timeout_ms=idle_timeout_ms,
                            accept_trigger_effects=tuple(accept),
                            flow_run_id=f"cli-migrate-{uuid.uuid4().hex[:12]}")   # its own lease owner


def _gates(migration_id: str):
    """The data gates the flows run after this migration."""
    from runbook.expectations.contract import contract_gates
    from runbook.expectations.week0.day1_2 import parity_gates
    from runbook.expectations.week0.day3_4 import integrity_gates, no_gates
    from runbook.plan import MIGRATION_014, MIGRATION_015, MIGRATION_016, MIGRATION_017

    return {MIGRATION_014: parity_gates, MIGRATION_015: integrity_gates, MIGRATION_016: no_gates,
            MIGRATION_017: contract_gates}.get(migration_id, no_gates)


def _load(migration_id: str | None):
    from runbook.tasks.database import migration_files

    if not migration_id:
        raise RunbookError("give a migration id, e.g. 014; `runbook migrate status` lists them")
    return migration_files.load(migration_id)


def _show(results) -> bool:
    ok = True
    for r in results:
        ok &= r.passed
        console.print(f"{'[green]✓' if r.passed else '[red]✗'}[/] {r.name}: {r.observed} (expected {r.expected})")
        for row in r.sample[:5] if not r.passed else ():
            console.print(f"    {row}", markup=False)
    return ok


def _connectable(url: str) -> None:
    from runbook.pg import connect

    connect(url).close()


@migrate_app.command("status")
def status(migration_id: Optional[str] = ID, database_url: str = URL) -> None:  # noqa: UP045 - typer
    """What the ledger says: each migration's status, checksum, and recorded objects."""
    from runbook.tasks.database import ledger, migration_files

    _connectable(database_url)
    ids = [migration_files.resolve_id(migration_id)] if migration_id else migration_files.known_ids()
    for mid in ids:
        m = migration_files.load(mid)
        state = ledger.migration_state(database_url, mid) or {}
        typer.echo(f"{mid}: {state.get('status', 'not applied')}; checksum ledger "
                   f"{(state.get('checksum') or '-')[:12]} / code {m.checksum[:12]}; "
                   f"{len(ledger.recorded_objects(database_url, mid))} objects recorded; "
                   f"applied at {state.get('applied_at') or '-'}")


@migrate_app.command("plan")
def plan(migration_id: Optional[str] = ID, database_url: str = URL) -> None:  # noqa: UP045 - typer
    """The SQL the runner would run on this database (generated from its catalog), and the SQL
    of its revert; nothing is changed."""
    from runbook.tasks.database import ledger

    _connectable(database_url)
    m = _load(migration_id)
    state = ledger.migration_state(database_url, m.id) or {}
    if getattr(m, "plan", None) and state.get("plan"):
        typer.echo(f"-- {m.id}: {state['status']}; the plan kept in the ledger:")
    if getattr(m, "plan", None) and not state.get("plan"):
        typer.echo(m.plan(database_url).sql_text())
    else:
        for s in m.up_sections(database_url, stored=state.get("plan")):
            typer.echo(f"-- section {s.name}{'' if s.transactional else ' (no transaction)'}\n{s.preview()}\n")
    typer.echo("-- revert:")
    for s in m.down_sections(database_url):
        typer.echo(f"-- section {s.name}{'' if s.transactional else ' (no transaction)'}\n{s.preview()}\n")


@migrate_app.command("apply")
def apply(migration_id: Optional[str] = ID, database_url: str = URL,  # noqa: UP045 - typer
          batch_size: int = typer.Option(2000, help="backfill rows per transaction"),
          lock_timeout_ms: int = typer.Option(2000), statement_timeout_ms: int = typer.Option(600_000),
          idle_timeout_ms: int = typer.Option(60_000, help="idle_in_transaction_session_timeout"),
          accept_trigger_effects: list[str] = typer.Option([], help="user trigger a backfill may fire")) -> None:
    """Apply (or resume) one migration holding the database's lease, then its checks and gates."""
    from runbook.tasks.database import checksums, lease, ledger, migrate

    _connectable(database_url)
    m = _load(migration_id)
    opts = _options(batch_size, lock_timeout_ms, statement_timeout_ms, idle_timeout_ms, accept_trigger_effects)
    ledger.ensure(database_url)
    with lease.held(database_url, opts.flow_run_id, f"runbook migrate {m.id}"):
        state = ledger.migration_state(database_url, m.id)
        fresh = not state or state["status"] not in ("applying", "applied")
        before = checksums.table_checksums(database_url) if fresh else None
        started = time.monotonic()
        report = migrate.apply(database_url, m, opts, baseline=before)
        elapsed = time.monotonic() - started
        console.print(f"{m.id}: applied in {elapsed:.2f}s; sections run: {', '.join(report.sections_run) or '-'}; "
                      f"skipped: {', '.join(report.sections_skipped) or '-'}")
        for rel, how in report.triggers_kept_out.items():
            console.print(f"  backfill of {rel}: {how}", markup=False)
        rows = {t: int(v.split(":")[0]) for t, v in (before or {}).items()}
        ok = _show([migrate.verify(database_url, m), *_gates(m.id)(database_url, {"rows": rows})])
    raise typer.Exit(0 if ok else 1)


@migrate_app.command("verify")
def verify(migration_id: Optional[str] = ID, database_url: str = URL) -> None:  # noqa: UP045 - typer
    """The migration's checks and data gates; exit 1 if one does not hold."""
    from runbook.tasks.database import migrate

    _connectable(database_url)
    m = _load(migration_id)
    raise typer.Exit(0 if _show([migrate.verify(database_url, m), *_gates(m.id)(database_url, {})]) else 1)


@migrate_app.command("revert")
def revert(migration_id: Optional[str] = ID, database_url: str = URL,  # noqa: UP045 - typer
           lock_timeout_ms: int = typer.Option(2000), statement_timeout_ms: int = typer.Option(600_000),
           idle_timeout_ms: int = typer.Option(60_000, help="idle_in_transaction_session_timeout")) -> None:
    """Undo exactly what the apply did, then compare every table with the checksums taken
    before it (rows written meanwhile by the application show as differences)."""
    from runbook.tasks.database import checksums, lease, ledger, migrate

    _connectable(database_url)
    m = _load(migration_id)
    opts = _options(2000, lock_timeout_ms, statement_timeout_ms, idle_timeout_ms, [])
    ledger.ensure(database_url)
    with lease.held(database_url, opts.flow_run_id, f"runbook migrate {m.id}"):
        state = ledger.migration_state(database_url, m.id)
        if not state or state["status"] not in ("applied", "applying", "reverting"):
            raise RunbookError(f"migration {m.id} is not applied ({state['status'] if state else 'no ledger record'}); "
                               "nothing to revert")
        started = time.monotonic()
        ran = migrate.revert(database_url, m, opts)
        console.print(f"{m.id}: reverted in {time.monotonic() - started:.2f}s ({len(ran)} sections)")
        before = state.get("baseline")
        if before:
            changed = checksums.diff(before, checksums.table_checksums(database_url, list(before)))
            console.print(f"tables differing from before the apply: {len(changed)}"
                          + ("" if not changed else " — " + ", ".join(c["table"] for c in changed)))
            raise typer.Exit(1 if changed else 0)

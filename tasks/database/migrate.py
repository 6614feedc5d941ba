"""Run a migration triad against a database: apply (resumable), verify, revert.

Every section runs in a short transaction with lock_timeout; a lock timeout is retried with
exponential backoff instead of queueing behind (and in front of) application traffic.
Backfills are batches of contiguous heap blocks (TID ranges), each its own transaction, checkpointed in
the ledger, so a killed run resumes where it stopped.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import errors, sql

from runbook.errors import RunbookError
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.database import ledger
from runbook.tasks.database.migration_files import Migration, Section

log = logging.getLogger("runbook.migrate")
Progress = Callable[[str, int, int], None]   # (table, rows_done, rows_total)


@dataclass
class MigrationOptions:
    batch_size: int = 2000
    lock_timeout_ms: int = 2000
    retries: int = 8
    backoff_s: float = 0.05
    flow_run_id: str | None = None
    progress: Progress | None = None
    # for crash tests: stop (raise) after this many backfill batches
    stop_after_batches: int | None = None


@dataclass
class ApplyReport:
    migration_id: str
    sections_run: list[str] = field(default_factory=list)
    sections_skipped: list[str] = field(default_factory=list)
    rows_backfilled: dict[str, int] = field(default_factory=dict)
    lock_retries: int = 0


def with_lock_retry(fn, opts: MigrationOptions, what: str, report: ApplyReport | None = None):
    delay = opts.backoff_s
    for attempt in range(opts.retries + 1):
        try:
            return fn()
        except (errors.LockNotAvailable, errors.DeadlockDetected) as exc:
            if attempt == opts.retries:
                raise RunbookError(f"{what}: could not take its lock after {opts.retries} retries "
                                   f"(lock_timeout {opts.lock_timeout_ms} ms): {exc.diag.message_primary}") from None
            if report:
                report.lock_retries += 1
            log.warning("%s: lock timeout, retry %d in %.2fs", what, attempt + 1, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _run_section(url: str, migration: Migration, section: Section, opts: MigrationOptions,
                 mark: bool, report: ApplyReport | None = None) -> None:
    def attempt():
        if section.transactional:
            with connect(url) as conn:
                conn.execute(f"SET LOCAL lock_timeout = '{int(opts.lock_timeout_ms)}ms'")
                # migrations record which run did what (e.g. quarantined rows)
                conn.execute("SELECT set_config('runbook.flow_run_id', %s, true)", (opts.flow_run_id or "",))
                conn.execute(section.sql)
                if mark:
                    ledger.mark_section(conn, migration.id, section.name)
        else:
            with connect(url, autocommit=True) as conn:
                conn.execute(f"SET lock_timeout = '{int(opts.lock_timeout_ms)}ms'")
                for stmt in _statements(section.sql):
                    conn.execute(stmt)
                if mark:
                    ledger.mark_section(conn, migration.id, section.name)
    with_lock_retry(attempt, opts, f"{migration.id}:{section.name}", report)


def _statements(text: str) -> list[str]:
    """Split a no-transaction section into statements (each must run on its own)."""
    import pglast

    return [s.strip() for s in pglast.split(text) if s.strip()]


def primary_key(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        """SELECT a.attname FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
            ORDER BY array_position(i.indkey, a.attnum)""", (table,)).fetchall()
    if not rows:
        raise RunbookError(f"table {table!r} is missing or has no primary key to backfill by")
    return [r[0] for r in rows]


def _backfill(url: str, migration: Migration, section: Section, opts: MigrationOptions,
              report: ApplyReport, direction: str = "up") -> None:
    """Backfill in physical order: each batch is a range of heap blocks (a TID range scan), so
    a batch rewrites a few contiguous pages instead of ~batch_size random ones (random uuid
    keys would make every row its own page: a full-page WAL image each, and the WAL flushes
    that concurrent writers then wait on). Rows written meanwhile by old or new code are kept
    in sync by the trigger, so the order of the backfill does not matter for correctness."""
    table = section.backfill_table
    mark = table if direction == "up" else f"{table}:{direction}"    # checkpoint name
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            raise RunbookError(f"{migration.id}: table {table!r} to backfill does not exist")
        total, nblocks = conn.execute(sql.SQL(
            "SELECT count(*), pg_relation_size({t}::regclass) / current_setting('block_size')::int"
            " FROM {tid}").format(t=sql.Literal(table), tid=sql.Identifier(table))).fetchone()
    cp = ledger.get_checkpoint(url, migration.id, mark)
    if cp and cp["finished"]:
        report.sections_skipped.append(section.name)
        return
    block = (cp["last_key"] or {}).get("block", 0) if cp else 0
    updated = cp["rows_done"] if cp else 0
    per_block = max(1, total // max(nblocks, 1))
    step = max(1, opts.batch_size // per_block)
    sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(n), sql.Identifier(o))
                              for n, o in section.backfill_pairs)
    differs = sql.SQL(" OR ").join(sql.SQL("{} IS DISTINCT FROM {}").format(sql.Identifier(n), sql.Identifier(o))
                                   for n, o in section.backfill_pairs)
    # the trigger is skipped (runbook.backfill) since the batch writes both columns itself
    stmt = sql.SQL("WITH u AS (UPDATE {t} SET {sets} WHERE ctid >= %s::tid AND ctid < %s::tid"
                   " AND ({differs}) RETURNING 1) SELECT count(*) FROM u").format(
        t=sql.Identifier(table), sets=sets, differs=differs)
    conn = connect(url, autocommit=True)   # one session, one short transaction per batch
    conn.execute(f"SET lock_timeout = '{int(opts.lock_timeout_ms)}ms'")
    conn.execute("SET runbook.backfill = 'on'")
    # a batch and its checkpoint commit together, so a lost commit is just a batch redone:
    # no need to wait for each WAL flush (that wait is what stalls concurrent writers)
    conn.execute("SET synchronous_commit = off")
    batches = 0
    try:
        while block < nblocks:
            def one_batch(lo=block, updated=updated):
                hi = min(lo + step, nblocks)
                with conn.transaction():
                    changed = conn.execute(stmt, (f"({lo},0)", f"({hi},0)")).fetchone()[0]
                    ledger.save_checkpoint(conn, migration.id, mark, {"block": hi}, updated + changed,
                                           finished=hi >= nblocks)
                return hi, changed
            block, changed = with_lock_retry(one_batch, opts, f"{migration.id}:backfill {table}", report)
            updated += changed
            report.rows_backfilled[table] = report.rows_backfilled.get(table, 0) + changed
            if opts.progress:
                opts.progress(table, min(total, round(total * block / nblocks)), total)
            batches += 1
            if opts.stop_after_batches is not None and batches >= opts.stop_after_batches and block < nblocks:
                raise RunbookError(f"stopped after {batches} backfill batches (requested)")
        if nblocks == 0:
            ledger.save_checkpoint(conn, migration.id, mark, {"block": 0}, 0, finished=True)
    finally:
        conn.close()
    report.sections_run.append(section.name)


def apply(url: str, migration: Migration, opts: MigrationOptions | None = None,
          baseline: dict | None = None) -> ApplyReport:
    """Apply, or resume a crashed apply. `baseline` (table checksums before a fresh apply) is
    kept in the ledger so that whoever finishes or reverts the apply can prove the restore."""
    opts = opts or MigrationOptions()
    ledger.ensure(url)
    ledger.check_drift(url, migration.id, migration.checksum)
    state = ledger.migration_state(url, migration.id)
    report = ApplyReport(migration.id)
    if state and state["status"] == "applied":
        report.sections_skipped = [s.name for s in migration.up_sections()]
        return report
    if not state or state["status"] != "applying":
        ledger.forget_migration(url, migration.id)   # a fresh apply after a revert
    resuming = bool(state and state["status"] == "applying")
    ledger.set_migration(url, migration.id, migration.checksum, "applying", opts.flow_run_id)
    if not resuming:
        ledger.set_baseline(url, migration.id, baseline)
    done = ledger.sections_done(url, migration.id)
    for section in migration.up_sections():
        if section.is_backfill:
            _backfill(url, migration, section, opts, report)
        elif section.name in done:
            report.sections_skipped.append(section.name)
        else:
            _run_section(url, migration, section, opts, mark=True, report=report)
            report.sections_run.append(section.name)
    ledger.set_migration(url, migration.id, migration.checksum, "applied", opts.flow_run_id)
    return report


def revert(url: str, migration: Migration, opts: MigrationOptions | None = None) -> list[str]:
    """Run down.sql (every statement is IF EXISTS-guarded, so it also cleans a partial apply)."""
    opts = opts or MigrationOptions()
    ledger.ensure(url)
    ledger.set_migration(url, migration.id, migration.checksum, "reverting", opts.flow_run_id)
    ran = []
    for section in migration.down_sections():
        if section.is_backfill:   # a down that re-adds columns refills them the same way
            _backfill(url, migration, section, opts, ApplyReport(migration.id), direction="down")
        else:
            _run_section(url, migration, section, opts, mark=False)
        ran.append(section.name)
    ledger.forget_migration(url, migration.id)
    ledger.set_migration(url, migration.id, migration.checksum, "reverted", opts.flow_run_id)
    return ran


def verify(url: str, migration: Migration) -> GateResult:
    failed = []
    with connect(url) as conn:
        for description, query in migration.checks():
            try:
                ok = conn.execute(query).fetchone()[0]
            except psycopg.Error as exc:
                conn.rollback()
                ok = False
                description += f" (error: {exc.diag.message_primary})"
            if not ok:
                failed.append({"check": description})
    n = len(migration.checks())
    return GateResult(name=f"verify:{migration.id}", passed=not failed,
                      expectation=f"all {n} checks of {migration.verify.name} hold",
                      observed=f"{n - len(failed)}/{n} hold", expected=f"{n}/{n} hold",
                      sample=failed)


def applied_state(url: str, migration: Migration) -> str | None:
    state = ledger.migration_state(url, migration.id)
    return state["status"] if state else None

"""Run a migration against a database: apply (resumable), verify, revert.

A migration is a triad of files (migration_files) or generated from the catalog (expand). Every
section runs in a short transaction with lock_timeout, statement_timeout and
idle_in_transaction_session_timeout; a lock timeout is retried with exponential backoff instead
of queueing behind (and in front of) application traffic. An INVALID index left by an
interrupted CREATE INDEX CONCURRENTLY is dropped and rebuilt. Backfills are batches of
contiguous heap blocks (TID ranges) of each leaf partition, each its own transaction,
checkpointed in the ledger, so a killed run resumes where it stopped; user triggers are kept out
of them (backfill_triggers) and each batch proves it changed no other column.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
from psycopg import errors, sql

from runbook.errors import RunbookError
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.database import backfill_triggers, ledger, server_advice
from runbook.tasks.database.migration_files import Section
from runbook.tasks.database.pacing import PaceLimits, Pacer, PaceStats
from runbook.tasks.database.sql_rewrite import identifiers

log = logging.getLogger("runbook.migrate")
Progress = Callable[[str, int, int], None]   # (table, rows_done, rows_total)


@dataclass
class MigrationOptions:
    batch_size: int = 2000
    lock_timeout_ms: int = 2000
    statement_timeout_ms: int = 600_000           # any one statement of a section
    idle_in_transaction_timeout_ms: int = 60_000  # a section's transaction left idle (a hung client)
    retries: int = 8
    backoff_s: float = 0.05
    flow_run_id: str | None = None
    progress: Progress | None = None
    # user triggers the backfill would fire: names whose side effects the operator accepts
    accept_trigger_effects: tuple[str, ...] = ()
    # for crash tests: stop (raise) after this many backfill batches
    stop_after_batches: int | None = None
    # how the backfill paces itself (batch size from commit latency, WAL rate, replica lag)
    pace: PaceLimits = field(default_factory=PaceLimits)

    def session_settings(self) -> dict[str, str]:
        return {"lock_timeout": f"{int(self.lock_timeout_ms)}ms",
                "statement_timeout": f"{int(self.statement_timeout_ms)}ms",
                "idle_in_transaction_session_timeout": f"{int(self.idle_in_transaction_timeout_ms)}ms"}


@dataclass
class ApplyReport:
    migration_id: str
    sections_run: list[str] = field(default_factory=list)
    sections_skipped: list[str] = field(default_factory=list)
    rows_backfilled: dict[str, int] = field(default_factory=dict)
    lock_retries: int = 0
    triggers_kept_out: dict[str, str] = field(default_factory=dict)   # table -> how
    pacing: dict[str, dict] = field(default_factory=dict)             # relation -> PaceStats
    server_advice: dict[str, list[str]] = field(default_factory=dict)  # relation -> settings it strains


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


def _settings(conn: psycopg.Connection, opts: MigrationOptions, local: bool) -> None:
    for name, value in opts.session_settings().items():
        conn.execute("SELECT set_config(%s, %s, %s)", (name, value, local))


def _run_section(url: str, migration, section: Section, opts: MigrationOptions,
                 mark: bool, report: ApplyReport | None = None) -> None:
    def attempt():
        if section.transactional:
            with connect(url) as conn:
                _settings(conn, opts, local=True)
                # migrations record which run did what (e.g. quarantined rows)
                conn.execute("SELECT set_config('runbook.flow_run_id', %s, true)", (opts.flow_run_id or "",))
                conn.execute("SELECT set_config('runbook.migration_id', %s, true)", (migration.id,))
                conn.execute(section.sql)
                ledger.record_objects(conn, migration.id, section.objects)
                if section.forget:
                    ledger.forget_objects(conn, section.forget)
                if mark:
                    ledger.mark_section(conn, migration.id, section.name)
        else:
            with connect(url, autocommit=True) as conn:
                _settings(conn, opts, local=False)
                # intent first: a name free when the plan was made is this migration's even if
                # the run dies between the CREATE and its record
                ledger.record_objects(conn, migration.id, section.objects)
                for stmt in _statements(section.sql):
                    _drop_invalid_index(conn, stmt)
                    conn.execute(stmt)
                if section.forget:
                    ledger.forget_objects(conn, section.forget)
                if mark:
                    ledger.mark_section(conn, migration.id, section.name)
    with_lock_retry(attempt, opts, f"{migration.id}:{section.name}", report)


def _statements(text: str) -> list[str]:
    """Split a no-transaction section into statements (each must run on its own)."""
    import pglast

    return [s.strip() for s in pglast.split(text) if s.strip()]


def _drop_invalid_index(conn: psycopg.Connection, statement: str) -> None:
    """Before CREATE INDEX CONCURRENTLY: an INVALID index of that name is what an interrupted
    build left behind (IF NOT EXISTS would keep it): drop it so the build starts over."""
    import pglast

    try:
        node = pglast.parse_sql(statement)[0].stmt
    except Exception:  # noqa: BLE001 - not parseable here: PostgreSQL will say why
        return
    if type(node).__name__ != "IndexStmt" or not node.concurrent or not node.idxname:
        return
    schema = node.relation.schemaname
    name = sql.Identifier(schema, node.idxname) if schema else sql.Identifier(node.idxname)
    row = conn.execute("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)",
                       (name.as_string(conn),)).fetchone()
    if row is not None and not row[0]:
        log.warning("index %s is INVALID (an interrupted build): dropping and rebuilding it", node.idxname)
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(name))


def primary_key(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        """SELECT a.attname FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
            ORDER BY array_position(i.indkey, a.attnum)""", (table,)).fetchall()
    if not rows:
        raise RunbookError(f"table {table!r} is missing or has no primary key to backfill by")
    return [r[0] for r in rows]


def leaf_relations(conn: psycopg.Connection, table: str) -> list[str]:
    """The relations that hold `table`'s rows: itself, or the leaves of its partition (or
    inheritance) tree. A TimescaleDB hypertable is refused: its chunks are managed by the
    extension and a block-range walk of the parent sees no rows."""
    if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
        raise RunbookError(f"table {table!r} to backfill does not exist")
    if conn.execute("SELECT to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL").fetchone()[0]:
        hyper = conn.execute(
            "SELECT 1 FROM _timescaledb_catalog.hypertable h JOIN pg_class c ON c.relname = h.table_name"
            " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = h.schema_name"
            " WHERE c.oid = to_regclass(%s)", (table,)).fetchone()
        if hyper:
            raise RunbookError(f"{table} is a TimescaleDB hypertable: the runbook does not backfill "
                               "hypertables (its chunks are managed by the extension); migrate it by hand")
    rows = conn.execute(
        """WITH RECURSIVE tree(oid) AS (
               SELECT to_regclass(%s)::oid
               UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
           SELECT t.oid::regclass::text FROM tree t JOIN pg_class c ON c.oid = t.oid
            WHERE c.relkind = 'r' ORDER BY c.oid""", (table,)).fetchall()
    return [r[0] for r in rows]


def _backfill(url: str, migration, section: Section, opts: MigrationOptions,
              report: ApplyReport, direction: str = "up") -> None:
    table = section.backfill_table
    with connect(url) as conn:
        leaves = leaf_relations(conn, table)
    for leaf in leaves:
        _backfill_relation(url, migration, section, leaf, opts, report, direction)
    report.sections_run.append(section.name)


def row_fingerprint(alias: str, columns: list[str]) -> sql.Composable:
    """A 64-bit hash of `columns` of the row `alias` (a changed row is what is looked for, not
    an adversary): a row value's text is ~4x cheaper than to_jsonb + md5, which cost as much as
    the backfill's UPDATE itself."""
    return sql.SQL("hashtextextended(ROW({})::text, 0)").format(sql.SQL(", ").join(
        sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(c)) for c in columns))


def _backfill_relation(url: str, migration, section: Section, rel: str, opts: MigrationOptions,
                       report: ApplyReport, direction: str) -> None:
    """Backfill one relation in physical order: each batch is a range of heap blocks (a TID
    range scan), so a batch rewrites a few contiguous pages instead of ~batch_size random ones.
    The relation's blocks are split into `pace.workers` contiguous segments, each backfilled by
    its own session and pacer (a second core halves the wall time; a writer still waits on at
    most one batch, since a row is in one segment). Rows written meanwhile by old or new code
    are kept in sync by the sync trigger, so the order of the backfill does not matter for
    correctness. Each batch also fingerprints every other column of each row it updates,
    before and after: a change there (a trigger's side effect) is counted and sampled in the
    segment's checkpoint."""
    mark = rel if direction == "up" else f"{rel}:{direction}"    # checkpoint name
    cp = ledger.get_checkpoint(url, migration.id, mark)
    if cp and cp["finished"]:
        report.sections_skipped.append(f"{section.name}:{rel}")
        return
    new_cols = [n for n, _ in section.backfill_pairs]
    with connect(url) as conn:
        nblocks, estimate = conn.execute(
            "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int, reltuples"
            " FROM pg_class WHERE oid = %s::regclass", (rel, rel)).fetchone()
        total = int(estimate) if estimate and estimate > 0 else conn.execute(
            sql.SQL("SELECT count(*) FROM ONLY {}").format(_ident(rel))).fetchone()[0]
        for line in server_advice.advice(server_advice.read_fit(conn, rel)):
            log.warning("backfill of %s: %s", rel, line)       # the run's log, before it starts
            report.server_advice.setdefault(rel, []).append(line)
        try:
            key = primary_key(conn, rel)
        except RunbookError:
            key = []
        keep_out = backfill_triggers.plan(conn, rel, new_cols, opts.accept_trigger_effects)
        other_columns = [name for (name,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum", (rel,)) if name not in new_cols]
        # the segments are fixed when the backfill starts: a resumed run walks the same ones
        # (rows appended since then are new row versions, written through the sync trigger)
        if cp:
            segments = (cp["last_key"] or {}).get("segments")
            if segments is None:
                raise RunbookError(f"{migration.id}: the checkpoint of {mark} was written by an older "
                                   "runbook (no segments); finish it with that version, or revert and apply again")
        else:
            segments = _segments(nblocks, opts.pace.workers)
            with conn.transaction():
                ledger.save_checkpoint(conn, migration.id, mark, {"segments": segments,
                                                                  "triggers": keep_out.describe()}, 0)
    report.triggers_kept_out[rel] = keep_out.describe()
    # rb_row, rb_b: aliases no column of a real table is likely to be called
    sets = sql.SQL(", ").join(sql.SQL("{} = rb_row.{}").format(sql.Identifier(n), sql.Identifier(o))
                              for n, o in section.backfill_pairs)
    differs = sql.SQL(" OR ").join(sql.SQL("rb_row.{} IS DISTINCT FROM rb_row.{}").format(
        sql.Identifier(n), sql.Identifier(o)) for n, o in section.backfill_pairs)
    others = row_fingerprint("rb_row", other_columns)
    key_expr = (sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{}, rb_row.{}").format(sql.Literal(k), sql.Identifier(k)) for k in key))
        if key else sql.SQL("jsonb_build_object('ctid', rb_row.ctid::text)"))
    # b: the rows as they are (locked by the UPDATE that follows); a row another session
    # updated meanwhile has a new ctid and drops out of the join (its write went through the
    # sync trigger, so it needs no backfill)
    stmt = sql.SQL(
        "WITH rb_b AS MATERIALIZED (SELECT rb_row.ctid AS tid, {others} AS h FROM ONLY {rel} AS rb_row"
        " WHERE rb_row.ctid >= %s::tid AND rb_row.ctid < %s::tid AND ({differs})),"
        " u AS (UPDATE ONLY {rel} AS rb_row SET {sets} FROM rb_b"
        " WHERE rb_row.ctid >= %s::tid AND rb_row.ctid < %s::tid AND rb_row.ctid = rb_b.tid"
        " RETURNING rb_b.h AS h0, {others} AS h1, {key} AS k, rb_row.ctid AS nt)"
        " SELECT count(*), count(*) FILTER (WHERE h0 <> h1),"
        " coalesce(jsonb_agg(k) FILTER (WHERE h0 <> h1), '[]'),"
        " coalesce(array_agg(DISTINCT (nt::text::point)[0]::bigint), '{{}}') FROM u").format(
        others=others, rel=_ident(rel), differs=differs, sets=sets, key=key_expr)
    run = _BackfillRun(url, migration.id, rel, mark, stmt, keep_out, opts, report,
                       total=total, nblocks=max(nblocks, 1), segments=segments)
    run.walk()
    with connect(url) as conn, conn.transaction():
        done = ledger.backfill_progress_of(conn, migration.id, mark)
        ledger.save_checkpoint(conn, migration.id, mark, {"segments": segments, "triggers": keep_out.describe()},
                               done["rows_done"], finished=True)


def _segments(nblocks: int, workers: int) -> list[list[int]]:
    """[lo, hi) block ranges of about equal size, at most one per worker (none for no blocks)."""
    n = max(1, min(workers, nblocks))
    bounds = [nblocks * i // n for i in range(n + 1)]
    return [[lo, hi] for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


class _BackfillRun:
    """The segments of one relation's backfill, each walked by its own thread and session."""

    def __init__(self, url, migration_id, rel, mark, stmt, keep_out, opts: MigrationOptions,
                 report: ApplyReport, *, total: int, nblocks: int, segments: list[list[int]]):
        self.url, self.migration_id, self.rel, self.mark = url, migration_id, rel, mark
        self.stmt, self.keep_out, self.opts, self.report = stmt, keep_out, opts, report
        self.total, self.nblocks, self.segments = total, nblocks, segments
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.batches = 0
        self.position: dict[int, int] = {}     # segment -> blocks done in it
        self.pacers: dict[int, Pacer] = {}

    def walk(self) -> None:
        if not self.segments:                  # an empty relation: nothing to walk
            return
        with ThreadPoolExecutor(len(self.segments), thread_name_prefix=f"backfill-{self.rel}") as pool:
            futures = [pool.submit(self._segment, i, lo, hi) for i, (lo, hi) in enumerate(self.segments)]
        failed = [f.exception() for f in futures if f.exception() is not None]
        if failed:                             # _segment stopped the others at the first failure
            raise failed[0]

    def _segment(self, i: int, lo: int, hi: int) -> None:
        try:
            self._walk_segment(i, lo, hi)
        except BaseException:
            self.stop.set()
            raise

    def _walk_segment(self, i: int, seg_lo: int, seg_hi: int) -> None:
        opts, mark = self.opts, f"{self.mark}#{i}"
        cp = ledger.get_checkpoint(self.url, self.migration_id, mark)
        if cp and cp["finished"]:
            return
        state = (cp["last_key"] or {}) if cp else {}
        block, updated = state.get("block", seg_lo), cp["rows_done"] if cp else 0
        side_effects, sample = state.get("side_effects", 0), state.get("sample", [])
        per_block = max(1, self.total // self.nblocks)
        initial_step = max(1, opts.batch_size // per_block)
        pacer = Pacer(opts.pace, initial_step, max_step=initial_step * 16, share=len(self.segments))
        self.pacers[i] = pacer
        conn = connect(self.url, autocommit=True)   # one session, one short transaction per batch
        try:
            _settings(conn, opts, local=False)
            conn.execute("SET runbook.backfill = 'on'")
            self.keep_out.enter_session(conn)
            pacer.configure_session(conn)
            while block < seg_hi and not self.stop.is_set():
                def one_batch(lo=block, updated=updated, side_effects=side_effects, sample=sample):
                    hi = min(lo + pacer.before_batch(conn), seg_hi)
                    with conn.transaction():
                        self.keep_out.enter_batch(conn)
                        bounds = (f"({lo},0)", f"({hi},0)")
                        changed, bad, keys, new_blocks = conn.execute(self.stmt, bounds + bounds).fetchone()
                        self.keep_out.leave_batch(conn)
                        state = {"block": hi, "side_effects": side_effects + bad, "sample": (sample + keys)[:10],
                                 "triggers": self.keep_out.describe()}
                        ledger.save_checkpoint(conn, self.migration_id, mark, state, updated + changed,
                                               finished=hi >= seg_hi)
                        pacer.before_commit()
                    return hi, changed, state, new_blocks
                prev = block
                block, changed, st, new_blocks = with_lock_retry(
                    one_batch, opts, f"{self.migration_id}:backfill {self.rel}", self.report)
                pacer.after_batch(conn)
                # one read per page: a new version can land in the batch's own blocks
                settle_hint_bits(conn, self.rel, block_runs([*range(prev, block), *new_blocks]))
                updated += changed
                side_effects, sample = st["side_effects"], st["sample"]
                self._tally(i, block - seg_lo, changed)
        finally:
            conn.close()

    def _tally(self, i: int, blocks_done: int, changed: int) -> None:
        with self.lock:
            report = self.report
            report.rows_backfilled[self.rel] = report.rows_backfilled.get(self.rel, 0) + changed
            report.pacing[self.rel] = PaceStats.combined(p.stats for p in self.pacers.values()).to_dict()
            self.position[i] = blocks_done
            self.batches += 1
            batches = self.batches
            done_blocks = sum(self.position.values())
        if self.opts.progress:
            self.opts.progress(self.rel, min(self.total, round(self.total * done_blocks / self.nblocks)), self.total)
        if (self.opts.stop_after_batches is not None and batches >= self.opts.stop_after_batches
                and done_blocks < sum(hi - lo for lo, hi in self.segments)):
            self.stop.set()                     # the other segments stop after their batch
            if batches == self.opts.stop_after_batches:
                raise RunbookError(f"stopped after {batches} backfill batches (requested)")


def block_runs(blocks: list[int]) -> list[tuple[int, int]]:
    """Block numbers (any order, repeats allowed) as [lo, hi) runs of consecutive blocks."""
    runs: list[list[int]] = []
    for b in sorted(set(blocks)):
        if runs and b == runs[-1][1]:
            runs[-1][1] = b + 1
        else:
            runs.append([b, b + 1])
    return [(lo, hi) for lo, hi in runs]


def settle_hint_bits(conn: psycopg.Connection, rel: str, runs: list[tuple[int, int]]) -> None:
    """Read a committed batch's pages (its old row versions' and its new ones') while they are
    still dirty in shared buffers. A read after the commit sets the rows' commit hint bits (and
    prunes the old versions) on pages the batch dirtied anyway. Left unset, the next full scan
    (VALIDATE CONSTRAINT, the parity gate) sets them on every page of the table at once and writes
    the whole heap again at scan speed: a burst the old code's commits wait behind (at 10M rows,
    a 112 ms write during validate_checks). Read-only: it changes no row. With fixed batches
    (asynchronous commit) a row whose commit is not yet flushed keeps its hint unset, as before."""
    stmt = sql.SQL("SELECT count(*) FROM ONLY {} WHERE ctid >= %s::tid AND ctid < %s::tid").format(_ident(rel))
    for lo, hi in runs:
        conn.execute(stmt, (f"({lo},0)", f"({hi},0)"))


def _ident(rel: str) -> sql.Composable:
    """A relation name as regclass text prints it (already quoted where needed)."""
    return sql.SQL(rel)


def apply(url: str, migration, opts: MigrationOptions | None = None,
          baseline: dict | None = None) -> ApplyReport:
    """Apply, or resume a crashed apply. `baseline` (table checksums before a fresh apply) is
    kept in the ledger so that whoever finishes or reverts the apply can prove the restore. A
    generated migration's plan is made from the catalog at the start of a fresh apply and kept
    in the ledger; a resumed apply runs that plan."""
    opts = opts or MigrationOptions()
    ledger.ensure(url)
    ledger.check_drift(url, migration.id, migration.checksum)
    state = ledger.migration_state(url, migration.id)
    report = ApplyReport(migration.id)
    if state and state["status"] == "applied":
        report.sections_skipped = ["(already applied)"]
        return report
    if state and state["status"] == "reverting":
        raise RunbookError(f"migration {migration.id} has a revert that did not finish; revert it "
                           "again before applying (the ledger still lists what the last apply did)")
    resuming = bool(state and state["status"] == "applying")
    if resuming:
        sections = migration.up_sections(url, stored=state.get("plan"))
    else:
        ledger.forget_migration(url, migration.id)   # a fresh apply after a revert
        plan = getattr(migration, "plan", None)
        stored = plan(url).to_json() if plan else None
        sections = migration.up_sections(url, stored=stored)
    ledger.set_migration(url, migration.id, migration.checksum, "applying", opts.flow_run_id)
    if not resuming:
        ledger.set_baseline(url, migration.id, baseline)
        ledger.set_plan(url, migration.id, stored)
    done = ledger.sections_done(url, migration.id)
    for section in sections:
        if section.is_backfill:
            _backfill(url, migration, section, opts, report)
        elif section.name in done:
            report.sections_skipped.append(section.name)
        else:
            _run_section(url, migration, section, opts, mark=True, report=report)
            report.sections_run.append(section.name)
    ledger.set_migration(url, migration.id, migration.checksum, "applied", opts.flow_run_id)
    return report


def revert(url: str, migration, opts: MigrationOptions | None = None) -> list[str]:
    """Undo an apply (also a partial one): a file migration's down.sql (every statement
    guarded), a generated migration's recorded objects."""
    opts = opts or MigrationOptions()
    ledger.ensure(url)
    ledger.set_migration(url, migration.id, migration.checksum, "reverting", opts.flow_run_id)
    ran = []
    for section in migration.revert_sections(url):
        if section.is_backfill:   # a down that re-adds columns refills them the same way
            _backfill(url, migration, section, opts, ApplyReport(migration.id), direction="down")
        else:
            _run_section(url, migration, section, opts, mark=False)
        ran.append(section.name)
    ledger.forget_migration(url, migration.id)
    ledger.set_migration(url, migration.id, migration.checksum, "reverted", opts.flow_run_id)
    ledger.set_plan(url, migration.id, None)
    return ran


def _holds(conn: psycopg.Connection, check: dict) -> bool:
    if "sql" in check:
        return bool(conn.execute(check["sql"]).fetchone()[0])
    src = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)",
                       (check["function"],)).fetchone()
    return src is not None and not identifiers(src[0]) & set(check["names"])


def verify(url: str, migration) -> GateResult:
    failed = []
    state = ledger.migration_state(url, migration.id)
    checks = migration.checks(url, stored=(state or {}).get("plan"))
    with connect(url) as conn:
        for check in checks:
            description = check["description"]
            try:
                ok = _holds(conn, check)
            except psycopg.Error as exc:
                conn.rollback()
                ok = False
                description += f" (error: {exc.diag.message_primary})"
            if not ok:
                failed.append({"check": description})
    n = len(checks)
    return GateResult(name=f"verify:{migration.id}", passed=not failed,
                      expectation=f"all {n} checks of {migration.verify_name} hold",
                      observed=f"{n - len(failed)}/{n} hold", expected=f"{n}/{n} hold",
                      sample=failed)


def applied_state(url: str, migration) -> str | None:
    state = ledger.migration_state(url, migration.id)
    return state["status"] if state else None


def backfill_side_effects(url: str, migration_id: str) -> dict[str, dict]:
    """Per backfilled relation: rows whose other columns the backfill changed, and a sample."""
    return {rel: {"rows": p["side_effects"], "sample": p["sample"], "triggers": p["triggers"]}
            for rel, p in ledger.backfill_progress(url, migration_id).items()}

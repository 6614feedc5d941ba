"""The application writing to production while a flow runs: a reusable live writer.

Shared by the tests (tests/test_live_*.py) and the benches. One process (its own connection,
its rate undisturbed by the flow's GIL) plays the DawsOS application on `lots`:

* inserts (new lots), updates (the open quantity) and deletes (of lots it inserted itself, so
  no other table's rows change through ON DELETE), at `rate` writes/s;
* through the names that exist: the old names (`qty_open`, `qty_original`) while only they
  exist — the old code —, the new names once only they exist, and while both exist one or the
  other at random per write (old and new code side by side after the code update). A write
  refused because its column just appeared or went (a revert, a contract) is retried through
  the names that exist;
* every write commits in one statement with its own log row (a data-modifying CTE into
  `live_writer.log`, a schema outside the app's): a logged write committed, an unlogged one
  did not — no ambiguity.

`all_committed_writes_present(url)` then reports, by key, every committed write that is not in
the table: the last committed write of each key must be what each existing name holds (or the
row absent, when that write was a delete).

    writer = LiveWriter(url, rate=150); writer.start(); ...; stats = writer.stop()
    check = all_committed_writes_present(url); assert check.lost == []
"""
from __future__ import annotations

import multiprocessing as mp
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
from psycopg import sql

from runbook.pg import connect

SCHEMA = "live_writer"
TABLE = "lots"
# (old, new) names of the columns the writer writes; Day 1-2 renames them
PAIRS = (("qty_open", "quantity_open"), ("qty_original", "quantity_original"))
LOG_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.log (
    seq bigserial PRIMARY KEY,
    key uuid NOT NULL,
    op text NOT NULL,             -- insert | update | delete
    names text NOT NULL,          -- old | new: the names the write went through
    qty_open numeric,             -- the committed values (NULL for a delete)
    qty_original numeric,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX IF NOT EXISTS log_key ON {SCHEMA}.log (key, seq);
"""


def ensure_log(url: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute(LOG_DDL)


def existing_names(conn: psycopg.Connection) -> dict[str, bool]:
    """The table's columns and whether each is NOT NULL; key SYNCED: whether a sync trigger
    (runbook.sync_renamed_columns) keeps the two names in step."""
    rows = conn.execute("SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = to_regclass(%s)"
                        " AND attnum > 0 AND NOT attisdropped", (TABLE,)).fetchall()
    synced = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = to_regclass(%s) AND t.tgenabled <> 'D'"
        " AND t.tgfoid = to_regprocedure('runbook.sync_renamed_columns()'))", (TABLE,)).fetchone()[0]
    return {**dict(rows), SYNCED: synced}


SYNCED = "<synced>"


def _usable(names: dict[str, bool]) -> list[str]:
    """Which name sets the application writes through now: a code version runs once its
    columns are complete (present, NOT NULL like the old ones), and beside the other version's
    columns only while the sync trigger joins them — the runbook's own rule (the new code is
    deployed after the expand, the old code is gone before the contract)."""
    complete = {which: all(names.get(p[i]) for p in PAIRS) for i, which in enumerate(("old", "new"))}
    present = {which: any(p[i] in names for p in PAIRS) for i, which in enumerate(("old", "new"))}
    other = {"old": "new", "new": "old"}
    return [w for w in ("old", "new") if complete[w] and (not present[other[w]] or names[SYNCED])]


def _cols(which: str) -> tuple[str, str]:
    return tuple(p[0] if which == "old" else p[1] for p in PAIRS)   # (open, original)


_LOG = (f" INSERT INTO {SCHEMA}.log (key, op, names, qty_open, qty_original)"
        " SELECT id, {op}, {names}, q, o FROM w RETURNING key::text")


def _write(conn: psycopg.Connection, rng: random.Random, which: str, pool: list[str], mine: list[str],
           parent: tuple) -> None:
    """One application write and its log row, in one statement (one transaction, one round trip)."""
    open_col, orig_col = (sql.Identifier(c) for c in _cols(which))
    roll = rng.random()
    if roll < 0.3 or not mine:
        op = "insert"
        qty = Decimal(rng.randrange(1000, 900000)) / 1000
        write = sql.SQL(
            "INSERT INTO lots (portfolio_id, security_id, symbol, acquisition_date, quantity, cost_basis,"
            " cost_basis_per_share, {o}, {q}) VALUES (%s, %s, 'LIVE', '2025-11-03', %s, %s, 1, %s, %s)"
            " RETURNING id, {q} AS q, {o} AS o").format(o=orig_col, q=open_col)
        args = (*parent, qty, qty, qty, qty)
    elif roll < 0.4:
        op = "delete"
        key = mine.pop(rng.randrange(len(mine)))
        write = sql.SQL("DELETE FROM lots WHERE id = %s RETURNING id, NULL::numeric AS q, NULL::numeric AS o")
        args = (key,)
    else:
        op = "update"
        candidates = pool if rng.random() < 0.7 or not mine else mine
        key = candidates[rng.randrange(len(candidates))]
        # a distinct valid value each time: 0 <= open <= original holds for every fraction
        write = sql.SQL("UPDATE lots SET {q} = round({o} * %s / 1000, 6) WHERE id = %s"
                        " RETURNING id, {q} AS q, {o} AS o").format(q=open_col, o=orig_col)
        args = (rng.randrange(1, 1000), key)
    row = conn.execute(sql.SQL("WITH w AS ({}) ").format(write)
                       + sql.SQL(_LOG).format(op=sql.Literal(op), names=sql.Literal(which)),
                       args, prepare=True).fetchone()
    if row and op == "insert":
        mine.append(row[0])


def _main(url: str, rate: float, seed: int, pool_size: int, code: str, ready, stop, counters) -> None:
    rng = random.Random(seed)
    with connect(url, autocommit=True) as conn:
        conn.execute("SET application_name = 'live-writer'")
        conn.execute("SET lock_timeout = '5s'")
        # existing open lots of real securities (015 quarantines lots of unknown securities)
        pool = [r[0] for r in conn.execute(
            "SELECT l.id::text FROM lots l JOIN securities s ON s.id = l.security_id"
            " WHERE l.qty_open > 0 ORDER BY md5(l.id::text) LIMIT %s", (pool_size,)).fetchall()]
        parent = conn.execute("SELECT l.portfolio_id, l.security_id FROM lots l"
                              " JOIN securities s ON s.id = l.security_id LIMIT 1").fetchone()
        mine: list[str] = []
        names, seen_at = existing_names(conn), time.monotonic()
        ready.set()
        interval, due = 1.0 / rate, time.perf_counter()
        while not stop.is_set():
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            if time.monotonic() - seen_at > 0.25:
                names, seen_at = existing_names(conn), time.monotonic()
            usable = [w for w in _usable(names) if code in ("both", w)]
            try:
                if not usable:
                    raise psycopg.errors.UndefinedColumn("neither name set is complete")
                _write(conn, rng, rng.choice(usable), pool, mine, parent)
                counters[0] += 1
            except psycopg.errors.UndefinedColumn:
                names, seen_at = existing_names(conn), time.monotonic()   # a rename moved under us
                counters[1] += 1
            except psycopg.Error:  # a lock timeout or a refusal is the app's business: not committed
                counters[1] += 1
            due = max(due + interval, time.perf_counter())


@dataclass
class WriterStats:
    committed: int
    failed: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.committed / self.seconds if self.seconds else 0.0


class LiveWriter:
    """Start/stop the writer process beside a flow."""

    def __init__(self, url: str, rate: float = 150.0, seed: int = 8, pool_size: int = 200,
                 code: str = "both"):
        """`code`: which application versions run — "both" (each where it may: see _usable),
        "old" or "new" only (e.g. "new" around a contract: the old code is gone by then)."""
        if code not in ("both", "old", "new"):
            raise ValueError(f"code must be both, old or new, not {code!r}")
        ensure_log(url)
        ctx = mp.get_context("spawn")
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self._counters = ctx.Array("q", 2)
        self._proc = ctx.Process(target=_main, name="live-writer", daemon=True,
                                 args=(url, rate, seed, pool_size, code, self._ready, self._stop, self._counters))
        self.url, self._started = url, 0.0

    def start(self, timeout: float = 60.0) -> LiveWriter:
        self._proc.start()
        if not self._ready.wait(timeout):
            self._proc.kill()
            raise RuntimeError("live writer did not connect")
        self._started = time.monotonic()
        return self

    def committed(self) -> int:
        return self._counters[0]

    def stop(self, timeout: float = 30.0) -> WriterStats:
        self._stop.set()
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
        return WriterStats(self._counters[0], self._counters[1], time.monotonic() - self._started)

    def __enter__(self) -> LiveWriter:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- after the run ---------------------------------------------------------------------------

@dataclass
class WriteCheck:
    keys: int                                   # keys the writer committed writes to
    writes: int                                 # committed writes in the log
    lost: list[dict] = field(default_factory=list)


def all_committed_writes_present(url: str) -> WriteCheck:
    """Every key's last committed write is in `lots`, through every name that exists (or the
    row is absent, when that write deleted it). `lost` names each key that is not."""
    with connect(url) as conn:
        names = existing_names(conn)
        writes = conn.execute(f"SELECT count(*) FROM {SCHEMA}.log").fetchone()[0]
        last = conn.execute(f"SELECT DISTINCT ON (key) key::text, op, qty_open, qty_original FROM {SCHEMA}.log"
                            " ORDER BY key, seq DESC").fetchall()
        cols = [c for pair in PAIRS for c in pair if c in names]
        now = {r[0]: dict(zip(cols, r[1:])) for r in conn.execute(sql.SQL(
            "SELECT id::text, {} FROM lots WHERE id = ANY(%s::uuid[])").format(
            sql.SQL(", ").join(map(sql.Identifier, cols))), ([k for k, *_ in last],)).fetchall()}
    lost = []
    for key, op, q_open, q_orig in last:
        row = now.get(key)
        if op == "delete":
            if row is not None:
                lost.append({"key": key, "written": "delete", "found": row})
            continue
        want = {"qty_open": q_open, "quantity_open": q_open, "qty_original": q_orig, "quantity_original": q_orig}
        if row is None or any(row[c] != want[c] for c in cols):
            lost.append({"key": key, "written": {"qty_open": str(q_open), "qty_original": str(q_orig)},
                         "found": {c: str(v) for c, v in row.items()} if row else "absent"})
    return WriteCheck(len(last), writes, lost)


def keys_written(url: str) -> set[str]:
    """Every key the writer committed a write to (the rows the app changed meanwhile)."""
    with connect(url) as conn:
        return {r[0] for r in conn.execute(f"SELECT DISTINCT key::text FROM {SCHEMA}.log").fetchall()}

"""Benchmark plumbing: a seeded template database cloned per run, and a concurrent writer.

The writer runs in its own process (its latency is not distorted by the benchmark's GIL) with
its own connection, and stands in for the old application code: single-row autocommit
UPDATEs of random lots through the OLD column name, at a fixed rate.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import random
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from runbook.pg import connect, drop_database, recreate_database, with_database

REPO = Path(__file__).resolve().parents[1]
DEMO_TEMPLATE = REPO / "demo" / "template"

# a distinct, valid value per write (0 <= qty_open <= qty_original holds for every fraction)
WRITE_SQL = ("UPDATE lots SET qty_open = round(qty_original * %s / 1000, 6) WHERE id = %s "
             "RETURNING qty_open")


# -- databases ------------------------------------------------------------------------------

def build_template(server_url: str, name: str, rows: int) -> tuple[str, dict]:
    """Create `name` with the demo schema and `rows` lots; returns (url, timings)."""
    from runbook.demo.seed import seed
    from runbook.tasks.database.schema_build import load_schema

    url = recreate_database(server_url, name)
    t0 = time.perf_counter()
    load_schema(url, DEMO_TEMPLATE)
    t1 = time.perf_counter()
    counts = seed(url, rows)
    t2 = time.perf_counter()
    with connect(url, autocommit=True) as conn:
        # hint bits and visibility map set once here, so neither run pays for them
        conn.execute("VACUUM ANALYZE")
    t3 = time.perf_counter()
    return url, {"schema_s": round(t1 - t0, 2), "data_seed_s": round(t2 - t1, 2),
                 "vacuum_s": round(t3 - t2, 2), "counts": counts}


def clone(server_url: str, template: str, name: str) -> str:
    """A byte-identical copy of the template (FILE_COPY checkpoints first, so no run starts
    with the clone's dirty buffers to flush)."""
    drop_database(server_url, name)
    with connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY file_copy").format(
            sql.Identifier(name), sql.Identifier(template)))
    return with_database(server_url, name)


def sample_ids(url: str, n: int, seed: int = 14) -> list[str]:
    with connect(url) as conn:
        conn.execute("SELECT setseed(%s)", [seed / 1000])
        return [r[0] for r in conn.execute(
            "SELECT id::text FROM lots ORDER BY random() LIMIT %s", [n]).fetchall()]


def db_stats(url: str) -> dict:
    with connect(url) as conn:
        size, lsn = conn.execute(
            "SELECT pg_database_size(current_database()), pg_current_wal_lsn()").fetchone()
    return {"db_bytes": size, "lsn": str(lsn)}


def wal_bytes(url: str, start_lsn: str, end_lsn: str) -> int:
    with connect(url) as conn:
        return int(conn.execute("SELECT pg_wal_lsn_diff(%s, %s)", [end_lsn, start_lsn]).fetchone()[0])


# -- the concurrent writer ----------------------------------------------------------------

@dataclass
class Write:
    t0: float            # time.perf_counter() when sent (CLOCK_MONOTONIC: comparable across processes)
    ms: float            # latency until acknowledged
    lot: str
    value: str | None    # what it wrote (None: the update failed)
    error: str | None = None


def _writer_main(url: str, ids: list[str], rate: float, seed: int, ready, stop, out) -> None:
    rng = random.Random(seed)
    writes: list[tuple] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SET application_name = 'bench-writer'")
        ready.set()
        interval = 1.0 / rate
        due = time.perf_counter()
        while not stop.is_set():
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            lot, frac = ids[rng.randrange(len(ids))], rng.randrange(1, 1000)
            t0 = time.perf_counter()
            try:
                row = conn.execute(WRITE_SQL, (frac, lot), prepare=True).fetchone()
                value, error = (str(row[0]) if row else None), (None if row else "no row")
            except psycopg.Error as exc:  # recorded, not raised: a failed write is a finding
                value, error = None, f"{type(exc).__name__}: {exc}".splitlines()[0]
            t1 = time.perf_counter()
            writes.append((t0, (t1 - t0) * 1000, lot, value, error))
            # closed loop: after a stall, carry on at the rate instead of bursting to catch up
            due = max(due + interval, t1)
    out.put(writes)


class Writer:
    """Start/stop the writer process; `writes` holds its records after stop()."""

    def __init__(self, url: str, ids: list[str], rate: float = 200.0, seed: int = 1):
        ctx = mp.get_context("spawn")
        self._ready, self._stop, self._out = ctx.Event(), ctx.Event(), ctx.Queue()
        self._proc = ctx.Process(target=_writer_main, name="bench-writer", daemon=True,
                                 args=(url, ids, rate, seed, self._ready, self._stop, self._out))
        self.writes: list[Write] = []

    def start(self, timeout: float = 30.0) -> None:
        self._proc.start()
        if not self._ready.wait(timeout):
            self._proc.kill()
            raise RuntimeError("writer process did not connect")

    def stop(self, timeout: float = 120.0) -> list[Write]:
        self._stop.set()
        raw = self._out.get(timeout=timeout)   # before join(): a full pipe would block the child
        self._proc.join(timeout)
        self.writes = [Write(*w) for w in raw]
        return self.writes


class WaitSampler:
    """Polls what the writer's backend waits on (pg_stat_activity, every `every_s`), to tell
    row-lock waits (Lock/transactionid, Lock/tuple), table-lock waits (Lock/relation) and WAL
    flush waits (LWLock/WALWrite, IO/WALSync) apart."""

    def __init__(self, url: str, every_s: float = 0.005):
        self.samples: list[tuple[float, str]] = []
        self._url, self._every = url, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wait-sampler", daemon=True)

    def _run(self) -> None:
        with connect(self._url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute("SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity "
                                   "WHERE application_name = 'bench-writer' AND state = 'active'"
                                   ).fetchone()
                if row and row[0]:
                    self.samples.append((time.perf_counter(), row[0]))
                time.sleep(self._every)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def during(self, start: float, end: float) -> dict[str, int]:
        """Wait events seen in [start, end] and how many samples each."""
        out: dict[str, int] = {}
        for t, event in self.samples:
            if start <= t <= end:
                out[event] = out.get(event, 0) + 1
        return out


# -- figures ---------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def overlapping(writes: list[Write], start: float, end: float) -> list[Write]:
    """Writes in flight at any moment of [start, end]."""
    return [w for w in writes if w.t0 <= end and w.t0 + w.ms / 1000 >= start]


def stall_summary(writes: list[Write]) -> dict:
    ms = [w.ms for w in writes]
    return {"updates": len(ms), "max_ms": round(max(ms, default=0.0), 2),
            "p99_ms": round(percentile(ms, 99), 2), "p50_ms": round(percentile(ms, 50), 2)}


def lost_writes(url: str, writes: list[Write], new_column: bool = True) -> tuple[int, list[dict]]:
    """Rows whose last acknowledged write is not what qty_open (and quantity_open) hold now.

    The writer is one sequential session, so its acknowledgement order is the commit order."""
    last: dict[str, str] = {}
    for w in sorted(writes, key=lambda w: w.t0):
        if w.value is not None:
            last[w.lot] = w.value
    if not last:
        return 0, []
    cols = "qty_open, quantity_open" if new_column else "qty_open, NULL::numeric"
    with connect(url) as conn:
        rows = conn.execute(f"SELECT id::text, {cols} FROM lots WHERE id = ANY(%s::uuid[])",
                            [list(last)]).fetchall()
    now = {r[0]: (r[1], r[2]) for r in rows}
    bad = []
    for lot, value in last.items():
        old, new = now.get(lot, (None, None))
        want = Decimal(value)
        if old != want or (new_column and new != want):
            bad.append({"id": lot, "written": value, "qty_open": str(old), "quantity_open": str(new)})
    return len(bad), bad[:5]


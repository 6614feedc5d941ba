"""Pacing a backfill by what the database reports, not by a fixed sleep.

A writer of the old application stalls behind a backfill batch in two ways: it waits for a row
lock the batch holds until it commits, and its own commit waits for the WAL flush of everything
inserted before it — the batch's WAL included. Both grow with the batch, so the pacer sizes each
batch by the time the last one held the table: execution plus the flush of its WAL (the batch
commits with ``synchronous_commit = on``, so its commit time *is* the flush a concurrent writer
would have waited for). Above the budget the next batch shrinks, well under it the batch grows.

The relation is walked by `workers` sessions at once, each over its own range of blocks with its
own pacer: a writer still meets at most one batch holding its row, while a second core halves
the wall time of what is CPU-bound (the rows' index entries).

The commit of each batch is timed on its own: it is the WAL fsync every writer's commit queues
behind, so when it is slow the disk's queue is long, and the backfill rests (as long as the commit
took, times how far over ``max_commit_ms`` it was) before it adds to that queue again.

Two more limits, both read from the server: WAL generated per second (``pg_current_wal_insert_lsn``
deltas; a cap protects replicas and archiving), and replication lag (``pg_stat_replication``:
while a replica is further behind than allowed, the backfill waits).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

log = logging.getLogger("runbook.pacing")


COMMIT_REST_MAX_S = 1.0
WAL_COMPRESSION = (None, "off", "pglz", "lz4", "zstd")


@dataclass(frozen=True)
class PaceLimits:
    batch_budget_ms: float = 20.0          # longest a batch may hold rows + WAL flush; 0 = fixed batches
    max_wal_mb_s: float | None = None      # cap on the backfill's WAL rate (None: no cap)
    max_replica_lag_s: float = 10.0        # wait while a replica lags more than this
    replica_wait_max_s: float = 300.0      # give up (raise) when it does not catch up
    grow: float = 1.5                      # at most this factor up per batch
    shrink: float = 0.25                   # at most this factor down per batch
    workers: int = 2                       # sessions backfilling one relation at once
    # the backfill's own full-page images compressed (None: as the server). Off by default: at
    # 10M rows lz4 cut the WAL by 40% but cost 40% more time on two cores (bench/RESULTS.md)
    wal_compression: str | None = None
    max_commit_ms: float | None = 10.0     # a batch's commit (its WAL fsync) slower than this: rest (None: never)

    def __post_init__(self) -> None:
        if self.batch_budget_ms < 0:
            raise ValueError(f"batch_budget_ms must be >= 0, not {self.batch_budget_ms}")
        if self.max_wal_mb_s is not None and self.max_wal_mb_s <= 0:
            raise ValueError(f"max_wal_mb_s must be > 0, not {self.max_wal_mb_s}")
        if self.max_commit_ms is not None and self.max_commit_ms <= 0:
            raise ValueError(f"max_commit_ms must be > 0, not {self.max_commit_ms}")
        if not 1 <= self.workers <= 16:
            raise ValueError(f"workers must be between 1 and 16, not {self.workers}")
        if self.wal_compression not in WAL_COMPRESSION:
            raise ValueError(f"wal_compression must be one of {', '.join(map(str, WAL_COMPRESSION))},"
                             f" not {self.wal_compression!r}")

    @property
    def adaptive(self) -> bool:
        return self.batch_budget_ms > 0


@dataclass
class PaceStats:
    batches: int = 0
    shrinks: int = 0
    grows: int = 0
    slept_s: float = 0.0
    replica_waits: int = 0
    wal_bytes: int = 0
    max_batch_ms: float = 0.0
    wal_compression: str = ""              # what the session got (or why not)
    max_commit_ms: float = 0.0
    commit_rests: int = 0                  # rests after a commit slower than max_commit_ms
    steps: list[int] = field(default_factory=list)   # a few step sizes over the run, for reports

    @classmethod
    def combined(cls, parts) -> PaceStats:
        """The stats of several pacers (one relation's segments) as one."""
        out = cls()
        for p in parts:
            out.batches += p.batches
            out.shrinks += p.shrinks
            out.grows += p.grows
            out.slept_s += p.slept_s
            out.replica_waits += p.replica_waits
            out.wal_bytes += p.wal_bytes
            out.max_batch_ms = max(out.max_batch_ms, p.max_batch_ms)
            out.wal_compression = out.wal_compression or p.wal_compression
            out.max_commit_ms = max(out.max_commit_ms, p.max_commit_ms)
            out.commit_rests += p.commit_rests
            out.steps += p.steps
        return out

    def to_dict(self) -> dict:
        return {"batches": self.batches, "shrinks": self.shrinks, "grows": self.grows,
                "slept_s": round(self.slept_s, 3), "replica_waits": self.replica_waits,
                "wal_bytes": self.wal_bytes, "max_batch_ms": round(self.max_batch_ms, 2),
                "wal_compression": self.wal_compression, "max_commit_ms": round(self.max_commit_ms, 2),
                "commit_rests": self.commit_rests,
                "steps_seen": sorted(set(self.steps))[:20]}


class ReplicaLagging(RuntimeError):
    pass


class Pacer:
    """Decides the next batch's size (in heap blocks) and any pause, from what the last batch cost."""

    def __init__(self, limits: PaceLimits, initial_step: int, max_step: int, share: int = 1):
        self.limits = limits
        # one of `share` pacers walking the same relation: each keeps to its part of the WAL cap
        self.max_wal_mb_s = limits.max_wal_mb_s / share if limits.max_wal_mb_s else None
        # adaptive: a slow start at a floor of 1/8 of batch_size (the first batch's cost is
        # unknown; it grows from there), so a busy server slows the backfill without making it crawl
        self.min_step = max(1, initial_step // 8) if limits.adaptive else max(1, initial_step)
        self.step = self.min_step
        self.max_step = max(self.step, max_step)
        self.stats = PaceStats()
        self._lsn: int | None = None
        self._t0 = 0.0
        self._commit_t0: float | None = None

    def configure_session(self, conn: psycopg.Connection) -> None:
        # adaptive: each batch's commit flushes its own WAL, so its commit time is measured
        # (and no writer later finds a batch's worth of unflushed WAL ahead of its commit);
        # fixed batches keep the cheaper asynchronous commit
        conn.execute("SET synchronous_commit = " + ("on" if self.limits.adaptive else "off"))
        # the pages a batch dirties are handed to the kernel's writeback as they are written,
        # not left to pile up in the page cache until a checkpoint's fsync (or the kernel's
        # dirty limit) writes them all at once, stalling every commit's WAL flush meanwhile
        conn.execute("SET backend_flush_after = '256kB'")
        self.stats.wal_compression = _compress_wal(conn, self.limits.wal_compression)

    def before_batch(self, conn: psycopg.Connection) -> int:
        self._lsn = self._wait_for_replicas(conn)
        self._t0 = time.perf_counter()
        self._commit_t0 = None
        return self.step

    def before_commit(self) -> None:
        """Call as the batch's last statement returns: what follows until after_batch is its commit."""
        self._commit_t0 = time.perf_counter()

    def after_batch(self, conn: psycopg.Connection) -> None:
        """Call after the batch committed."""
        now = time.perf_counter()
        held_s = now - self._t0
        held_ms = held_s * 1000
        commit_ms = (now - self._commit_t0) * 1000 if self._commit_t0 is not None else 0.0
        st = self.stats
        st.batches += 1
        st.max_batch_ms = max(st.max_batch_ms, held_ms)
        if len(st.steps) < 200:
            st.steps.append(self.step)
        if self.limits.adaptive:
            ratio = self.limits.batch_budget_ms / max(held_ms, 0.1)
            factor = min(self.limits.grow, max(self.limits.shrink, ratio))
            scaled = self.step * factor
            new = max(self.min_step, min(self.max_step, math.ceil(scaled) if factor > 1 else int(scaled)))
            if new < self.step:
                st.shrinks += 1
            elif new > self.step:
                st.grows += 1
            self.step = new
        # the WAL inserted meanwhile (other sessions' too): one round trip, as cheap as a batch allows
        wrote = max(0, _insert_lsn(conn) - (self._lsn or 0))
        st.wal_bytes += wrote
        if self.max_wal_mb_s:
            # keep the batch's WAL under the cap: wait out the rest of its time slot
            slot_s = wrote / (self.max_wal_mb_s * 1024 * 1024)
            if slot_s > held_s:
                time.sleep(slot_s - held_s)
                st.slept_s += slot_s - held_s
        st.max_commit_ms = max(st.max_commit_ms, commit_ms)
        limit = self.limits.max_commit_ms
        if limit and commit_ms > limit:
            # a slow commit is a long queue at the disk, which every writer's commit now waits
            # behind: rest until it drains (longer the slower it was) before adding to it
            rest_s = min(COMMIT_REST_MAX_S, commit_ms / 1000 * commit_ms / limit)
            time.sleep(rest_s)
            st.slept_s += rest_s
            st.commit_rests += 1

    def _wait_for_replicas(self, conn: psycopg.Connection) -> int:
        """Wait while a replica lags too far; the WAL insert position once none does."""
        waited = 0.0
        while True:
            lsn, lag = _lsn_and_lag(conn)
            if lag is None or lag <= self.limits.max_replica_lag_s:
                return lsn
            if waited >= self.limits.replica_wait_max_s:
                raise ReplicaLagging(f"a replica lags {lag:.1f} s (allowed {self.limits.max_replica_lag_s} s) "
                                     f"and did not catch up within {self.limits.replica_wait_max_s:.0f} s")
            if waited == 0:
                self.stats.replica_waits += 1
                log.warning("backfill waits: a replica lags %.1f s (allowed %.1f s)", lag,
                            self.limits.max_replica_lag_s)
            time.sleep(0.5)
            waited += 0.5
            self.stats.slept_s += 0.5


def _compress_wal(conn: psycopg.Connection, method: str | None) -> str:
    """Compress this session's WAL when asked. At scale most of a backfill's WAL is full-page
    images (each index page's first change after a checkpoint), and every byte of it is written
    and fsynced on the disk the old application's commits wait for. A superuser-only setting:
    another role keeps the server's and the backfill goes on (the stats say so)."""
    if method is None:
        return str(conn.execute("SHOW wal_compression").fetchone()[0])
    try:
        conn.execute(sql.SQL("SET wal_compression = {}").format(sql.Literal(method)))
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidParameterValue) as exc:
        server = conn.execute("SHOW wal_compression").fetchone()[0]
        log.warning("backfill WAL not compressed with %s (%s); the server's setting (%s) stays",
                    method, str(exc).strip().splitlines()[0], server)
        return f"{server} ({method} refused: {type(exc).__name__})"
    return method


def _insert_lsn(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()[0])


_LAG = "SELECT max(extract(epoch FROM coalesce(replay_lag, write_lag))) FROM pg_stat_replication"


def replica_lag_s(conn: psycopg.Connection) -> float | None:
    """The largest replay lag of any streaming replica, or None when there is none (or the role
    may not see it)."""
    return _lsn_and_lag(conn)[1]


def _lsn_and_lag(conn: psycopg.Connection) -> tuple[int, float | None]:
    lsn, lag = conn.execute(f"SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn, ({_LAG})").fetchone()
    return int(lsn), (float(lag) if lag is not None else None)

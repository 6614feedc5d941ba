"""What the server's settings mean for a large backfill, said before it starts.

Measured at 10M lots (bench/RESULTS.md): with ``shared_buffers`` far below the size of the indexes
a backfill changes, each batch's index pages are evicted and written again and again (~250 MB/s
of writes), and the disk's occasional write freezes land in the old application's commits; with
``max_wal_size`` below the relation's size, a checkpoint every few seconds turns most of the WAL
into full-page images; with ``min_wal_size`` below it, a writer's commit now and then creates and
zero-fills a WAL segment. Advice, not a gate: the settings are the DBA's, and the backfill is
correct (and paced) either way.
"""
from __future__ import annotations

from dataclasses import dataclass

import psycopg


# measured: 1M lots (indexes ~1.2x the 128 MB of shared_buffers) kept writers under 50 ms, 10M
# (23x) did not; below 1 GB of WAL per checkpoint cycle, the default server recycled every segment
INDEXES_PER_BUFFERS = 4
RECYCLED_ENOUGH = 2**30


@dataclass(frozen=True)
class ServerFit:
    relation: str
    total_bytes: int          # heap + indexes + TOAST
    index_bytes: int
    shared_buffers_bytes: int
    max_wal_size_bytes: int
    min_wal_size_bytes: int


def read_fit(conn: psycopg.Connection, rel: str) -> ServerFit:
    total, indexes, buffers, max_wal, min_wal = conn.execute(
        "SELECT pg_total_relation_size(%s::regclass), pg_indexes_size(%s::regclass),"
        " pg_size_bytes(current_setting('shared_buffers')), pg_size_bytes(current_setting('max_wal_size')),"
        " pg_size_bytes(current_setting('min_wal_size'))", (rel, rel)).fetchone()
    return ServerFit(rel, int(total), int(indexes), int(buffers), int(max_wal), int(min_wal))


def advice(fit: ServerFit) -> list[str]:
    """One line per setting the backfill of `fit.relation` will strain; none when it fits."""
    out = []
    if fit.index_bytes > INDEXES_PER_BUFFERS * fit.shared_buffers_bytes:
        out.append(f"shared_buffers ({_size(fit.shared_buffers_bytes)}) is smaller than the indexes of "
                   f"{fit.relation} ({_size(fit.index_bytes)}): the backfill's index pages are written out "
                   f"again and again, and writers' commits may wait behind the disk; a shared_buffers "
                   f"near the indexes' size avoids it")
    if fit.total_bytes > fit.max_wal_size_bytes:
        out.append(f"max_wal_size ({_size(fit.max_wal_size_bytes)}) is smaller than {fit.relation} "
                   f"({_size(fit.total_bytes)} with its indexes): checkpoints come every few seconds during "
                   f"the backfill and most of its WAL becomes full-page images; a max_wal_size above "
                   f"the relation's size avoids it")
    elif fit.total_bytes > max(fit.min_wal_size_bytes, RECYCLED_ENOUGH):
        # with a small max_wal_size, checkpoints recycle segments every few seconds; once it is
        # raised, one checkpoint cycle's WAL outgrows the segments there are
        out.append(f"min_wal_size ({_size(fit.min_wal_size_bytes)}) is smaller than {fit.relation} "
                   f"({_size(fit.total_bytes)} with its indexes): the backfill's WAL needs new segment files, "
                   f"and a writer whose commit creates one waits for its zero-filling; a min_wal_size "
                   f"above the relation's size keeps recycled segments ready")
    return out


def _size(n: int) -> str:
    units, x, i = ("B", "kB", "MB", "GB", "TB"), float(n), 0
    while x >= 1024 and i < len(units) - 1:
        x, i = x / 1024, i + 1
    return f"{x:.0f} {units[i]}" if i == 0 else f"{x:.1f} {units[i]}"

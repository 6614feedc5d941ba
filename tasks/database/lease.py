"""One run at a time changes a target database: a lease row in its ledger.

The holder renews the lease from a background thread while its process lives (through an
approval pause too), so nothing depends on a session staying open — it works behind a
connection pooler. A lease whose holder died is taken over at once when the holder ran on this
host (its pid is gone), else when it expires. Every run that takes the lease is registered in
runbook.runs and marked ended when it ends; a run that never ended crashed.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from runbook.errors import RunbookError
from runbook.pg import connect

log = logging.getLogger("runbook.lease")
LEASE_TTL_S = 120


def _alive_here(host: str, pid: int) -> bool | None:
    """Whether the holder process lives; None when it ran on another host (cannot tell)."""
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire(url: str, flow_run_id: str, flow_name: str, ttl_s: int = LEASE_TTL_S) -> None:
    host, pid = socket.gethostname(), os.getpid()
    with connect(url, autocommit=True) as conn:
        holder = conn.execute("SELECT owner, flow_name, host, pid, expires_at < now() "
                              "FROM runbook.lease WHERE id = 1").fetchone()
        # a holder that expired, or whose process on this host is gone, was killed: take over
        stale = holder is not None and holder[0] != flow_run_id and (
            holder[4] or _alive_here(holder[2], holder[3]) is False)
        row = conn.execute(
            """INSERT INTO runbook.lease (id, owner, flow_name, host, pid, expires_at)
               VALUES (1, %(owner)s, %(flow)s, %(host)s, %(pid)s, now() + make_interval(secs => %(ttl)s))
               ON CONFLICT (id) DO UPDATE
                  SET owner = EXCLUDED.owner, flow_name = EXCLUDED.flow_name, host = EXCLUDED.host,
                      pid = EXCLUDED.pid, acquired_at = now(), expires_at = EXCLUDED.expires_at
                WHERE runbook.lease.owner = EXCLUDED.owner OR runbook.lease.expires_at < now()
                   OR (%(stale)s AND runbook.lease.owner = %(stale_owner)s)
               RETURNING owner""",
            {"owner": flow_run_id, "flow": flow_name, "host": host, "pid": pid, "ttl": ttl_s,
             "stale": stale, "stale_owner": holder[0] if holder else ""}).fetchone()
        if row is None:
            held = conn.execute("SELECT owner, flow_name, expires_at FROM runbook.lease WHERE id = 1").fetchone()
            raise RunbookError(f"database is in use by run {held[0]} of {held[1]} (lease until "
                               f"{held[2]:%H:%M:%S %Z}); refusing to run concurrently")
        if stale:
            log.warning("took over the lease of run %s (%s), whose process is gone", holder[0], holder[1])
        conn.execute("INSERT INTO runbook.runs (flow_run_id, flow_name) VALUES (%s, %s) "
                     "ON CONFLICT (flow_run_id) DO UPDATE SET ended_at = NULL, outcome = NULL",
                     (flow_run_id, flow_name))


def renew(url: str, flow_run_id: str, ttl_s: int = LEASE_TTL_S) -> bool:
    with connect(url, autocommit=True) as conn:
        return conn.execute("UPDATE runbook.lease SET expires_at = now() + make_interval(secs => %s) "
                            "WHERE id = 1 AND owner = %s", (ttl_s, flow_run_id)).rowcount == 1


def release(url: str, flow_run_id: str, outcome: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute("UPDATE runbook.runs SET ended_at = now(), outcome = %s WHERE flow_run_id = %s",
                     (outcome, flow_run_id))
        conn.execute("DELETE FROM runbook.lease WHERE id = 1 AND owner = %s", (flow_run_id,))


def crashed_runs(url: str, flow_name: str | None = None) -> dict[str, str]:
    """Runs that took the lease and never ended (killed): the only ones a later run adopts.
    Flow run id -> flow name, oldest first."""
    with connect(url) as conn:
        return dict(conn.execute(
            "SELECT flow_run_id, flow_name FROM runbook.runs WHERE ended_at IS NULL"
            " AND (%s::text IS NULL OR flow_name = %s) ORDER BY started_at", (flow_name, flow_name)).fetchall())


def mark_crashed(url: str, flow_run_ids: list[str]) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute("UPDATE runbook.runs SET ended_at = now(), outcome = 'crashed' "
                     "WHERE flow_run_id = ANY(%s) AND ended_at IS NULL", (flow_run_ids,))


@contextmanager
def held(url: str, flow_run_id: str, flow_name: str, ttl_s: int = LEASE_TTL_S) -> Iterator[dict]:
    """Hold the database's lease for the block (renewed every ttl/3); the yielded dict's
    "outcome" is recorded when the block ends ("failed" if it raised)."""
    acquire(url, flow_run_id, flow_name, ttl_s)
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                if not renew(url, flow_run_id, ttl_s):
                    log.error("lost the database lease of run %s", flow_run_id)
                    return
            except Exception:  # noqa: BLE001 - a blip; the next renewal retries
                log.warning("could not renew the database lease", exc_info=True)

    keeper = threading.Thread(target=keep, name=f"lease-{flow_run_id[:8]}", daemon=True)
    keeper.start()
    result = {"outcome": "completed"}
    try:
        yield result
    except BaseException as exc:
        result["outcome"] = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        raise
    finally:
        stop.set()
        keeper.join(5)
        release(url, flow_run_id, result["outcome"])

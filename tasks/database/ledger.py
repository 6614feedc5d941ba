"""The migration ledger: a `runbook` schema in the target database.

The target database is the source of truth for progress: which migration (and checksum) is
applied, backfill checkpoints, backups, staging rehearsals, and the steps each run applied,
so that a re-run after a crash (which runs no Prefect hook) can resume or roll back.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from runbook.errors import RunbookError
from runbook.pg import connect
from runbook.tasks.database import queries

LEDGER_DDL = queries.text("ledger_schema")


def ensure(url: str) -> None:
    with connect(url) as conn:
        # two first runs at once would race on CREATE SCHEMA; serialise them
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('runbook:ledger-ddl'))")
        conn.execute(LEDGER_DDL)


@contextmanager
def cursor(url: str) -> Iterator[psycopg.Cursor]:
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        yield cur


def migration_state(url: str, migration_id: str) -> dict | None:
    with cursor(url) as cur:
        cur.execute("SELECT to_regclass('runbook.migrations') IS NOT NULL AS present")
        if not cur.fetchone()["present"]:
            return None          # a database the runbook has never touched
        cur.execute("SELECT * FROM runbook.migrations WHERE id = %s", (migration_id,))
        return cur.fetchone()


def set_migration(url: str, migration_id: str, checksum: str, status: str,
                  flow_run_id: str | None = None) -> None:
    stamp = {"applied": "applied_at", "reverted": "reverted_at"}.get(status)
    with cursor(url) as cur:
        cur.execute(
            f"""INSERT INTO runbook.migrations (id, checksum, status, flow_run_id
                    {', ' + stamp if stamp else ''})
                VALUES (%s, %s, %s, %s {', now()' if stamp else ''})
                ON CONFLICT (id) DO UPDATE SET checksum = EXCLUDED.checksum,
                    status = EXCLUDED.status, flow_run_id = EXCLUDED.flow_run_id,
                    {stamp + ' = now(), ' if stamp else ''} updated_at = now()""",
            (migration_id, checksum, status, flow_run_id))


def set_baseline(url: str, migration_id: str, baseline: dict | None) -> None:
    with cursor(url) as cur:
        cur.execute("UPDATE runbook.migrations SET baseline = %s WHERE id = %s",
                    (json.dumps(baseline) if baseline is not None else None, migration_id))


def check_drift(url: str, migration_id: str, checksum: str) -> None:
    """Refuse when the ledger recorded this migration with other file contents."""
    state = migration_state(url, migration_id)
    if state and state["status"] in ("applied", "applying") and state["checksum"] != checksum:
        raise RunbookError(
            f"migration {migration_id} drifted: ledger checksum {state['checksum'][:12]} "
            f"!= file checksum {checksum[:12]}; the applied SQL is not the SQL on disk")


def sections_done(url: str, migration_id: str) -> set[str]:
    with cursor(url) as cur:
        cur.execute("SELECT section FROM runbook.migration_sections WHERE migration_id = %s",
                    (migration_id,))
        return {r["section"] for r in cur.fetchall()}


def mark_section(conn: psycopg.Connection, migration_id: str, section: str) -> None:
    conn.execute("INSERT INTO runbook.migration_sections (migration_id, section) VALUES (%s, %s)"
                 " ON CONFLICT DO NOTHING", (migration_id, section))


def set_plan(url: str, migration_id: str, plan: list[dict] | None) -> None:
    with cursor(url) as cur:
        cur.execute("UPDATE runbook.migrations SET plan = %s WHERE id = %s",
                    (json.dumps(plan) if plan is not None else None, migration_id))


def record_objects(conn: psycopg.Connection, migration_id: str, objects: list[dict]) -> None:
    """In the caller's transaction: the objects a section created or changed."""
    for o in objects:
        conn.execute("INSERT INTO runbook.migration_objects (migration_id, kind, name, action, prior, detail)"
                     " VALUES (%s, %s, %s, %s, %s, %s)",
                     (migration_id, o["kind"], o["name"], o["action"], o.get("prior"),
                      json.dumps(o.get("detail") or {})))


def recorded_objects(url: str, migration_id: str) -> list[dict]:
    """What an apply created or changed and no revert has undone yet, oldest first."""
    with cursor(url) as cur:
        cur.execute("SELECT to_regclass('runbook.migration_objects') IS NOT NULL AS present")
        if not cur.fetchone()["present"]:
            return []
        cur.execute("SELECT * FROM runbook.migration_objects WHERE migration_id = %s ORDER BY id",
                    (migration_id,))
        return cur.fetchall()


def forget_objects(conn: psycopg.Connection, ids: list[int]) -> None:
    conn.execute("DELETE FROM runbook.migration_objects WHERE id = ANY(%s)", (ids,))


def forget_migration(url: str, migration_id: str) -> None:
    with cursor(url) as cur:
        cur.execute("DELETE FROM runbook.migration_sections WHERE migration_id = %s", (migration_id,))
        cur.execute("DELETE FROM runbook.checkpoints WHERE migration_id = %s", (migration_id,))


def get_checkpoint(url: str, migration_id: str, table: str) -> dict | None:
    with cursor(url) as cur:
        cur.execute("SELECT * FROM runbook.checkpoints WHERE migration_id = %s AND table_name = %s",
                    (migration_id, table))
        return cur.fetchone()


def save_checkpoint(conn: psycopg.Connection, migration_id: str, table: str, last_key: Any,
                    rows_done: int, finished: bool = False) -> None:
    conn.execute(
        """INSERT INTO runbook.checkpoints (migration_id, table_name, last_key, rows_done, finished)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (migration_id, table_name) DO UPDATE SET last_key = EXCLUDED.last_key,
               rows_done = EXCLUDED.rows_done, finished = EXCLUDED.finished, updated_at = now()""",
        (migration_id, table, json.dumps(last_key, default=str), rows_done, finished))


def backfill_progress_of(conn: psycopg.Connection, migration_id: str, mark: str) -> dict:
    """One relation's backfill, summed over its segments' checkpoints (`mark#0`, `mark#1`, ...):
    rows done, rows whose other columns changed, a sample of those, and whether it finished."""
    parent, rows, side_effects, sample, seg_finished, segs = None, 0, 0, [], True, 0
    for name, last_key, rows_done, finished in conn.execute(
            "SELECT table_name, last_key, rows_done, finished FROM runbook.checkpoints"
            " WHERE migration_id = %s AND (table_name = %s OR left(table_name, length(%s) + 1) = %s || '#')"
            " ORDER BY table_name", (migration_id, mark, mark, mark)):
        last_key = last_key if isinstance(last_key, dict) else json.loads(last_key or "null") or {}
        if name == mark:
            parent = (last_key, finished)
            continue
        segs += 1
        rows += rows_done
        side_effects += last_key.get("side_effects", 0)
        sample += last_key.get("sample", [])
        seg_finished = seg_finished and finished
    planned = len((parent[0] if parent else {}).get("segments") or [])
    return {"rows_done": rows, "side_effects": side_effects, "sample": sample[:10],
            "triggers": (parent[0] if parent else {}).get("triggers", ""),
            "finished": bool(parent and (parent[1] or (segs == planned and seg_finished))),
            "started": parent is not None}


def backfill_progress(url: str, migration_id: str) -> dict[str, dict]:
    """backfill_progress_of for every relation the migration backfilled (up direction)."""
    with cursor(url) as cur:
        cur.execute("SELECT to_regclass('runbook.checkpoints') IS NOT NULL AS present")
        if not cur.fetchone()["present"]:
            return {}
        cur.execute("SELECT table_name FROM runbook.checkpoints WHERE migration_id = %s"
                    " AND position('#' in table_name) = 0 AND position(':' in table_name) = 0",
                    (migration_id,))
        marks = [r["table_name"] for r in cur.fetchall()]
    with connect(url) as conn:
        return {m: backfill_progress_of(conn, migration_id, m) for m in marks}


def record_backup(url: str, path: str, sha256: str, size: int, flow_run_id: str | None) -> None:
    with cursor(url) as cur:
        cur.execute("INSERT INTO runbook.backups (path, sha256, bytes, flow_run_id) VALUES (%s,%s,%s,%s)",
                    (path, sha256, size, flow_run_id))


def record_rehearsal(url: str, migration_id: str, checksum: str, flow_run_id: str | None,
                     detail: dict) -> None:
    with cursor(url) as cur:
        cur.execute("INSERT INTO runbook.rehearsals (migration_id, checksum, flow_run_id, detail)"
                    " VALUES (%s, %s, %s, %s)",
                    (migration_id, checksum, flow_run_id, json.dumps(detail, default=str)))


def rehearsal_passed(url: str, migration_id: str, checksum: str) -> bool:
    with cursor(url) as cur:
        cur.execute("SELECT 1 FROM runbook.rehearsals WHERE migration_id = %s AND checksum = %s",
                    (migration_id, checksum))
        return cur.fetchone() is not None


def record_step(url: str, flow_run_id: str, flow_name: str, step: str, status: str,
                data: dict | None = None) -> None:
    with cursor(url) as cur:
        cur.execute("INSERT INTO runbook.run_steps (flow_run_id, flow_name, step, status, data)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (flow_run_id, flow_name, step, status, json.dumps(data or {}, default=str)))


def unreverted_steps(url: str, flow_name: str) -> list[dict]:
    """Steps a crashed run of flow_name applied and nobody reverted, newest first: a run that
    ended (completed, failed, cancelled) is history and never adopted."""
    with cursor(url) as cur:
        cur.execute(
            """SELECT DISTINCT ON (s.flow_run_id, s.step) s.flow_run_id, s.step, s.status, s.data, s.id
               FROM runbook.run_steps s JOIN runbook.runs r ON r.flow_run_id = s.flow_run_id
               WHERE s.flow_name = %s AND r.ended_at IS NULL
               ORDER BY s.flow_run_id, s.step, s.id DESC""", (flow_name,))
        rows = [r for r in cur.fetchall() if r["status"] == "applied"]
    return sorted(rows, key=lambda r: r["id"], reverse=True)



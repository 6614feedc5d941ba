"""Benchmark: migration 014 killed (SIGKILL) halfway through its backfill, then resumed.

    python bench/backfill_resume.py --rows N --json OUT [--database-url URL] [--kill-at 0.5]
        [--rate R] [--template DBNAME] [--skip-uninterrupted]

On a clone of a seeded template (demo schema, N lots) and beside the old code's writer
(bench.common.Writer, ~R UPDATEs/s through the old name): a child process applies 014 and is
killed with SIGKILL once the ledger's checkpoint shows --kill-at of the lots backfilled; the
runbook then resumes the apply (the ledger says `applying`). Reports the kill point, how much
of the backfill the resume redid (rows it changed beyond what was left), the resume's time
against an uninterrupted apply's on another clone, verify, and writes lost (0 expected).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench.common import Writer, build_template, clone, lost_writes, sample_ids
from runbook.pg import connect, drop_database, with_database
from runbook.tasks.database import ledger, migrate, migration_files

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
MIGRATION = "014_standardize_quantity_fields"


def _apply(url: str) -> None:
    migrate.apply(url, migration_files.load(MIGRATION))


def _lots_done(url: str) -> tuple[int, int]:
    """(rows the checkpoint says are done, lots in the table)"""
    try:
        cp = ledger.backfill_progress(url, MIGRATION).get("lots")
    except psycopg.errors.UndefinedTable:   # the ledger is made by the child's first steps
        cp = None
    with connect(url) as conn:
        total = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'lots'::regclass").fetchone()[0]
    return (cp["rows_done"] if cp else 0), int(total)


def timed_apply(url: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    report = migrate.apply(url, migration_files.load(MIGRATION))
    return time.perf_counter() - t0, report.rows_backfilled


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--database-url", default=DEFAULT_SERVER)
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of lots backfilled when killed")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--template", metavar="DBNAME", help="reuse (or keep) the seeded template under this name")
    ap.add_argument("--skip-uninterrupted", action="store_true",
                    help="skip the uninterrupted apply it is compared with (migration_stall.py times one)")
    args = ap.parse_args(argv)
    if not 0 < args.kill_at < 1:
        print("error: --kill-at must be between 0 and 1 (exclusive)", file=sys.stderr)
        return 2
    tag = uuid.uuid4().hex[:8]
    template = args.template or f"rb_resume_tpl_{tag}"
    killed_db, whole_db = f"rb_resume_kill_{tag}", f"rb_resume_whole_{tag}"
    try:
        with connect(args.database_url) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone()
        if args.template and exists:
            tpl_url, build = with_database(args.database_url, template), {"reused": template}
        else:
            tpl_url, build = build_template(args.database_url, template, args.rows)
        ids = sample_ids(tpl_url, min(args.rows, 20_000))

        whole_s = None
        if not args.skip_uninterrupted:
            whole_url = clone(args.database_url, template, whole_db)
            whole_s, _ = timed_apply(whole_url)
            drop_database(args.database_url, whole_db)

        url = clone(args.database_url, template, killed_db)
        writer = Writer(url, ids, args.rate)
        writer.start()
        try:
            child = mp.get_context("spawn").Process(target=_apply, args=(url,))
            t0 = time.perf_counter()
            child.start()
            done, total = 0, 1
            while child.is_alive():
                done, total = _lots_done(url)
                if done >= args.kill_at * total:
                    os.kill(child.pid, signal.SIGKILL)
                    break
                time.sleep(0.05)
            child.join()
            killed_after_s = time.perf_counter() - t0
            done_at_kill, total = _lots_done(url)
            resume_s, backfilled = timed_apply(url)
        finally:
            writes = writer.stop()
        verify = migrate.verify(url, migration_files.load(MIGRATION))
        lost, sample = lost_writes(url, writes)
        out = {"rows": args.rows, "build": build, "kill_at": args.kill_at,
               "killed_after_s": round(killed_after_s, 2), "child_exit": child.exitcode,
               "lots_done_at_kill": done_at_kill, "lots_total": total,
               "resume_rows_backfilled": backfilled.get("lots", 0),
               "resume_s": round(resume_s, 2),
               "uninterrupted_apply_s": round(whole_s, 2) if whole_s else None,
               "killed_plus_resume_vs_uninterrupted": (round((killed_after_s + resume_s) / whole_s, 3)
                                                       if whole_s else None),
               "verify": verify.observed, "writes": len(writes), "lost_writes": lost, "lost_sample": sample}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out))
        return 0 if verify.passed and lost == 0 else 1
    finally:
        for name in (killed_db, whole_db, *([] if args.template else [template])):
            drop_database(args.database_url, name)


if __name__ == "__main__":
    raise SystemExit(main())

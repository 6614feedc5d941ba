"""Benchmark: writer stalls under migration 014, the plan's single transaction vs. the runbook.

    python bench/migration_stall.py --rows N --json OUT [--database-url URL] [--batch-size B]
        [--pace 0,20] [--runs 3] [--seed-runs S] [--workers W] [--max-wal-mb-s M]
        [--lock-timeout-ms MS] [--rate R] [--migrations-dir DIR] [--settle on|off|both] [--floor]

Builds a scratch template database on the server of --database-url (demo schema + demo seed
with N lots, VACUUM ANALYZE), then runs, each on its own FILE_COPY clone of that template
(same starting state) and each under a concurrent writer (~R single-row UPDATEs/s of random
lots through the old column name qty_open, own process and connection):

  seed     bench/plan_014_single_transaction.sql, the plan's Task 1.1, executed as written
  runbook  tasks.migrate.apply(url, migration_files.load('014_standardize_quantity_fields'))

With --floor, each runbook run is followed, on its migrated clone, by the floor: the same writer
beside nothing but a plain read of each backfilled table (`SELECT count(*)`), the least any full
proof (VALIDATE CONSTRAINT, the parity gate) must do; a migration cannot stall the writer less
than the machine does for one scan.

A "stall" is the latency of one writer UPDATE in flight while the migration runs. Writes the
JSON figures (seed_* / runbook_* max and p99 stall, total seconds, per-phase breakdown,
lost_writes, WAL and size) and drops every scratch database.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pglast
from psycopg import sql

from bench.common import (
    WaitSampler,
    Writer,
    build_template,
    clone,
    db_stats,
    drop_database,
    lost_writes,
    overlapping,
    percentile,
    sample_ids,
    stall_summary,
    wal_bytes,
)
from runbook.errors import RunbookError
from runbook.pg import connect, with_database
from runbook.tasks.database import migrate, migration_files
from runbook.tasks.database.pacing import PaceLimits

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PLAN_SQL = Path(__file__).resolve().parent / "plan_014_single_transaction.sql"
MIGRATION = "014_standardize_quantity_fields"
WARMUP_S = 1.0     # writer baseline before the migration starts
COOLDOWN_S = 0.3   # writer keeps going briefly after it (blocked writes land here)

Phase = tuple[str, float, float]   # (name, perf_counter start, end)


# --settle: with the batches' hint-bit read-back, without it, or each run both ways in a row
SETTLE_MODES = {"on": (True,), "off": (False,), "both": (True, False)}


def variant_name(budget: float, settle: bool) -> str:
    return f"budget_{budget:g}ms" + ("" if settle else "_no_settle")


def run_plan(url: str, phases: list[Phase]) -> dict:
    """The plan's file statement by statement on one autocommit session (as psql would)."""
    with connect(url, autocommit=True) as conn:
        for stmt in pglast.split(PLAN_SQL.read_text()):
            t0 = time.perf_counter()
            conn.execute(stmt)
            phases.append((" ".join(stmt.split())[:60], t0, time.perf_counter()))
    return {}


def run_runbook(url: str, phases: list[Phase], opts: migrate.MigrationOptions,
                migrations_dir: Path, settle: bool = True) -> dict:
    """tasks.migrate.apply, with each section timed (wrappers only; the runner is unchanged).
    settle=False: the batches leave their pages' hint bits unset (the runner before it read them
    back), for a side-by-side comparison."""
    run_section, backfill, settle_hint_bits = migrate._run_section, migrate._backfill, migrate.settle_hint_bits

    def timed_section(url_, migration, section, *a, **kw):
        t0 = time.perf_counter()
        try:
            return run_section(url_, migration, section, *a, **kw)
        finally:
            phases.append((section.name, t0, time.perf_counter()))

    def timed_backfill(url_, migration, section, *a, **kw):
        t0 = time.perf_counter()
        try:
            return backfill(url_, migration, section, *a, **kw)
        finally:
            phases.append((section.name, t0, time.perf_counter()))

    # the runner reports after every backfill batch, from the thread walking that segment: the
    # gaps between one thread's reports are its batch times
    ticks: list[tuple[str, str, float]] = []
    opts = dataclasses.replace(opts, progress=lambda table, done, total: ticks.append(
        (table, threading.current_thread().name, time.perf_counter())))
    migrate._run_section, migrate._backfill = timed_section, timed_backfill
    if not settle:
        migrate.settle_hint_bits = lambda *a, **kw: None
    try:
        report = migrate.apply(url, migration_files.load(MIGRATION, migrations_dir), opts)
    finally:
        migrate._run_section, migrate._backfill = run_section, backfill
        migrate.settle_hint_bits = settle_hint_bits
    starts = {name: a for name, a, _ in phases}
    last: dict[tuple[str, str], float] = {}
    for table, thread, t in ticks:
        phases.append((f"batch:{table}", last.get((table, thread), starts[f"backfill_{table}"]), t))
        last[table, thread] = t
    return {"lock_retries": report.lock_retries, "rows_backfilled": report.rows_backfilled,
            "pacing": report.pacing}


def read_tables(url: str, phases: list[Phase], tables: list[str]) -> dict:
    """The floor: one plain full read of each table, nothing else."""
    with connect(url, autocommit=True) as conn:
        for table in tables:
            quoted = conn.execute("SELECT %s::regclass::text", [table]).fetchone()[0]   # the catalog's own quoting
            t0 = time.perf_counter()
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(quoted)))
            phases.append((f"read_{table}", t0, time.perf_counter()))
    return {}


def batch_summary(phases: list[Phase]) -> dict:
    """Per backfilled table: how many batches and how long they took."""
    out: dict = {}
    for name, a, b in phases:
        if name.startswith("batch:"):
            out.setdefault(name[6:], []).append((b - a) * 1000)
    return {t: {"batches": len(ms), "p50_ms": round(percentile(ms, 50), 1),
                "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1)}
            for t, ms in out.items()}


def measure(url: str, ids: list[str], rate: float, migration: Callable[[list[Phase]], dict]) -> dict:
    before = db_stats(url)
    unix_offset = time.time() - time.perf_counter()   # worst writes in wall time, to match server logs
    phases: list[Phase] = []
    writer, waits = Writer(url, ids, rate), WaitSampler(url)
    writer.start()
    waits.start()
    try:
        time.sleep(WARMUP_S)
        t0 = time.perf_counter()
        extra = migration(phases)
        t1 = time.perf_counter()
        time.sleep(COOLDOWN_S)
    finally:
        writes = writer.stop()
        waits.stop()
    after = db_stats(url)
    during = overlapping(writes, t0, t1)
    lost, lost_sample = lost_writes(url, writes)
    return {
        "total_s": round(t1 - t0, 3),
        **stall_summary(during),
        "baseline": stall_summary([w for w in writes if w.t0 + w.ms / 1000 < t0]),
        "writes_total": len(writes),
        "write_errors": sorted({w.error for w in writes if w.error})[:5],
        "lost_writes": lost,
        "lost_sample": lost_sample,
        "wal_mb": round(wal_bytes(url, before["lsn"], after["lsn"]) / 2**20, 1),
        "db_mb_before": round(before["db_bytes"] / 2**20, 1),
        "db_mb_after": round(after["db_bytes"] / 2**20, 1),
        "phases": [{"phase": name, "s": round(b - a, 3),
                    **stall_summary(overlapping(writes, a, b))}
                   for name, a, b in phases if not name.startswith("batch:")],
        "batches": batch_summary(phases),
        "writer_waits": waits.during(t0, t1),
        "worst_writes": [{"at_s": round(w.t0 - t0, 3), "at_unix": round(w.t0 + unix_offset, 3), "ms": round(w.ms, 1),
                          "waits": waits.during(w.t0, w.t0 + w.ms / 1000),
                          "during": [name for name, a, b in phases if a <= w.t0 + w.ms / 1000 and b >= w.t0]}
                         for w in sorted(during, key=lambda w: -w.ms)[:5]],
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    defaults = migrate.MigrationOptions()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--json", type=Path, required=True, help="where to write the result")
    ap.add_argument("--database-url", default=DEFAULT_SERVER,
                    help="any database on the server to use (scratch DBs are created there)")
    ap.add_argument("--batch-size", type=int, default=defaults.batch_size)
    ap.add_argument("--lock-timeout-ms", type=int, default=defaults.lock_timeout_ms)
    ap.add_argument("--rate", type=float, default=200.0, help="writer updates per second")
    ap.add_argument("--pace", type=lambda v: [float(x) for x in v.split(",")], default=[0.0, 20.0],
                    help="comma-separated batch budgets in ms to run side by side (0 = fixed batches); "
                         "the last is the one the targets judge")
    ap.add_argument("--runs", type=int, default=3, help="runs of the runbook's 014 per pace")
    ap.add_argument("--seed-runs", type=int, default=1,
                    help="runs of the plan's single transaction (the runbook is compared with their median)")
    ap.add_argument("--workers", type=int, default=PaceLimits().workers,
                    help="sessions backfilling lots at once (the flow's backfill_workers)")
    ap.add_argument("--max-wal-mb-s", type=float, default=None, help="the pacer's WAL-rate cap")
    ap.add_argument("--max-commit-ms", type=float, default=PaceLimits().max_commit_ms,
                    help="rest after a batch commit slower than this (0: never)")
    ap.add_argument("--wal-compression", default=PaceLimits().wal_compression,
                    help="the backfill sessions' wal_compression ('none': the server's)")
    ap.add_argument("--migrations-dir", type=Path, default=migration_files.MIGRATIONS_DIR,
                    help="where 014's triad is read from (to try an edited copy)")
    ap.add_argument("--skip-seed-run", action="store_true",
                    help="run only the runbook's 014 (for experiments)")
    ap.add_argument("--settle", choices=("on", "off", "both"), default="on",
                    help="whether batches read their pages back to set hint bits; 'both' alternates "
                         "the two in each run (variant *_no_settle beside the default)")
    ap.add_argument("--floor", action="store_true",
                    help="after each runbook run, the writer beside a plain read of each backfilled table")
    ap.add_argument("--template", metavar="DBNAME",
                    help="keep the seeded template under this name and reuse it if it exists "
                         "(for repeated experiments; it must have been built with the same --rows)")
    args = ap.parse_args(argv)
    if args.rows < 200:
        print("error: --rows must be at least 200 (demo.seed's minimum)", file=sys.stderr)
        return 2

    tag = uuid.uuid4().hex[:8]
    template = args.template or f"rb_stall_tpl_{tag}"
    runs = [f"rb_stall_seed_{tag}", f"rb_stall_runbook_{tag}"]
    try:
        if args.template and database_exists(args.database_url, template):
            tpl_url, build = with_database(args.database_url, template), {"reused": template}
        else:
            tpl_url, build = build_template(args.database_url, template, args.rows)
        ids = sample_ids(tpl_url, min(args.rows, 20_000))
        out: dict = {"rows": args.rows, "batch_size": args.batch_size, "workers": args.workers,
                     "lock_timeout_ms": args.lock_timeout_ms, "rate_per_s": args.rate,
                     "build": build}

        if not args.skip_seed_run:
            # the plan's way, --seed-runs times; the runbook is judged against their median
            seeds = []
            for _ in range(args.seed_runs):
                url = clone(args.database_url, template, runs[0])
                seeds.append(measure(url, ids, args.rate, lambda ph, url=url: run_plan(url, ph)))
                drop_database(args.database_url, runs[0])
            seed = sorted(seeds, key=lambda r: r["total_s"])[len(seeds) // 2]
            out.update({"seed_max_stall_ms": seed["max_ms"], "seed_p99_stall_ms": seed["p99_ms"],
                        "seed_total_s": seed["total_s"], "seed_updates": seed["updates"],
                        "seed_lost_writes": seed["lost_writes"],
                        "seed_runs_total_s": [r["total_s"] for r in seeds]})

        # the runbook's 014, once per pace and run: fixed batches (budget 0) beside paced ones
        variants: dict[str, list[dict]] = {}
        for budget in args.pace:
            for _, settle in itertools.product(range(args.runs), SETTLE_MODES[args.settle]):
                url = clone(args.database_url, template, runs[1])
                opts = migrate.MigrationOptions(batch_size=args.batch_size, lock_timeout_ms=args.lock_timeout_ms,
                                                pace=PaceLimits(batch_budget_ms=budget, workers=args.workers,
                                                                max_wal_mb_s=args.max_wal_mb_s,
                                                                max_commit_ms=args.max_commit_ms or None,
                                                                wal_compression=None if args.wal_compression == "none"
                                                                else args.wal_compression))
                rb = measure(url, ids, args.rate,
                             lambda ph, url=url, opts=opts, settle=settle: run_runbook(
                                 url, ph, opts, args.migrations_dir, settle))
                rb["verify"] = migrate.verify(url, migration_files.load(MIGRATION, args.migrations_dir)).observed
                if args.floor:
                    tables = sorted(rb.get("rows_backfilled") or {})
                    rb["floor"] = measure(url, ids, args.rate, lambda ph, url=url, t=tables: read_tables(url, ph, t))
                drop_database(args.database_url, runs[1])
                variants.setdefault(variant_name(budget, settle), []).append(rb)
        out["variants"] = {name: summarize(rbs, out.get("seed_total_s")) for name, rbs in variants.items()}
        judged = variant_name(args.pace[-1], args.settle != "off")
        rb = variants[judged][0]
        out.update({"runbook_max_stall_ms": rb["max_ms"], "runbook_p99_stall_ms": rb["p99_ms"],
                    "runbook_total_s": rb["total_s"], "runbook_updates": rb["updates"],
                    "lost_writes": sum(r["lost_writes"] for rbs in variants.values() for r in rbs),
                    "runbook_verify": rb["verify"]})
        if "seed_total_s" in out:
            out["runbook_vs_seed_total"] = round(out["runbook_total_s"] / out["seed_total_s"], 3)
            out["seed"] = seed
        out["runbook"] = rb
        out["runbook_runs"] = variants
        paced = out["variants"][judged]
        out["targets"] = {
            # judged on the worst of the runs of the last pace
            "runbook_max_stall_ms<=50": paced["max_stall_ms_worst"] <= 50,
            "runbook_total_s<=1.3*seed_total_s": (paced["vs_seed_worst"] <= 1.3
                                                  if paced.get("vs_seed_worst") is not None else None),
            "lost_writes==0": out["lost_writes"] == 0,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps({k: v for k, v in out.items() if k not in ("seed", "runbook", "build")}))
        return 0
    except RunbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for name in (*runs, *([] if args.template else [template])):
            drop_database(args.database_url, name)


def summarize(rbs: list[dict], seed_total_s: float | None) -> dict:
    """One pace's runs: each run's max stall and total, and the worst of them."""
    out = {"max_stall_ms": [r["max_ms"] for r in rbs], "p99_stall_ms": [r["p99_ms"] for r in rbs],
           "total_s": [r["total_s"] for r in rbs], "lost_writes": [r["lost_writes"] for r in rbs],
           "pacing": [r.get("pacing") for r in rbs]}
    if all("floor" in r for r in rbs):
        out["floor_max_stall_ms"] = [r["floor"]["max_ms"] for r in rbs]
    out["max_stall_ms_worst"] = max(out["max_stall_ms"])
    if seed_total_s:
        out["vs_seed"] = [round(t / seed_total_s, 3) for t in out["total_s"]]
        out["vs_seed_worst"] = max(out["vs_seed"])
    return out


def database_exists(server_url: str, name: str) -> bool:
    with connect(server_url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


if __name__ == "__main__":
    raise SystemExit(main())

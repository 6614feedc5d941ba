"""Migration 014 applied, gated and reverted on a live database, with the restore proof, beside
the live writer (bench/live_writer.py: inserts, updates, deletes through whichever names exist).

    python bench/live_restore.py --rows 100000 --json /tmp/live_restore_100k.json [--rate 150]

Recorded: the writer's achieved rate, committed and failed writes, committed writes lost (by
key, through both names), and the seconds of each part: the restore baseline (catalog snapshot
and one hash per row), apply, the parity gates (by key, no row count), revert, restore proof;
whether parity and the proof passed, and the rows the proof names as written meanwhile.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import build_template, clone
from bench.live_writer import LiveWriter, all_committed_writes_present, keys_written
from runbook.expectations.restore import restore_proof
from runbook.expectations.week0.day1_2 import parity_gates
from runbook.pg import drop_database
from runbook.plan import MIGRATION_014
from runbook.tasks.database import migrate, migration_files, restore_baseline
from runbook.tasks.steps.migration import take_restore_baseline

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def timed(out: dict, key: str, fn):
    t0 = time.perf_counter()
    value = fn()
    out[key] = round(time.perf_counter() - t0, 3)
    return value


def run(url: str, rate: float, opts: migrate.MigrationOptions) -> dict:
    m = migration_files.load(MIGRATION_014)
    out: dict = {}
    writer = LiveWriter(url, rate=rate).start()
    try:
        time.sleep(2)
        baseline = timed(out, "baseline_s", lambda: take_restore_baseline(url, m))
        timed(out, "apply_s", lambda: migrate.apply(url, m, opts))
        restore_baseline.mark_touched(url, baseline)
        parity = timed(out, "parity_s", lambda: parity_gates(url, {}))
        timed(out, "revert_s", lambda: migrate.revert(url, m, opts))
        time.sleep(2)
    finally:
        stats = writer.stop()
    writes = {("public.lots", k) for k in keys_written(url)}
    proof = timed(out, "proof_s", lambda: restore_proof(url, baseline, writes=writes))
    check = all_committed_writes_present(url)
    out.update({"writer_rate": round(stats.rate, 1), "writes_committed": stats.committed,
                "writes_failed": stats.failed, "writes_lost": len(check.lost),
                "parity_passed": all(r.passed for r in parity), "proof_passed": proof.passed,
                "proof_rows_compared": proof.details.get("rows_compared"),
                "rows_written_meanwhile": proof.details.get("written_by_application_meanwhile")})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--database-url", default=DEFAULT_SERVER, help="a maintenance database on the server")
    ap.add_argument("--rate", type=float, default=150.0, help="writer writes per second (target)")
    ap.add_argument("--batch-size", type=int, default=2000)
    args = ap.parse_args(argv)
    tag = uuid.uuid4().hex[:6]
    template, name = f"rb_live_tpl_{tag}", f"rb_live_{tag}"
    out: dict = {"rows": args.rows, "rate_target": args.rate}
    try:
        _, out["build"] = build_template(args.database_url, template, args.rows)
        url = clone(args.database_url, template, name)
        out["run"] = run(url, args.rate, migrate.MigrationOptions(batch_size=args.batch_size, lock_timeout_ms=2000))
    finally:
        drop_database(args.database_url, name)
        drop_database(args.database_url, template)
    args.json.write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(out["run"], indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

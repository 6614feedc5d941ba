"""Migrations 014, 015 and 016 on the real-structure demo database: apply, verify and revert
times, beside the old application writing to lots through the old column names.

    python bench/real_schema_migrations.py --rows 100000 --json /tmp/real_100k.json

One template (the demo schema and seed, VACUUM ANALYZE), one clone per migration; on each, the
writer (bench/common.py, its own process) updates random lots at --rate while the runner
applies the migration, verifies it and reverts it. Recorded per migration: apply / verify /
revert seconds, the writer's write count, failed writes and worst latency, and the tables whose
checksum differs after the revert from before the apply (the writer's lots only, expected).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Writer, build_template, clone, sample_ids
from runbook.pg import drop_database
from runbook.plan import MIGRATION_014, MIGRATION_015, MIGRATION_016
from runbook.tasks.database import checksums, migrate, migration_files

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def run_one(url: str, migration_id: str, opts: migrate.MigrationOptions, rate: float) -> dict:
    m = migration_files.load(migration_id)
    before = checksums.table_checksums(url)
    writer = Writer(url, sample_ids(url, 500), rate=rate)
    writer.start()
    try:
        t0 = time.perf_counter()
        migrate.apply(url, m, opts, baseline=before)
        t1 = time.perf_counter()
        verified = migrate.verify(url, m).passed
        t2 = time.perf_counter()
        migrate.revert(url, m, opts)
        t3 = time.perf_counter()
    finally:
        writes = writer.stop()
    differ = [d["table"] for d in checksums.diff(before, checksums.table_checksums(url))]
    return {"apply_s": round(t1 - t0, 3), "verify_s": round(t2 - t1, 3), "revert_s": round(t3 - t2, 3),
            "verified": verified, "writes": len(writes), "failed_writes": sum(1 for w in writes if w.error),
            "max_write_ms": round(max((w.ms for w in writes), default=0.0), 1),
            "tables_differing_after_revert": differ}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--database-url", default=DEFAULT_SERVER, help="a maintenance database on the server")
    ap.add_argument("--batch-size", type=int, default=2000)
    ap.add_argument("--lock-timeout-ms", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=200.0, help="writer updates per second")
    args = ap.parse_args(argv)
    tag = uuid.uuid4().hex[:6]
    template = f"rb_real_tpl_{tag}"
    opts = migrate.MigrationOptions(batch_size=args.batch_size, lock_timeout_ms=args.lock_timeout_ms)
    out: dict = {"rows": args.rows, "batch_size": args.batch_size, "rate": args.rate, "migrations": {}}
    try:
        _, out["build"] = build_template(args.database_url, template, args.rows)
        for mid in (MIGRATION_014, MIGRATION_015, MIGRATION_016):
            name = f"rb_real_{tag}_{mid[:3]}"
            url = clone(args.database_url, template, name)
            try:
                out["migrations"][mid] = run_one(url, mid, opts, args.rate)
            finally:
                drop_database(args.database_url, name)
    finally:
        drop_database(args.database_url, template)
    args.json.write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(out["migrations"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

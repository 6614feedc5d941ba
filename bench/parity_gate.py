"""Benchmark: the GX parity gate vs. one raw aggregate scan of the same table.

    python bench/parity_gate.py --rows 1000000 --json OUT [--database-url URL]

Creates a scratch database on the server of --database-url (default
postgresql://postgres@127.0.0.1:5432/postgres), fills `lots` with N equal rows, times (best of
3) `SELECT count(*), count(*) FILTER (WHERE mismatch) FROM lots` and `parity_gate(...)`, writes
{rows, raw_scan_s, gate_s, ratio} as JSON and drops the scratch database.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from psycopg import sql

from runbook.errors import RunbookError
from runbook.expectations.gx import runner as gx_runner
from runbook.expectations.parity import mismatch_condition, parity_gate
from runbook.pg import connect, drop_database, recreate_database

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PAIRS = [("qty_open", "quantity_open"), ("qty_original", "quantity_original")]


def build(url: str, rows: int) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE lots (id uuid PRIMARY KEY, qty_open numeric, "
                     "qty_original numeric, quantity_open numeric, quantity_original numeric)")
        conn.execute(
            "INSERT INTO lots SELECT gen_random_uuid(), (g %% 1000)::numeric, g::numeric, "
            "(g %% 1000)::numeric, g::numeric FROM generate_series(1, %s) AS g", [rows])
        conn.execute("VACUUM ANALYZE lots")


def best_of(n: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--json", type=Path, required=True, help="where to write the result")
    ap.add_argument("--database-url", default=DEFAULT_SERVER,
                    help="any database on the server to use (a scratch DB is created there)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    scratch = f"rb_bench_{uuid.uuid4().hex[:8]}"
    url = recreate_database(args.database_url, scratch)
    try:
        t0 = time.perf_counter()
        build(url, args.rows)
        build_s = time.perf_counter() - t0

        raw_sql = sql.SQL("SELECT count(*), count(*) FILTER (WHERE {}) FROM lots").format(
            mismatch_condition(PAIRS)).as_string(None)
        with connect(url) as conn:
            def raw():
                return conn.execute(raw_sql).fetchone()
            raw(); conn.rollback()                       # warm the cache like the gate's warm-up
            raw_s, raw_out = best_of(args.repeat, raw)

        def gate():
            return parity_gate(url, "lots", PAIRS, expected_rows=args.rows)
        gate()                                           # warm-up: GX import + context
        gate_s, res = best_of(args.repeat, gate)
        if raw_out != (args.rows, 0) or not res.passed:
            raise RunbookError(f"benchmark data not as built: raw={raw_out}, gate={res.summary}")

        out = {
            "rows": args.rows,
            "raw_scan_s": round(raw_s, 4),
            "gate_s": round(gate_s, 4),
            "ratio": round(gate_s / raw_s, 3),
            "gate_scan_s": res.details.get("scan_s"),
            "build_s": round(build_s, 2),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out))
        return 0
    except RunbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        gx_runner.dispose_runner(url)
        drop_database(args.database_url, scratch)


if __name__ == "__main__":
    raise SystemExit(main())

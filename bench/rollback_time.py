"""The plan's rollback time budgets, measured: migration 014 rolled back (< 15 min) and a run's
code rolled back (< 5 min), on a staging database of --rows lots (default 1M), by the runbook's
own rollback flows after a real Week 0 Day 1-2 run.

    python bench/rollback_time.py --rows 1000000 --json /tmp/rollback_1m.json

Needs a PostgreSQL server (--database-url); creates and drops its own databases, demo repo and
Prefect home (an ephemeral Prefect API). Not run in CI: its figures are wall-clock times.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_template, clone


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--json", type=Path, default=Path("rollback_time.json"))
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rb-rollback-bench-"))
    # before anything imports prefect: run history apart from any other Prefect use
    os.environ["PREFECT_HOME"] = str(tmp / "prefect")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

    from runbook.demo.workspace import TEMPLATE, init_repo
    from runbook.flows.rollback import (
        CODE_BUDGET_S,
        MIGRATION_BUDGET_S,
        rollback_code,
        rollback_migration,
    )
    from runbook.flows.week0.day1_2 import standardize_fields
    from runbook.pg import drop_database
    from runbook.plan import MIGRATION_014, WEEK0_DAY1_2
    from runbook.settings import get_settings
    from runbook.tasks.database import ledger

    tag = uuid.uuid4().hex[:6]
    tpl, staging, prod = f"rbbench_tpl_{tag}", f"rbbench_stg_{tag}", f"rbbench_prod_{tag}"
    try:
        print(f"seeding {args.rows} lots…", flush=True)
        _url, seed_timings = build_template(args.database_url, tpl, args.rows)
        staging_url = clone(args.database_url, tpl, staging)
        prod_url = clone(args.database_url, tpl, prod)
        repo = tmp / "repo"
        init_repo(TEMPLATE, repo)
        os.environ.update(DATABASE_URL=prod_url, STAGING_DATABASE_URL=staging_url, TARGET_REPO=str(repo),
                          RUNBOOK_WORKSPACE=str(tmp / "ws"), BACKUP_DIR=str(tmp / "backups"))
        for key in ("TARGET_API_URL", "SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN"):
            os.environ.pop(key, None)
        get_settings.cache_clear()

        print("Week 0 Day 1-2 on staging…", flush=True)
        t0 = time.perf_counter()
        standardize_fields(environment="staging")
        apply_s = time.perf_counter() - t0
        with ledger.cursor(staging_url) as cur:
            cur.execute("SELECT flow_run_id FROM runbook.run_steps WHERE flow_name = %s ORDER BY id DESC LIMIT 1",
                        (WEEK0_DAY1_2.flow_name,))
            run = cur.fetchone()["flow_run_id"]
        print("code rollback…", flush=True)
        code = rollback_code(run=run, environment="staging")
        print("migration 014 rollback…", flush=True)
        migration = rollback_migration(migration_id=MIGRATION_014, environment="staging")
        figures = {
            "rows": args.rows, "seed": seed_timings, "day1_2_apply_s": round(apply_s, 1),
            "code_rollback": {"seconds": round(code["elapsed_s"], 1), "budget_s": CODE_BUDGET_S,
                              "within_budget": code["within_budget"], "reverted": code["reverted"]},
            "migration_014_rollback": {"seconds": round(migration["elapsed_s"], 1),
                                       "budget_s": MIGRATION_BUDGET_S,
                                       "within_budget": migration["within_budget"],
                                       "reverted": migration["reverted"]},
        }
        args.json.write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures, indent=2))
    finally:
        for name in (tpl, staging, prod):
            drop_database(args.database_url, name)


if __name__ == "__main__":
    main()

"""Fleet rollout wall time: one plan day across N target databases on a Prefect work pool, with
1 worker and then 2 workers (each running one flow run at a time), side by side in one run.

    python bench/fleet.py --targets 4 --rows 2000 --json /tmp/fleet.json

Needs the machine's PostgreSQL (--database-url) and starts its own Prefect server, workers,
target databases and demo repo; everything is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # the real-process helpers

from common import build_template, clone  # noqa: E402
from prefect_processes import executable, prefect_server, process, wait_until  # noqa: E402

from runbook.pg import drop_database  # noqa: E402
from runbook.plan import WEEK0_DAY1_2  # noqa: E402


def fleet_file(path: Path, n: int) -> dict[str, str]:
    """targets.toml with one staging and n-1 production targets; their URL variable names."""
    names = ["stg"] + [f"prod-{i}" for i in range(1, n)]
    path.write_text("".join(f'[[target]]\nname = "{name}"\nrole = "{"staging" if i == 0 else "production"}"\n'
                            f'database_url_env = "BENCH_{name.upper().replace("-", "_")}_URL"\n\n'
                            for i, name in enumerate(names)))
    return {name: f"BENCH_{name.upper().replace('-', '_')}_URL" for name in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=4)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    if not 2 <= args.targets <= 16:
        ap.error("--targets must be between 2 and 16")
    from runbook.demo.workspace import TEMPLATE, init_repo

    work = Path(tempfile.mkdtemp(prefix="rb-bench-fleet-"))
    template = "rb_bench_fleet_tpl"
    build_template(args.database_url, template, args.rows)
    variables = fleet_file(work / "targets.toml", args.targets)
    results = []
    try:
        with prefect_server(work / "prefect") as api:
            for workers in (1, 2):
                ws = work / f"ws{workers}"
                init_repo(TEMPLATE, ws / "repo")
                urls = {var: clone(args.database_url, template, f"rb_bench_fleet_{name.replace('-', '_')}")
                        for name, var in variables.items()}
                env = {**os.environ, **urls, "PREFECT_API_URL": api, "RUNBOOK_TARGETS": str(work / "targets.toml"),
                       "TARGET_REPO": str(ws / "repo"), "RUNBOOK_WORKSPACE": str(ws),
                       "BACKUP_DIR": str(ws / "backups"), "PREFECT_LOGGING_LEVEL": "WARNING"}
                pool = f"bench-{workers}"
                log = work / f"deploy{workers}.log"
                with process([executable("runbook"), "deploy", "--work-pool", pool], env, log, work) as p:
                    wait_until(lambda p=p: p.poll() == 0, timeout=300, what="runbook deploy", proc=p, log=log)
                procs = [process([executable("prefect"), "worker", "start", "--pool", pool, "--limit", "1",
                                  "--name", f"w{i}"], env, work / f"worker{workers}-{i}.log", work)
                         for i in range(workers)]
                for w in procs:
                    w.__enter__()
                try:
                    started = time.perf_counter()
                    # the rollout itself runs here, not on the pool: it must not take a worker's slot
                    code = ("from runbook.flows.rollout import rollout; "
                            f"rollout(plan_day={WEEK0_DAY1_2.key!r}, require_approval=False, "
                            f"max_parallel={args.targets})")
                    run = process([sys.executable, "-c", code], env, work / f"rollout{workers}.log", work)
                    with run as r:
                        wait_until(lambda r=r: r.poll() is not None, timeout=3600, what="rollout", proc=r,
                                   log=work / f"rollout{workers}.log", every=2)
                    wall = time.perf_counter() - started
                finally:
                    for w in procs:
                        w.__exit__(None, None, None)
                results.append({"workers": workers, "wall_s": round(wall, 1)})
                print(json.dumps(results[-1]))
    finally:
        for name in variables:
            drop_database(args.database_url, f"rb_bench_fleet_{name.replace('-', '_')}")
        drop_database(args.database_url, template)
    out = {"targets": args.targets, "rows": args.rows, "runs": results,
           "speedup_2_workers": round(results[0]["wall_s"] / results[1]["wall_s"], 2) if len(results) == 2 else None}
    args.json.write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

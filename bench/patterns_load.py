"""Load on all 13 patterns, two versions of the demo backend side by side in one run (same
data, same machine): per pattern p50/p95/p99 latency and requests/s with --clients concurrent
clients, cache-cold (every request asks for a fresh run, `Cache-Control: no-cache`, cycling
through the portfolios) and cache-warm (the same inputs again and again).

    python bench/patterns_load.py --clients 8 --seconds 5 --json /tmp/patterns_load.json
    python bench/patterns_load.py --before plan/week3-day5 --after plan/week4-day3-4 ...

--before / --after are refs of the demo repo (the change-set branches `plan/...` built from
demo/change_sets/); by default the code Weeks 0-1 leave against the newest shipped change set.
The database is the seeded demo after Week 0's migration 014; each version runs with its own
API process and its own providers' stand-in. The plan's goal (every pattern's p95 under 50 ms)
and the after/before ratio per pattern are in the JSON. Not run in CI: wall-clock figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx

GOAL_P95_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def portfolios(database_url: str, limit: int) -> list[dict]:
    """Inputs for cold runs: portfolios with open lots, each with one security it holds."""
    from runbook.pg import connect
    with connect(database_url) as conn:
        rows = conn.execute(
            """SELECT DISTINCT ON (l.portfolio_id) l.portfolio_id::text, s.id::text, s.symbol
                 FROM lots l JOIN securities s ON s.id = l.security_id
                WHERE coalesce(to_jsonb(l) ->> 'quantity_open', to_jsonb(l) ->> 'qty_open')::numeric > 0
                ORDER BY l.portfolio_id, s.symbol LIMIT %s""", (limit,)).fetchall()
    return [{"portfolio_id": p, "security_id": s, "symbol": sym} for p, s, sym in rows]


NO_CACHE = {"Cache-Control": "no-cache"}     # a fresh run: what a cache miss costs


def load(base_url: str, headers: dict, checkout: Path, pattern_id: str, inputs: list[dict],
         clients: int, seconds: float) -> dict:
    """`clients` threads run `pattern_id` for `seconds`, cycling through `inputs`."""
    from runbook.expectations.smoke import declared_inputs, execute, load_pattern
    spec = load_pattern(checkout, pattern_id)
    bodies = [declared_inputs(spec, i) for i in inputs]
    latencies: list[float] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        n = offset
        with httpx.Client(timeout=60) as http:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    status = execute(http, base_url, pattern_id, bodies[n % len(bodies)], headers).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                ms = (time.perf_counter() - started) * 1000
                with lock:
                    if status == 200:
                        latencies.append(ms)
                    else:
                        failures[str(status)] = failures.get(str(status), 0) + 1
                n += clients
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if not latencies:
        return {"requests": 0, "failures": failures}
    return {"requests": len(latencies), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "failures": failures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0, help="per pattern, mode and version")
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--before", default=None, help="default: plan/weeks0-1")
    ap.add_argument("--after", default=None, help="default: the newest shipped change set")
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--redis-url", default=None,
                    help="the Redis both versions may cache in (default: a redis-server started for the bench)")
    ap.add_argument("--json", type=Path, default=Path("patterns_load.json"))
    args = ap.parse_args()

    from runbook.demo.change_sets import BASE_BRANCH, CHANGE_SETS, build_branches
    from runbook.demo.seed import seed
    from runbook.demo.workspace import TEMPLATE, init_repo
    from runbook.expectations.smoke import pattern_ids, sample_inputs
    from runbook.pg import drop_database, recreate_database
    from runbook.tasks.code import git_ops
    from runbook.tasks.database import migrate, migration_files
    from runbook.tasks.database.schema_build import load_schema
    from runbook.tasks.target.api_server import ApiServer
    from runbook.tasks.target.redis_server import RedisServer

    tmp = Path(tempfile.mkdtemp(prefix="rb-patterns-load-"))
    repo = tmp / "repo"
    init_repo(TEMPLATE, repo)
    built = build_branches(repo)
    before = args.before or BASE_BRANCH
    shipped = [cs.branch for cs in CHANGE_SETS if cs.branch in built]
    if not (args.after or shipped):
        raise SystemExit("no change set is shipped in demo/change_sets/ yet: name one with --after")
    after = args.after or shipped[-1]
    name = f"rb_load_{uuid.uuid4().hex[:8]}"
    url = recreate_database(args.database_url, name)
    servers = []
    redis = None if args.redis_url else RedisServer(tmp / "redis").start()
    redis_url = args.redis_url or redis.url
    try:
        load_schema(url, TEMPLATE)
        seed(url, args.rows)
        migrate.apply(url, migration_files.load("014"))      # the database Weeks 0-1's code runs on
        warm_inputs = [sample_inputs(url)]
        cold_inputs = portfolios(url, 400)
        result: dict = {"clients": args.clients, "seconds": args.seconds, "rows": args.rows,
                        "before": before, "after": after, "versions": {}}
        for label, ref in (("before", before), ("after", after)):
            checkout = git_ops.worktree(repo, tmp / label, ref)
            # each version its own Redis database: the after version never reads the before's entries
            version_redis = urlsplit(redis_url)._replace(path=f"/{ {'before': 1, 'after': 2}[label]}").geturl()
            server = ApiServer(checkout, url, log_path=tmp / f"api-{label}.log",
                               environment={"REDIS_URL": version_redis})
            servers.append(server)
            server.start()
            patterns = {}
            for pid in pattern_ids(checkout):
                patterns[pid] = {
                    "cold": load(server.base_url, {**server.headers(), **NO_CACHE}, checkout, pid,
                                 cold_inputs, args.clients, args.seconds),
                    "warm": load(server.base_url, server.headers(), checkout, pid, warm_inputs,
                                 args.clients, args.seconds)}
                print(f"{label:6} {pid:32} cold p95 {patterns[pid]['cold'].get('p95_ms')} ms  "
                      f"warm p95 {patterns[pid]['warm'].get('p95_ms')} ms", flush=True)
            result["versions"][label] = patterns
            server.stop()
        result["ratio_p95_after_over_before"] = {
            pid: {mode: round(result["versions"]["after"][pid][mode]["p95_ms"]
                              / result["versions"]["before"][pid][mode]["p95_ms"], 3)
                  for mode in ("cold", "warm")
                  if result["versions"]["after"][pid][mode].get("p95_ms")
                  and result["versions"]["before"][pid][mode].get("p95_ms")}
            for pid in result["versions"]["after"]}
        result["goal_p95_ms"] = GOAL_P95_MS
        result["after_meets_goal"] = {
            pid: all(m.get("p95_ms", float("inf")) < GOAL_P95_MS for m in modes.values())
            for pid, modes in result["versions"]["after"].items()}
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    finally:
        for server in servers:
            server.stop()
        if redis is not None:
            redis.stop()
        drop_database(args.database_url, name)


if __name__ == "__main__":
    sys.exit(main())

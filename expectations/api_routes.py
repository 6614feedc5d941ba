"""Smoke of every API route the target serves besides the patterns, reading and writing.

The routes come from the running API itself (its OpenAPI document), so a route added to the
application is smoked, or fails the gate, without anyone remembering to list it. Reads are
called with the sample portfolio and security. Writes run on data the smoke creates and
removes itself (one lot of 10 shares in the sample portfolio, of a security it holds no other
lot of): each write route needs a scenario here saying what to send and what must follow; a
write route without one fails the gate, named.

The rename cannot break a write path unnoticed: the sell scenario reduces a lot through the
API, and the database must show it under whichever name of the open quantity exists.
"""
from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect

_WRITES = {"post", "put", "patch", "delete"}
_PARAM = re.compile(r"{([^}]+)}")
# routes the pattern smoke covers, or that are the API's own documentation
_COVERED = re.compile(r"^/(health|docs|redoc|openapi\.json)$|/api/patterns/\{[^}]+\}/execute$")


@dataclass
class SmokeLot:
    portfolio_id: str
    security_id: str
    lot_id: str
    own_security: bool        # the smoke created the security (no free one to use)


@dataclass
class RouteRun:
    route: str
    status: str          # "ok" | "error"
    http: int | None
    ms: float
    problem: str = ""


def _open_column(conn) -> str:
    names = {r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'lots'::regclass AND attnum > 0 AND NOT attisdropped")}
    return "qty_open" if "qty_open" in names else "quantity_open"


def create_smoke_lot(database_url: str, portfolio_id: str) -> SmokeLot:
    """One lot of 10 shares in the portfolio, of a security it holds no lot of (so a sale
    touches this lot alone); a security is created only when every one is held."""
    with connect(database_url) as conn:
        col = _open_column(conn)
        orig = col.replace("open", "original")
        row = conn.execute("SELECT s.id::text FROM securities s WHERE NOT EXISTS (SELECT 1 FROM lots l"
                           " WHERE l.portfolio_id = %s AND l.security_id = s.id) ORDER BY s.id LIMIT 1",
                           (portfolio_id,)).fetchone()
        sec = row[0] if row else conn.execute(
            "INSERT INTO securities (symbol, name) VALUES ('RBSMOKE', 'runbook smoke') RETURNING id::text").fetchone()[0]
        lot = conn.execute(
            f"INSERT INTO lots (portfolio_id, security_id, symbol, acquisition_date, quantity, cost_basis,"
            f" cost_basis_per_share, {orig}, {col}) VALUES (%s, %s, 'RBSMOKE', '2025-01-02', 10, 100, 10, 10, 10)"
            " RETURNING id::text", (portfolio_id, sec)).fetchone()[0]
    return SmokeLot(portfolio_id, sec, lot, own_security=row is None)


def smoke_lot_state(database_url: str, lot: SmokeLot) -> tuple:
    """The smoke lot's whole row and its transactions: what a write route touching it changes."""
    with connect(database_url) as conn:
        return conn.execute(
            "SELECT (SELECT md5(to_jsonb(l)::text) FROM lots l WHERE l.id = %(id)s),"
            " (SELECT coalesce(string_agg(md5(to_jsonb(t)::text), ',' ORDER BY t.id::text), '')"
            "    FROM transactions t WHERE t.lot_id = %(id)s)", {"id": lot.lot_id}).fetchone()


def remove_smoke_lot(database_url: str, lot: SmokeLot) -> None:
    with connect(database_url) as conn:
        conn.execute("DELETE FROM transactions WHERE lot_id = %s", (lot.lot_id,))
        conn.execute("DELETE FROM lots WHERE id = %s", (lot.lot_id,))
        if lot.own_security:
            conn.execute("DELETE FROM securities WHERE id = %s", (lot.security_id,))


def _sell(client: httpx.Client, base_url: str, path: str, headers: dict, database_url: str,
          lot: SmokeLot) -> tuple[httpx.Response, str]:
    """Sell 4 of the smoke lot's 10: one fill, 6 left open, in the API's answer and the table."""
    r = client.post(base_url + path, json={"security_id": lot.security_id, "quantity": 4, "price": 12,
                                           "trade_date": "2025-11-03"}, headers=headers)
    if r.status_code != 200:
        return r, ""
    fills = r.json()
    sold = [v for f in fills for k, v in f.items() if k.endswith("_sold")]
    left = [v for f in fills for k, v in f.items() if k.startswith("new_")]
    if sold != [4] or left != [6]:
        return r, f"expected one fill selling 4 and leaving 6, got {fills}"[:200]
    with connect(database_url) as conn:
        col = _open_column(conn)
        now = conn.execute(f"SELECT {col} FROM lots WHERE id = %s", (lot.lot_id,)).fetchone()[0]
        sells = conn.execute("SELECT count(*) FROM transactions WHERE lot_id = %s AND transaction_type = 'SELL'",
                             (lot.lot_id,)).fetchone()[0]
    if now != 6 or sells != 1:
        return r, f"after the sale the table holds {col} = {now} and {sells} SELL rows (expected 6 and 1)"
    return r, ""


def _with_run(client: httpx.Client, base_url: str, path: str, headers: dict, lot: SmokeLot,
              method: str) -> tuple[httpx.Response, str]:
    """A route of one pattern run (/api/runs/{run_id}...): the run is made first, a quick
    pattern named by X-Run-Id, then the route is called (Week 3: runs and their cancellation)."""
    run_id = path.split("/api/runs/", 1)[1].split("/", 1)[0]
    made = client.post(f"{base_url}/api/patterns/portfolio_overview/execute",
                       json={"inputs": {"portfolio_id": lot.portfolio_id}},
                       headers={**headers, "X-Run-Id": run_id})
    if made.status_code != 200:
        return made, ""
    r = client.request(method.upper(), base_url + path, headers=headers)
    if r.status_code < 300 and (r.json() or {}).get("run_id") != run_id:
        return r, f"expected run {run_id}, got {r.text[:120]}"
    return r, ""


def _run_state(client, base_url, path, headers, _database_url, lot):
    return _with_run(client, base_url, path, headers, lot, "get")


def _cancel_run(client, base_url, path, headers, _database_url, lot):
    return _with_run(client, base_url, path, headers, lot, "post")


def _validate_pattern(client, base_url, path, headers, _database_url, _lot):
    """A pattern spec with an unknown capability is reported invalid, naming it (Week 3)."""
    spec = {"id": "runbook_smoke", "steps": [{"id": "one", "capability": "runbook_smoke.none", "args": {}}]}
    r = client.post(base_url + path, json={"spec": spec}, headers=headers)
    if r.status_code != 200:
        return r, ""
    codes = [e.get("code") for e in (r.json() or {}).get("errors", [])]
    return r, "" if codes == ["unknown_capability"] else f"expected one unknown_capability error, got {r.text[:120]}"


# (method, path template) -> the scenario that calls it and checks what follows
WriteScenario = Callable[[httpx.Client, str, str, dict, str, SmokeLot], tuple[httpx.Response, str]]
WRITE_SCENARIOS: dict[tuple[str, str], WriteScenario] = {
    ("post", "/api/portfolios/{portfolio_id}/sell"): _sell,
    ("post", "/api/runs/{run_id}/cancel"): _cancel_run,
    ("post", "/api/patterns/validate"): _validate_pattern,
}
# reads that need something made first
READ_SCENARIOS: dict[tuple[str, str], WriteScenario] = {
    ("get", "/api/runs/{run_id}"): _run_state,
}


def _fill(path: str, values: dict[str, str]) -> tuple[str, list[str]]:
    missing = [p for p in _PARAM.findall(path) if p not in values]
    return _PARAM.sub(lambda m: values.get(m.group(1), m.group(0)), path), missing


@gate("smoke:routes", checks="every API route besides the patterns answers 2xx, writes included "
      "(on data the smoke creates and removes), and a write shows in the table",
      runs_in="every plan day's baseline and final smoke")
def route_smoke(client: httpx.Client, base_url: str, database_url: str, portfolio_id: str,
                headers: dict | None = None) -> tuple[GateResult, list[RouteRun]]:
    headers = headers or {}
    runs: list[RouteRun] = []
    try:
        spec = client.get(f"{base_url}/openapi.json", headers=headers)
        spec.raise_for_status()
        paths = spec.json().get("paths") or {}
    except (httpx.HTTPError, ValueError) as exc:
        paths = {}
        runs.append(RouteRun("GET /openapi.json", "error", None, 0.0, f"the API lists no routes: {type(exc).__name__}"))
    lot = create_smoke_lot(database_url, portfolio_id)
    try:
        values = {"portfolio_id": lot.portfolio_id, "security_id": lot.security_id, "lot_id": lot.lot_id,
                  "run_id": str(uuid.uuid4())}
        for path, methods in sorted(paths.items()):
            if _COVERED.search(path):
                continue
            for method in sorted(m for m in methods if m in _WRITES | {"get"}):
                runs.append(_call(client, base_url, method, path, headers, database_url, lot, values))
    finally:
        remove_smoke_lot(database_url, lot)
    bad = [r for r in runs if r.status != "ok"]
    result = GateResult(
        name="smoke:routes", passed=bool(runs) and not bad,
        expectation="every API route besides the patterns answers, reads and writes, and each write shows in the table",
        observed=f"{len(runs) - len(bad)}/{len(runs)} ok", expected=f"{len(runs)}/{len(runs)} ok" if runs else ">= 1 route",
        sample=[{"route": r.route, "http": r.http, "problem": r.problem[:200]} for r in bad],
        details={"latency_ms": {r.route: round(r.ms, 1) for r in runs}})
    return result, runs


def _call(client: httpx.Client, base_url: str, method: str, path: str, headers: dict, database_url: str,
          lot: SmokeLot, values: dict[str, str]) -> RouteRun:
    name = f"{method.upper()} {path}"
    url_path, missing = _fill(path, values)
    if missing:
        return RouteRun(name, "error", None, 0.0, f"no smoke value for path parameter(s) {', '.join(missing)}")
    scenario = (WRITE_SCENARIOS if method in _WRITES else READ_SCENARIOS).get((method, path))
    if method in _WRITES and scenario is None:
        return RouteRun(name, "error", None, 0.0, "a write route with no smoke scenario (expectations/api_routes.py)")
    start = time.perf_counter()
    try:
        if scenario:
            r, problem = scenario(client, base_url, url_path, headers, database_url, lot)
        else:
            r = client.get(base_url + url_path, headers=headers)
            problem = ""
    except httpx.HTTPError as exc:
        return RouteRun(name, "error", None, (time.perf_counter() - start) * 1000, f"request failed: {type(exc).__name__}")
    ms = (time.perf_counter() - start) * 1000
    if not 200 <= r.status_code < 300:
        return RouteRun(name, "error", r.status_code, ms, r.text[:200])
    return RouteRun(name, "error" if problem else "ok", r.status_code, ms, problem)

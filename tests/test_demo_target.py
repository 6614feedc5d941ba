"""The DawsOS demo target: schema + migrations load on plain PostgreSQL, the seed is
deterministic with exactly 0.5% orphan lots, and the API answers all 13 patterns with
non-blank panels."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from runbook.demo.seed import TABLES, seed, table_checksum
from runbook.expectations.smoke import declared_inputs, panel_columns
from runbook.pg import drop_database, recreate_database
from runbook.tasks.code.frontend_registry import find_registry
from runbook.tasks.database.schema_build import load_schema
from runbook.tasks.target.auth_tokens import bearer, mint
from runbook.tasks.target.upstream import UpstreamStandIn

TEMPLATE = Path(__file__).resolve().parents[1] / "demo" / "template"
BACKEND = TEMPLATE / "backend"
ROWS = 2000
SECRET = "demo-target-test-secret-of-32-bytes-or-more"
SCHEMA_FILES = {p.name for p in (BACKEND / "db" / "schema").glob("*.sql")}
PATTERNS = [
    "buffett_checklist", "corporate_actions_upcoming", "cycle_deleveraging_scenarios",
    "export_portfolio_report", "holding_deep_dive", "macro_cycles_overview",
    "macro_trend_monitor", "news_impact_analysis", "policy_rebalance", "portfolio_cycle_risk",
    "portfolio_macro_overview", "portfolio_overview", "portfolio_scenario_analysis",
]

SMOKE_INPUTS_SQL = """
    SELECT p.id::text, s.id::text, s.symbol
      FROM (SELECT id FROM portfolios ORDER BY id LIMIT 1) p
      JOIN lots l ON l.portfolio_id = p.id AND l.qty_open > 0
      JOIN securities s ON s.id = l.security_id
     ORDER BY s.symbol
     LIMIT 1
"""


def smoke_inputs(url: str) -> dict:
    with psycopg.connect(url) as conn:
        portfolio_id, security_id, symbol = conn.execute(SMOKE_INPUTS_SQL).fetchone()
    return {"portfolio_id": portfolio_id, "security_id": security_id, "symbol": symbol}


def resolve(data, path: str):
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return None
    return cur


def blank_reason(data: dict, panel: dict) -> str | None:
    value = resolve(data, panel["dataPath"])
    if value is None or value == "" or value == [] or value == {}:
        return f"{panel['dataPath']} is missing or empty"
    if panel["type"] == "data_table":
        if not isinstance(value, list) or not isinstance(value[0], dict):
            return f"{panel['dataPath']} is not a list of rows"
        missing = [c["field"] for c in panel_columns(panel) if value[0].get(c["field"]) is None]
        if missing:
            return f"{panel['dataPath']}: first row lacks {missing}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schema_seed_and_determinism(fresh_db, admin_url):
    applied = load_schema(fresh_db, TEMPLATE)
    migrations = [f for f in applied if f[:3].isdigit() and f not in SCHEMA_FILES]
    assert migrations[0].startswith("005_") and "007_add_lot_qty_tracking.sql" in migrations
    numbers = [f[:3] for f in migrations]
    assert numbers.count("009") == 2 and numbers.count("010") == 2      # colliding numbers

    counts = seed(fresh_db, ROWS)
    assert counts["portfolios"] == 5 and counts["users"] == 4
    assert counts["securities"] == 500
    assert counts["lots"] == ROWS
    assert counts["prices"] == 500 * 30
    assert counts["portfolio_metrics"] == 5 * 30
    assert counts["macro_indicators"] == 6 * 60

    with psycopg.connect(fresh_db) as conn:
        q = conn.execute
        orphan_lots = q("SELECT count(*) FROM lots x WHERE NOT EXISTS "
                        "(SELECT 1 FROM securities s WHERE s.id = x.security_id)").fetchone()[0]
        assert orphan_lots == ROWS // 200 and orphan_lots / ROWS == 0.005
        orphan_txns, with_security = q(
            "SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM securities s WHERE s.id = x.security_id)),"
            " count(*) FROM transactions x WHERE security_id IS NOT NULL").fetchone()
        assert 0.004 < orphan_txns / with_security < 0.006
        # closed lots keep quantity > 0; partial lots diverge from qty_original; > 6 decimals
        closed, partial, bad, fine_scale = q(
            "SELECT count(*) FILTER (WHERE qty_open = 0 AND NOT is_open AND closed_date IS NOT NULL),"
            "       count(*) FILTER (WHERE qty_open > 0 AND qty_open < qty_original),"
            "       count(*) FILTER (WHERE qty_open < 0 OR qty_open > qty_original OR quantity <= 0"
            "                         OR (qty_open = 0) <> (closed_date IS NOT NULL)),"
            "       count(*) FILTER (WHERE scale(qty_open) > 6 OR scale(qty_original) > 6) FROM lots").fetchone()
        assert closed == ROWS // 5 and partial == ROWS // 5 and bad == 0 and fine_scale > ROWS // 2
        # SELLs point at their lots (the sells of a linked lot add up), cash flows at transactions
        linked_sells, mismatched = q(
            "SELECT count(*), count(*) FILTER (WHERE s.sold <> l.qty_original - l.qty_open) FROM lots l"
            " JOIN (SELECT lot_id, sum(quantity) AS sold FROM transactions WHERE transaction_type = 'SELL'"
            "       GROUP BY lot_id) s ON s.lot_id = l.id").fetchone()
        assert linked_sells > ROWS // 3 and mismatched == 0
        assert q("SELECT count(*) FROM portfolio_cash_flows c JOIN transactions t ON t.id = c.transaction_id"
                 " WHERE NOT EXISTS (SELECT 1 FROM securities s WHERE s.id = t.security_id)"
                 "   AND t.security_id IS NOT NULL").fetchone()[0] >= 1
        assert q("SELECT count(*) FROM transactions t JOIN lots l ON l.id = t.lot_id"
                 " WHERE NOT EXISTS (SELECT 1 FROM securities s WHERE s.id = l.security_id)").fetchone()[0] >= 1
        # the real schema's facts: no price_date / as_of_date / trade_date; reduce_lot(uuid, numeric, date)
        assert q("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'"
                 " AND column_name IN ('price_date', 'as_of_date', 'trade_date')").fetchone()[0] == 0
        assert q("SELECT to_regprocedure('reduce_lot(uuid, numeric, date)') IS NOT NULL").fetchone()[0]
        first = {t: table_checksum(conn, t) for t in TABLES}

    other = recreate_database(admin_url, f"rbtest_{uuid.uuid4().hex[:10]}")
    try:
        load_schema(other, TEMPLATE)
        assert seed(other, ROWS) == counts
        with psycopg.connect(other) as conn:
            second = {t: table_checksum(conn, t) for t in TABLES}
    finally:
        drop_database(admin_url, other.rsplit("/", 1)[1].split("?")[0])
    assert first == second


def test_api_executes_all_patterns(fresh_db):
    load_schema(fresh_db, TEMPLATE)
    seed(fresh_db, ROWS)
    inputs = smoke_inputs(fresh_db)
    registry = find_registry(TEMPLATE)
    assert registry.path == "frontend/full_ui.html" and sorted(registry.entries) == PATTERNS
    assert sorted(p.stem for p in (BACKEND / "patterns").glob("*.json")) == PATTERNS

    port = free_port()
    upstream = UpstreamStandIn().start()      # the providers the news pattern calls live
    env = dict(os.environ, DATABASE_URL=fresh_db, PYTHONDONTWRITEBYTECODE="1", AUTH_JWT_SECRET=SECRET,
               **upstream.provider_settings())
    auth = bearer(mint(SECRET, "demo-test", "admin"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=BACKEND, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{base}/health", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.poll() is not None else ""
                pytest.fail(f"API did not become healthy: {out[-2000:]}")
            time.sleep(0.2)
        assert {"status": "ok", "database": "ok"}.items() <= r.json().items() and r.json()["commit"]
        assert httpx.get(f"{base}/api/patterns").status_code == 401          # no token
        assert httpx.get(f"{base}/api/patterns", headers=auth).json()["patterns"] == PATTERNS
        assert httpx.post(f"{base}/api/patterns/nope/execute", json={"inputs": inputs},
                          headers=auth).status_code == 404

        with httpx.Client(base_url=base, timeout=60, headers=auth) as client:
            for pattern_id in PATTERNS:
                spec = json.loads((BACKEND / "patterns" / f"{pattern_id}.json").read_text())
                r = client.post(f"/api/patterns/{pattern_id}/execute",
                                json={"inputs": declared_inputs(spec, inputs)})
                assert r.status_code == 200, (pattern_id, r.text[:500])
                body = r.json()
                assert body["pattern_id"] == pattern_id and body["data"]
                assert not [t["step"] for t in body["trace"] if t["skipped"]], pattern_id
                for panel in registry.panels(pattern_id):
                    reason = blank_reason(body["data"], panel)
                    assert reason is None, f"{pattern_id}/{panel['id']}: {reason}"
                if pattern_id == "portfolio_overview":
                    row = body["data"]["valued_positions"]["positions"][0]
                    assert {"symbol", "qty_open", "qty_original", "market_value"} <= set(row)
    finally:
        upstream.stop()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_template_shape():
    files = [p for p in TEMPLATE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    with_old_name = [p for p in files if "qty_open" in p.read_text(errors="ignore")]
    assert 45 <= len(with_old_name) <= 60
    evals = [p for p in files if p.suffix == ".py" and "eval(" in p.read_text()]
    assert [p.name for p in evals] == ["pattern_orchestrator.py"]
    for p in files:
        if p.suffix == ".py":
            compile(p.read_text(), str(p), "exec")
    # the real target's state before Week 1: some patterns list display.panels, none with a
    # dataPath, some under other ids than the frontend's, one only on the backend side
    backend = {p.stem: json.loads(p.read_text()).get("display", {}).get("panels")
               for p in (BACKEND / "patterns").glob("*.json")}
    with_panels = {pid: panels for pid, panels in backend.items() if panels}
    assert 3 <= len(with_panels) < len(PATTERNS)
    assert not [p for panels in with_panels.values() for p in panels if "dataPath" in p]
    registry = find_registry(TEMPLATE)
    frontend_ids = {pid: {p["id"] for p in registry.panels(pid)} for pid in PATTERNS}
    diverging = [(pid, p["id"]) for pid, panels in with_panels.items() for p in panels
                 if p["id"] not in frontend_ids[pid]]
    assert ("portfolio_overview", "holdings") in diverging and len(diverging) >= 4
    assert all(registry.panels(pid) for pid in PATTERNS)
    conditions = sum(1 for p in (BACKEND / "patterns").glob("*.json")
                     if any("condition" in s for s in json.loads(p.read_text())["steps"]))
    assert conditions >= 8

"""Scenario analysis: apply scenario_shocks (a jsonb definition per scenario: description,
category, shocks per factor) through position factor betas."""
from __future__ import annotations

import json

from app.services.common import num, to_uuid
from app.services.risk import factor_betas


async def load_shocks(pool, family: str | None = None) -> dict:
    rows = await pool.fetch(
        """
        SELECT scenario_id::text AS scenario_id, scenario_name, shock_definition
          FROM scenario_shocks
         WHERE ($1::text IS NULL OR shock_definition ->> 'category' = $1::text)
         ORDER BY scenario_name
        """,
        family,
    )
    scenarios: dict = {}
    for r in rows:
        definition = json.loads(r["shock_definition"])
        scenarios[r["scenario_id"]] = {
            "scenario_id": r["scenario_id"], "scenario_name": r["scenario_name"],
            "family": definition["category"],
            "shocks": {f: num(v) for f, v in definition["shocks"].items()}}
    return scenarios


async def run_scenarios(pool, positions: list[dict], family: str | None = None) -> list[dict]:
    scenarios = await load_shocks(pool, family)
    portfolio = positions[0].get("portfolio_id") if positions else None
    betas = await factor_betas(pool, [p["security_id"] for p in positions], portfolio)
    total = sum(p["market_value"] for p in positions)
    results = []
    for s in scenarios.values():
        pnl = 0.0
        for p in positions:
            b = betas.get(to_uuid(p["security_id"]), {})
            move = sum(b.get(f, 0.0) * shock for f, shock in s["shocks"].items())
            pnl += p["market_value"] * move
        results.append({
            "scenario_id": s["scenario_id"],
            "scenario_name": s["scenario_name"],
            "family": s["family"],
            "pnl": num(pnl, 2),
            "pct": num(pnl / total if total else 0.0),
            "shocked_value": num(total + pnl, 2),
        })
    results.sort(key=lambda r: r["pnl"])
    return results

"""Macro hound: indicators, trends, cycle phase and cycle-aware risk."""
from __future__ import annotations

from app.agents.base_agent import BaseAgent
from app.services import alerts, macro, scenarios
from app.services.common import num


class MacroHound(BaseAgent):
    name = "macro_hound"
    capabilities = ("get_indicators", "detect_cycle_phase", "trend_monitor", "macro_alerts",
                    "deleveraging_scenarios", "cycle_risk", "macro_sensitivity")

    async def get_indicators(self, series=None, asof_date=None) -> dict:
        items = await macro.latest_indicators(self.pool, series, asof_date)
        return {"series": items, "count": len(items),
                "asof_date": max((i["asof_date"] for i in items), default=None)}

    async def detect_cycle_phase(self, asof_date=None) -> dict:
        indicators = await macro.latest_indicators(self.pool, None, asof_date)
        phase = macro.cycle_phase(indicators)
        return {**phase, "indicators": indicators}

    async def trend_monitor(self, lookback_weeks: int = 12) -> dict:
        items = await macro.trends(self.pool, lookback_weeks)
        return {"items": items, "count": len(items)}

    async def macro_alerts(self, trends: list[dict]) -> dict:
        items = alerts.evaluate_macro_alerts(trends)
        return {"items": items, "triggered": sum(1 for i in items if i["status"] == "triggered")}

    async def deleveraging_scenarios(self, positions: list[dict], phase: str = "late_cycle") -> dict:
        results = await scenarios.run_scenarios(self.pool, positions, family="deleveraging")
        weight = {"deleveraging": 1.0, "slowdown": 0.6, "late_cycle": 0.35}.get(phase, 0.2)
        for r in results:
            r["probability_weight"] = weight
        return {"phase": phase, "scenarios": results,
                "worst_case": results[0]["scenario_name"] if results else None}

    async def cycle_risk(self, phase: str, exposures: list[dict]) -> dict:
        multipliers = macro.PHASE_FACTOR_MULTIPLIER.get(phase, {})
        items = []
        for e in exposures:
            m = multipliers.get(e["factor"], 1.0)
            items.append({"factor": e["factor"], "exposure": e["exposure"],
                          "phase_multiplier": m, "risk_contribution": num(abs(e["beta"]) * m)})
        score = num(sum(i["risk_contribution"] for i in items), 4)
        return {"phase": phase, "items": items, "risk_score": score}

    async def macro_sensitivity(self, positions: list[dict], indicators: list[dict]) -> dict:
        """Sector weights scaled by how rate / growth sensitive each sector is."""
        sensitivity = {"Utilities": 1.4, "Real Estate": 1.5, "Financials": 1.2, "Technology": 0.9,
                       "Energy": 1.1, "Materials": 1.1, "Industrials": 1.0}
        total = sum(p["market_value"] for p in positions) or 1.0
        sectors: dict[str, float] = {}
        for p in positions:
            sectors[p["sector"]] = sectors.get(p["sector"], 0.0) + p["market_value"] / total
        items = [{"sector": s, "weight": num(w), "sensitivity": num(w * sensitivity.get(s, 1.0))}
                 for s, w in sorted(sectors.items())]
        return {"items": items, "indicator_count": len(indicators)}

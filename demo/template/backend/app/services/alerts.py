"""Alert rules over macro trends and positions."""
from __future__ import annotations

MACRO_RULES = {
    "CPI": ("inflation_rising", lambda t: t["change_pct"] > 0.5),
    "UNRATE": ("unemployment_rising", lambda t: t["change_pct"] > 2.0),
    "T10Y2Y": ("curve_inverted", lambda t: t["latest"] < 0),
    "CREDIT_SPREAD": ("spreads_widening", lambda t: t["change_pct"] > 1.0),
    "DXY": ("dollar_strength", lambda t: t["change_pct"] > 1.0),
    "GDP": ("growth_slowing", lambda t: t["change_pct"] < 0),
}


def evaluate_macro_alerts(trends: list[dict]) -> list[dict]:
    items = []
    for t in trends:
        rule = MACRO_RULES.get(t["series_id"])
        if rule is None:
            continue
        name, check = rule
        triggered = bool(check(t))
        items.append({"series_id": t["series_id"], "rule": name,
                      "status": "triggered" if triggered else "ok",
                      "detail": f"{t['series_id']} {t['direction']} {t['change_pct']:+.2f}%"})
    return items


def position_alerts(positions: list[dict], max_weight: float = 0.05) -> list[dict]:
    return [{"symbol": p["symbol"], "rule": "concentration", "weight": p["weight"],
             "qty_open": p["qty_open"]}
            for p in positions if p["weight"] > max_weight]

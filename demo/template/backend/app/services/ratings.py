"""Quality ratings from price behaviour (fundamentals come from FMP when it is enabled)."""
from __future__ import annotations

import math

from app.services.common import num
from app.services.pricing import daily_returns


def fundamentals_from_prices(symbol: str, points: list[dict]) -> dict:
    closes = [p["close"] for p in points]
    rets = daily_returns(points)
    mean = sum(rets) / len(rets) if rets else 0.0
    var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1) if len(rets) > 1 else 0.0
    peak, drawdown = 0.0, 0.0
    for c in closes:
        peak = max(peak, c)
        drawdown = min(drawdown, c / peak - 1 if peak else 0.0)
    return {
        "symbol": symbol,
        "price_points": len(points),
        "last_close": closes[-1] if closes else 0.0,
        "price_date": points[-1]["price_date"] if points else None,
        "momentum_30d": num(closes[-1] / closes[0] - 1 if closes and closes[0] else 0.0),
        "volatility_30d": num(math.sqrt(var) * math.sqrt(252)),
        "max_drawdown": num(drawdown),
        "avg_volume": int(sum(p["volume"] or 0 for p in points) / len(points)) if points else 0,
    }


CHECKLIST = (
    ("Durable business (low volatility)", "volatility_30d", lambda v: v < 0.35),
    ("Shallow drawdowns", "max_drawdown", lambda v: v > -0.15),
    ("Positive momentum", "momentum_30d", lambda v: v > -0.05),
    ("Liquid market", "avg_volume", lambda v: v > 200_000),
    ("Reasonable price", "last_close", lambda v: v < 400),
)


def buffett_checklist(f: dict) -> dict:
    items = []
    for criterion, key, check in CHECKLIST:
        passed = bool(check(f[key]))
        items.append({"criterion": criterion, "metric": key, "value": f[key],
                      "result": "PASS" if passed else "FAIL"})
    passed = sum(1 for i in items if i["result"] == "PASS")
    score = num(passed / len(items) * 100, 1)
    grade = "A" if passed >= 5 else "B" if passed >= 4 else "C" if passed >= 2 else "D"
    return {"items": items, "score": score, "grade": grade, "passed": passed}

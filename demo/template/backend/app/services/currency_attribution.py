"""Currency attribution: how much of the portfolio's return came from FX moves.

FX moves come from the pricing pack's fallback table until the FX feed is wired in."""
from __future__ import annotations

from app.services.common import num

# 30-day FX move of each currency against USD (fallback pack).
FALLBACK_FX_RETURN = {"USD": 0.0, "CAD": -0.008, "EUR": -0.012, "GBP": 0.006, "JPY": -0.021}


def attribute(positions: list[dict], base_currency: str = "USD") -> list[dict]:
    total = sum(p["market_value"] for p in positions) or 1.0
    base_move = FALLBACK_FX_RETURN.get(base_currency, 0.0)
    buckets: dict[str, float] = {}
    for p in positions:
        buckets[p["currency"]] = buckets.get(p["currency"], 0.0) + p["market_value"]
    rows = []
    for currency, value in sorted(buckets.items()):
        fx = FALLBACK_FX_RETURN.get(currency, 0.0) - base_move
        weight = value / total
        rows.append({"currency": currency, "market_value": num(value, 2), "weight": num(weight),
                     "fx_return": num(fx), "contribution": num(weight * fx)})
    return rows

"""Tax-lot analytics: holding period and unrealized gain of each open lot."""
from __future__ import annotations

from app.services.common import DEFAULT_AS_OF_DATE, num, to_date

LONG_TERM_DAYS = 365


def lot_breakdown(lots: list[dict], price: float, as_of_date=None) -> dict:
    as_of = to_date(as_of_date, DEFAULT_AS_OF_DATE)
    rows = []
    short_gain = long_gain = 0.0
    for lot in lots:
        if lot["qty_open"] <= 0:
            continue
        unit_cost = lot["cost_basis"] / lot["qty_original"] if lot["qty_original"] else 0.0
        acquired = to_date(lot["acquisition_date"])
        holding_days = (as_of - acquired).days
        gain = (price - unit_cost) * lot["qty_open"]
        term = "long" if holding_days > LONG_TERM_DAYS else "short"
        if term == "long":
            long_gain += gain
        else:
            short_gain += gain
        rows.append({
            "lot_id": lot["lot_id"],
            "acquisition_date": acquired,
            "qty_open": num(lot["qty_open"]),
            "qty_original": num(lot["qty_original"]),
            "unit_cost": num(unit_cost, 4),
            "holding_days": holding_days,
            "term": term,
            "unrealized_gain": num(gain, 2),
        })
    return {"lots": rows, "short_term_gain": num(short_gain, 2),
            "long_term_gain": num(long_gain, 2), "as_of_date": as_of}

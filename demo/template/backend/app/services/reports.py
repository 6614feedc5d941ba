"""Portfolio report assembly and CSV export."""
from __future__ import annotations

import csv
import io

from app.services.common import num


def build_report(portfolio: dict, positions: list[dict], metrics: dict) -> dict:
    holdings = [{
        "symbol": p["symbol"],
        "name": p["name"],
        "sector": p["sector"],
        "qty_open": p["qty_open"],
        "qty_original": p["qty_original"],
        "price": p["price"],
        "market_value": p["market_value"],
        "weight": p["weight"],
    } for p in positions]
    totals = {
        "total_qty_open": num(sum(h["qty_open"] for h in holdings)),
        "total_market_value": num(sum(h["market_value"] for h in holdings), 2),
        "position_count": len(holdings),
    }
    return {
        "portfolio": {"id": portfolio["id"], "name": portfolio["name"],
                      "base_currency": portfolio["base_currency"]},
        "as_of_date": metrics.get("as_of_date"),
        "metrics": metrics,
        "holdings": holdings,
        "totals": totals,
    }


def to_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c) for c in columns})
    return buf.getvalue()

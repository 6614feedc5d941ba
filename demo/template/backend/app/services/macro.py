"""Macro indicators (table macro_indicators, keyed by asof_date) and cycle detection."""
from __future__ import annotations

from app.services.common import num, to_date

DEFAULT_SERIES = ("GDP", "CPI", "UNRATE", "T10Y2Y", "DXY", "CREDIT_SPREAD")


async def latest_indicators(pool, series=None, asof_date=None) -> list[dict]:
    series = list(series or DEFAULT_SERIES)
    rows = await pool.fetch(
        """
        SELECT series_id, asof_date, value,
               value - lag(value, 4) OVER w AS change_4w
          FROM macro_indicators
         WHERE series_id = ANY($1::text[])
           AND ($2::date IS NULL OR asof_date <= $2::date)
        WINDOW w AS (PARTITION BY series_id ORDER BY asof_date)
         ORDER BY series_id, asof_date DESC
        """,
        series, to_date(asof_date),
    )
    latest: dict = {}
    for r in rows:
        if r["series_id"] not in latest:
            latest[r["series_id"]] = {"series_id": r["series_id"], "asof_date": r["asof_date"],
                                      "value": num(r["value"]), "change_4w": num(r["change_4w"])}
    return [latest[s] for s in series if s in latest]


async def series_history(pool, series_id: str, weeks: int = 52) -> list[dict]:
    rows = await pool.fetch(
        """
        SELECT asof_date, value FROM macro_indicators
         WHERE series_id = $1 ORDER BY asof_date DESC LIMIT $2
        """,
        series_id, int(weeks),
    )
    return [{"asof_date": r["asof_date"], "value": num(r["value"])} for r in reversed(rows)]


async def trends(pool, lookback_weeks: int = 12) -> list[dict]:
    items = []
    for series_id in DEFAULT_SERIES:
        points = await series_history(pool, series_id, int(lookback_weeks) + 1)
        if len(points) < 2:
            continue
        first, last = points[0]["value"], points[-1]["value"]
        change_pct = (last - first) / abs(first) * 100 if first else 0.0
        items.append({"series_id": series_id, "latest": last, "previous": first,
                      "change_pct": num(change_pct, 4),
                      "direction": "up" if change_pct > 0 else "down" if change_pct < 0 else "flat",
                      "asof_date": points[-1]["asof_date"]})
    return items


def cycle_phase(indicators: list[dict]) -> dict:
    """Very small rules engine: growth, inflation and credit decide the phase."""
    by_id = {i["series_id"]: i for i in indicators}
    score = 0.0
    if by_id.get("GDP", {}).get("change_4w", 0) > 0:
        score += 1
    if by_id.get("CPI", {}).get("change_4w", 0) > 0:
        score += 0.5
    if by_id.get("UNRATE", {}).get("change_4w", 0) > 0:
        score -= 1
    if by_id.get("CREDIT_SPREAD", {}).get("change_4w", 0) > 0:
        score -= 0.5
    if by_id.get("T10Y2Y", {}).get("value", 0) < 0:
        score -= 0.5
    if score >= 1:
        phase = "expansion"
    elif score >= 0:
        phase = "late_cycle"
    elif score >= -1:
        phase = "slowdown"
    else:
        phase = "deleveraging"
    return {"phase": phase, "score": score, "indicator_count": len(indicators)}


PHASE_FACTOR_MULTIPLIER = {
    "expansion": {"market": 0.8, "rates": 1.0, "credit": 0.7, "usd": 0.9},
    "late_cycle": {"market": 1.1, "rates": 1.2, "credit": 1.1, "usd": 1.0},
    "slowdown": {"market": 1.3, "rates": 0.9, "credit": 1.4, "usd": 1.1},
    "deleveraging": {"market": 1.6, "rates": 0.8, "credit": 1.8, "usd": 1.3},
}

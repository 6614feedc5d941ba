"""Macro indicators (table macro_indicators: one row per indicator and date) and cycle
detection."""
from __future__ import annotations

from app.services.common import num, to_date

DEFAULT_SERIES = ("GDP", "CPI", "UNRATE", "T10Y2Y", "DXY", "CREDIT_SPREAD")


async def latest_indicators(pool, series=None, asof_date=None) -> list[dict]:
    series = list(series or DEFAULT_SERIES)
    rows = await pool.fetch(
        """
        SELECT indicator_id AS series_id, date AS asof_date, value,
               value - lag(value, 4) OVER w AS change_4w
          FROM macro_indicators
         WHERE indicator_id = ANY($1::text[])
           AND ($2::date IS NULL OR date <= $2::date)
        WINDOW w AS (PARTITION BY indicator_id ORDER BY date)
         ORDER BY indicator_id, date DESC
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
        SELECT date AS asof_date, value FROM macro_indicators
         WHERE indicator_id = $1 ORDER BY date DESC LIMIT $2
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
    "expansion": {"equity_market": 0.8, "real_rates": 1.0, "credit_spreads": 0.7, "fx_usd": 0.9},
    "late_cycle": {"equity_market": 1.1, "real_rates": 1.2, "credit_spreads": 1.1, "fx_usd": 1.0},
    "slowdown": {"equity_market": 1.3, "real_rates": 0.9, "credit_spreads": 1.4, "fx_usd": 1.1},
    "deleveraging": {"equity_market": 1.6, "real_rates": 0.8, "credit_spreads": 1.8, "fx_usd": 1.3},
}

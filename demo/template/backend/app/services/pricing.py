"""Pricing packs: end-of-day closes, one per security and pack (prices.asof_date is the pack's
day; callers see it as price_date)."""
from __future__ import annotations

from app.services.common import num, to_date, to_uuid


async def latest_pack_date(pool):
    return await pool.fetchval("SELECT max(asof_date) FROM prices")


async def latest_prices(pool, security_ids, as_of_date=None) -> dict:
    """{security_id: {"close": float, "price_date": date}} for the newest close <= as_of_date."""
    ids = [to_uuid(s) for s in security_ids]
    if not ids:
        return {}
    rows = await pool.fetch(
        """
        SELECT DISTINCT ON (security_id) security_id, close, asof_date AS price_date
          FROM prices
         WHERE security_id = ANY($1::uuid[])
           AND ($2::date IS NULL OR asof_date <= $2::date)
         ORDER BY security_id, asof_date DESC
        """,
        ids, to_date(as_of_date),
    )
    return {r["security_id"]: {"close": num(r["close"], 4), "price_date": r["price_date"]} for r in rows}


async def price_history(pool, security_id, days: int = 30) -> list[dict]:
    rows = await pool.fetch(
        """
        SELECT asof_date AS price_date, close, volume
          FROM prices
         WHERE security_id = $1::uuid
         ORDER BY asof_date DESC
         LIMIT $2
        """,
        to_uuid(security_id), int(days),
    )
    return [{"price_date": r["price_date"], "close": num(r["close"], 4), "volume": r["volume"]}
            for r in reversed(rows)]


def daily_returns(points: list[dict]) -> list[float]:
    closes = [p["close"] for p in points if p["close"]]
    return [(b - a) / a for a, b in zip(closes, closes[1:]) if a]

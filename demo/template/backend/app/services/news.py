"""News impact. "News" are the largest daily price moves of the held securities; the Polygon
news feed adds the provider's latest headlines for the largest holdings."""
from __future__ import annotations

from app.services.common import num, to_uuid

MOVES_SQL = """
    WITH moves AS (
        SELECT p.security_id, p.asof_date AS price_date, p.close,
               p.close / NULLIF(lag(p.close) OVER (PARTITION BY p.security_id
                                                    ORDER BY p.asof_date), 0) - 1 AS move
          FROM prices p
         WHERE p.security_id = ANY($1::uuid[])
    )
    SELECT m.security_id, s.symbol, m.price_date, m.close, m.move
      FROM moves m JOIN securities s ON s.id = m.security_id
     WHERE m.move IS NOT NULL
     ORDER BY abs(m.move) DESC, s.symbol, m.price_date
     LIMIT $2
"""


HEADLINE_SYMBOLS = 3     # holdings whose provider headlines a news run fetches
HEADLINES_PER_SYMBOL = 2


def largest_symbols(held: list[dict], n: int = HEADLINE_SYMBOLS) -> list[str]:
    """The symbols of the n largest holdings by open cost (ties by symbol)."""
    ranked = sorted(held, key=lambda h: (-float(h.get("open_cost_basis") or 0), h.get("symbol") or ""))
    return [h["symbol"] for h in ranked[:n] if h.get("symbol")]


async def provider_headlines(client, symbols: list[str]) -> list[dict]:
    out = []
    for symbol in symbols:
        out += await client.news(symbol, HEADLINES_PER_SYMBOL)
    return out


async def price_move_events(pool, security_ids, limit: int = 10) -> list[dict]:
    rows = await pool.fetch(MOVES_SQL, [to_uuid(s) for s in security_ids], int(limit))
    events = []
    for r in rows:
        move = num(r["move"])
        verb = "jumps" if move > 0 else "slides"
        events.append({"security_id": r["security_id"], "symbol": r["symbol"],
                       "price_date": r["price_date"], "move_pct": num(move * 100, 3),
                       "headline": f"{r['symbol']} {verb} {abs(move) * 100:.1f}% on {r['price_date']}",
                       "source": "price_moves"})
    return events


def impact(positions: list[dict], events: list[dict]) -> list[dict]:
    by_symbol = {p["symbol"]: p for p in positions}
    rows = []
    for e in events:
        p = by_symbol.get(e["symbol"])
        if p is None:
            continue
        rows.append({"symbol": e["symbol"], "headline": e["headline"], "qty_open": p["qty_open"],
                     "move_pct": e["move_pct"],
                     "impact_value": num(p["qty_open"] * p["price"] * e["move_pct"] / 100, 2)})
    return rows

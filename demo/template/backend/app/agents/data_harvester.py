"""Data harvester: local market data reads, plus refreshes from the external providers."""
from __future__ import annotations

from app.agents.base_agent import BaseAgent
from app.integrations.fmp_client import FMPClient
from app.integrations.polygon_client import PolygonClient
from app.services import corporate_actions, ledger, news, pricing
from app.services.common import to_date


async def ensure_pricing_pack(conn, price_date) -> str:
    """The day's pricing pack (created, warming, when the first price of that day arrives)."""
    day = to_date(price_date)
    pack = f"PP_{day.isoformat()}"
    await conn.execute(
        """
        INSERT INTO pricing_packs (id, date, hash, sources_json)
        VALUES ($1, $2, $3, '{"FMP": true}'::jsonb)
        ON CONFLICT DO NOTHING
        """,
        pack, day, f"pending:{pack}",
    )
    return pack


async def upsert_price(conn, symbol: str, price_date, close, volume=None) -> int:
    """Insert or refresh one end-of-day close in the day's pack; returns rows written (0 for an
    unknown symbol)."""
    pack = await ensure_pricing_pack(conn, price_date)
    result = await conn.execute(
        """
        INSERT INTO prices (security_id, pricing_pack_id, asof_date, close, volume, currency, source)
        SELECT id, $2, $3::date, $4, $5, trading_currency, 'fmp'
          FROM securities WHERE symbol = $1
        ON CONFLICT (security_id, pricing_pack_id)
        DO UPDATE SET close = EXCLUDED.close, volume = EXCLUDED.volume
        """,
        symbol, pack, to_date(price_date), close, volume,
    )
    return int(result.split()[-1])


class DataHarvester(BaseAgent):
    name = "data_harvester"
    capabilities = ("get_price_history", "get_corporate_actions", "get_news_events",
                    "refresh_prices", "fetch_provider_news")

    async def get_price_history(self, security_id, days: int = 30) -> dict:
        points = await pricing.price_history(self.pool, security_id, days)
        return {"security_id": security_id, "points": points,
                "first_price_date": points[0]["price_date"] if points else None}

    async def get_corporate_actions(self, portfolio_id, days_ahead: int = 120, as_of_date=None) -> dict:
        return await corporate_actions.upcoming(self.pool, portfolio_id, days_ahead, as_of_date)

    async def get_news_events(self, portfolio_id, limit: int = 10) -> dict:
        held = await ledger.holdings(self.pool, portfolio_id)
        items = await news.price_move_events(self.pool, [h["security_id"] for h in held], limit)
        # the provider's headlines for the largest holdings, fetched live from Polygon
        async with PolygonClient() as client:
            headlines = await news.provider_headlines(client, news.largest_symbols(held))
        return {"items": items, "count": len(items), "source": "price_moves", "headlines": headlines}

    async def fetch_provider_news(self, symbol: str, limit: int = 10) -> dict:
        async with PolygonClient() as client:
            return {"items": await client.news(symbol, limit)}

    async def refresh_prices(self, symbols: list[str], price_date: str) -> dict:
        """Pull end-of-day closes from FMP and upsert them (not used by the patterns)."""
        async with FMPClient() as client:
            quotes = await client.eod_prices(symbols, price_date)
        written = 0
        async with self.pool.acquire() as conn:
            for q in quotes:
                written += await upsert_price(conn, q["symbol"], q["price_date"], q["close"], q.get("volume"))
        return {"written": written}

"""Polygon.io client (news and corporate actions)."""
from __future__ import annotations

from app.core.config import POLYGON_API_KEY, POLYGON_BASE_URL
from app.integrations._http import ProviderClient


class PolygonClient(ProviderClient):
    base_url = POLYGON_BASE_URL
    api_key = POLYGON_API_KEY

    async def news(self, symbol: str, limit: int = 10) -> list[dict]:
        data = await self.get_json("/v2/reference/news", {"ticker": symbol, "limit": limit})
        return [{"symbol": symbol, "headline": n.get("title"), "published": n.get("published_utc")}
                for n in data.get("results", [])]

    async def dividends(self, symbol: str) -> list[dict]:
        data = await self.get_json("/v3/reference/dividends", {"ticker": symbol})
        return data.get("results", [])

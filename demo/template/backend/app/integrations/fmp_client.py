"""Financial Modeling Prep client (fundamentals and end-of-day prices)."""
from __future__ import annotations

from app.core.config import FMP_API_KEY, FMP_BASE_URL
from app.integrations._http import ProviderClient


class FMPClient(ProviderClient):
    base_url = FMP_BASE_URL
    api_key = FMP_API_KEY

    async def eod_prices(self, symbols: list[str], price_date: str) -> list[dict]:
        data = await self.get_json("/api/v3/historical-price-full/" + ",".join(symbols),
                                   {"from": price_date, "to": price_date})
        out = []
        for item in data.get("historicalStockList", [data]):
            for h in item.get("historical", []):
                out.append({"symbol": item.get("symbol"), "price_date": h["date"],
                            "close": h["close"], "volume": h.get("volume")})
        return out

    async def key_metrics(self, symbol: str) -> dict:
        data = await self.get_json(f"/api/v3/key-metrics-ttm/{symbol}")
        return data[0] if data else {}

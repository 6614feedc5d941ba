"""FRED client (macro series observations -> macro_indicators.asof_date / value)."""
from __future__ import annotations

from app.core.config import FRED_API_KEY, FRED_BASE_URL
from app.integrations._http import ProviderClient


class FREDClient(ProviderClient):
    base_url = FRED_BASE_URL
    api_key = FRED_API_KEY

    async def observations(self, series_id: str, start: str) -> list[dict]:
        data = await self.get_json("/series/observations",
                                   {"series_id": series_id, "observation_start": start,
                                    "file_type": "json"})
        return [{"series_id": series_id, "asof_date": o["date"], "value": float(o["value"])}
                for o in data.get("observations", []) if o.get("value") not in (None, ".")]

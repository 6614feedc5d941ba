"""Charts agent: time series shaped for the frontend chart panels."""
from __future__ import annotations

from app.agents.base_agent import BaseAgent
from app.services import macro, metrics, pricing


class ChartsAgent(BaseAgent):
    name = "charts_agent"
    capabilities = ("portfolio_history", "macro_chart", "price_chart")

    async def portfolio_history(self, portfolio_id, days: int = 30) -> dict:
        rows = await metrics.metrics_history(self.pool, portfolio_id, days)
        return {"points": [{"x": r["as_of_date"], "y": r["twr"]} for r in rows], "series": "twr"}

    async def macro_chart(self, series_id: str = "CPI", weeks: int = 52) -> dict:
        rows = await macro.series_history(self.pool, series_id, weeks)
        return {"series_id": series_id,
                "points": [{"x": r["asof_date"], "y": r["value"]} for r in rows]}

    async def price_chart(self, security_id, days: int = 30) -> dict:
        rows = await pricing.price_history(self.pool, security_id, days)
        return {"points": [{"x": r["price_date"], "y": r["close"]} for r in rows]}

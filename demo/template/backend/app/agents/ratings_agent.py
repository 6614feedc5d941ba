"""Ratings agent: Buffett-style quality checklist for a holding."""
from __future__ import annotations

from app.agents.base_agent import BaseAgent
from app.services import ledger, pricing, ratings
from app.services.common import num, to_uuid


class RatingsAgent(BaseAgent):
    name = "ratings_agent"
    capabilities = ("get_fundamentals", "buffett_checklist", "position_context")

    async def get_fundamentals(self, security_id, symbol: str | None = None) -> dict:
        points = await pricing.price_history(self.pool, security_id, days=30)
        if not points:
            raise LookupError(f"no prices for security {security_id}")
        return ratings.fundamentals_from_prices(symbol or str(security_id), points)

    async def buffett_checklist(self, fundamentals: dict) -> dict:
        return ratings.buffett_checklist(fundamentals)

    async def position_context(self, portfolio_id, security_id, min_qty_open: float = 0.0) -> dict:
        """How much of the rated security the portfolio still holds."""
        lots = await ledger.lots_for_security(self.pool, portfolio_id, security_id, include_closed=False)
        lots = [lot for lot in lots if lot["qty_open"] > float(min_qty_open or 0)]
        summary = ledger.summarize_lots(lots)
        prices = await pricing.latest_prices(self.pool, [security_id])
        close = prices.get(to_uuid(security_id), {"close": 0.0})["close"]
        return {"qty_open": summary["total_qty_open"],
                "qty_original": summary["total_qty_original"],
                "open_lot_count": summary["open_lot_count"],
                "price": close,
                "market_value": num(summary["total_qty_open"] * close, 2)}

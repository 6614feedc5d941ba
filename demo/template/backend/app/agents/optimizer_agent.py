"""Optimizer agent: policy rebalancing proposals and their lot-level preview."""
from __future__ import annotations

from app.agents.base_agent import BaseAgent
from app.services import rebalancer, trade_execution
from app.services.common import num


class OptimizerAgent(BaseAgent):
    name = "optimizer_agent"
    capabilities = ("propose_rebalance", "preview_trade_impact")

    async def propose_rebalance(self, positions: list[dict], policy: dict | None = None) -> dict:
        return rebalancer.propose(positions, policy)

    async def preview_trade_impact(self, portfolio_id, trades: list[dict], max_trades: int = 5) -> dict:
        """FIFO lot consumption of the largest sells (nothing is written)."""
        lots = []
        for trade in [t for t in trades if t["side"] == "SELL"][:max_trades]:
            preview = await trade_execution.preview_sell(
                self.pool, portfolio_id, trade["security_id"], trade["trade_qty"], trade["price"])
            for fill in preview["fills"]:
                lots.append({"symbol": trade["symbol"], **fill})
        closing = [l for l in lots if l["new_qty_open"] == 0]
        return {"lots": lots, "lot_count": len(lots), "lots_closed": len(closing),
                "realized_gain": num(sum(l["realized_gain"] for l in lots), 2)}

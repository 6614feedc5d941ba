"""Financial analyst agent: holdings valuation, performance, risk and scenarios.

Capabilities (pattern steps call them as "financial_analyst.<name>"):
    get_valued_positions      open positions priced at the latest pack
    compute_portfolio_metrics latest row of portfolio_metrics
    sector_allocation         market value by sector
    get_position_detail       lots of one security in a portfolio
    get_holding_transactions  ledger activity of one security
    tax_lot_breakdown         holding period / unrealized gain per open lot
    factor_exposures          factor betas weighted by market value
    run_scenarios             scenario P&L through factor betas
    compute_var               parametric value at risk
    currency_attribution      FX contribution by currency bucket
    news_impact               exposure to recent price-move events
    build_report              export report payload
    export_csv                CSV rendering of a list of rows
"""
from __future__ import annotations

from app.agents.base_agent import BaseAgent
from app.services import (
    currency_attribution,
    ledger,
    metrics,
    news,
    pricing,
    reports,
    risk,
    scenarios,
    tax_lots,
)
from app.services.common import num


class FinancialAnalyst(BaseAgent):
    name = "financial_analyst"
    capabilities = (
        "get_valued_positions",
        "compute_portfolio_metrics",
        "sector_allocation",
        "get_position_detail",
        "get_holding_transactions",
        "tax_lot_breakdown",
        "factor_exposures",
        "run_scenarios",
        "compute_var",
        "currency_attribution",
        "news_impact",
        "build_report",
        "export_csv",
    )

    # ------------------------------------------------------------ performance
    async def compute_portfolio_metrics(self, portfolio_id, as_of_date=None) -> dict:
        result = await metrics.latest_metrics(self.pool, portfolio_id, as_of_date)
        if not result:
            raise LookupError(f"no metrics for portfolio {portfolio_id}")
        return result

    async def sector_allocation(self, positions: list[dict]) -> dict:
        total = sum(p["market_value"] for p in positions) or 1.0
        sectors: dict[str, float] = {}
        for p in positions:
            key = p["sector"] or "Unclassified"
            sectors[key] = sectors.get(key, 0.0) + p["market_value"]
        rows = [{"sector": s, "market_value": num(v, 2), "weight": num(v / total)}
                for s, v in sorted(sectors.items(), key=lambda kv: -kv[1])]
        return {"sectors": rows, "sector_count": len(rows)}

    # ------------------------------------------------------------- positions
    async def get_position_detail(self, portfolio_id, security_id) -> dict:
        lots = await ledger.lots_for_security(self.pool, portfolio_id, security_id)
        if not lots:
            raise LookupError(f"no lots for security {security_id} in portfolio {portfolio_id}")
        prices = await pricing.latest_prices(self.pool, [security_id])
        quote = next(iter(prices.values()), {"close": 0.0, "price_date": None})
        summary = ledger.summarize_lots(lots)
        symbol = await self.pool.fetchval(
            "SELECT symbol FROM securities WHERE id = $1::uuid", security_id)
        return {
            "security_id": security_id,
            "symbol": symbol,
            "lots": lots,
            "price": quote["close"],
            "price_date": quote["price_date"],
            "market_value": num(summary["total_qty_open"] * quote["close"], 2),
            **summary,
        }

    async def get_holding_transactions(self, portfolio_id, security_id, limit: int = 50) -> dict:
        items = await ledger.transactions(self.pool, portfolio_id, security_id, limit)
        return {"items": items, "count": len(items)}

    async def tax_lot_breakdown(self, lots: list[dict], price: float, as_of_date=None) -> dict:
        return tax_lots.lot_breakdown(lots, price, as_of_date)

    # ------------------------------------------------------------------ risk
    async def factor_exposures(self, portfolio_id, positions: list[dict]) -> dict:
        factors = await risk.factor_exposures(self.pool, positions, portfolio_id)
        return {"portfolio_id": portfolio_id, "factors": factors}

    async def run_scenarios(self, portfolio_id, positions: list[dict], family=None) -> dict:
        results = await scenarios.run_scenarios(self.pool, positions, family)
        return {"portfolio_id": portfolio_id, "scenarios": results,
                "worst_case": results[0] if results else None}

    async def compute_var(self, portfolio_id, positions: list[dict], confidence: float = 0.95) -> dict:
        perf = await metrics.latest_metrics(self.pool, portfolio_id)
        total = sum(p["market_value"] for p in positions)
        vol = perf.get("volatility", 0.0)
        return {
            "confidence": confidence,
            "total_market_value": num(total, 2),
            "volatility": vol,
            "var_1d": risk.value_at_risk(total, vol, confidence),
            "var_10d": risk.value_at_risk(total, vol, confidence, 10),
            "as_of_date": perf.get("as_of_date"),
            "concentration": risk.concentration(positions),
        }

    async def currency_attribution(self, positions: list[dict], base_currency: str = "USD") -> dict:
        items = currency_attribution.attribute(positions, base_currency)
        return {"items": items, "base_currency": base_currency,
                "total_fx_contribution": num(sum(i["contribution"] for i in items))}

    async def news_impact(self, positions: list[dict], events: list[dict]) -> dict:
        items = news.impact(positions, events)
        return {"items": items, "total_impact": num(sum(i["impact_value"] for i in items), 2)}

    # --------------------------------------------------------------- reports
    async def build_report(self, portfolio_id, as_of_date=None) -> dict:
        valued = await self.get_valued_positions(portfolio_id, as_of_date)
        portfolio = await ledger.get_portfolio(self.pool, portfolio_id)
        perf = await metrics.latest_metrics(self.pool, portfolio_id, as_of_date)
        return reports.build_report(portfolio, valued["positions"], perf)

    async def export_csv(self, rows: list[dict], columns: list[str]) -> dict:
        content = reports.to_csv(rows, columns)
        return {"filename": "portfolio_report.csv", "content_type": "text/csv",
                "row_count": len(rows), "columns": columns, "csv": content}

    # ------------------------------------------------------------ valuation
    async def get_valued_positions(self, portfolio_id, as_of_date=None, min_qty_open: float = 0.0) -> dict:
        """Open positions of the portfolio priced at the latest close <= as_of_date.

        Positions whose security is missing from the master (orphan lots) are dropped
        by the join in ledger.HOLDINGS_SQL."""
        portfolio = await ledger.get_portfolio(self.pool, portfolio_id)
        if portfolio is None:
            raise LookupError(f"portfolio {portfolio_id} not found")
        rows = await ledger.holdings(self.pool, portfolio_id)
        prices = await pricing.latest_prices(self.pool, [r["security_id"] for r in rows], as_of_date)
        positions = []
        for row in rows:
            quote = prices.get(row["security_id"], {"close": 0.0, "price_date": None})
            # qty_open is what we still hold; qty_original is kept for the closed share
            qty_open = row["qty_open"]
            if qty_open <= float(min_qty_open or 0):
                continue
            market_value = qty_open * quote["close"]
            positions.append({
                "portfolio_id": portfolio["id"],
                "security_id": row["security_id"],
                "symbol": row["symbol"],
                "name": row["name"],
                "sector": row["sector"],
                "asset_class": row["asset_class"],
                "currency": row["currency"],
                "qty_open": num(qty_open),
                "qty_original": num(row["qty_original"]),
                "closed_fraction": num(1 - qty_open / row["qty_original"] if row["qty_original"] else 0.0),
                "lot_count": row["lot_count"],
                "cost_basis": num(row["open_cost_basis"], 2),
                "price": quote["close"],
                "price_date": quote["price_date"],
                "market_value": num(market_value, 2),
                "unrealized_pnl": num(market_value - row["open_cost_basis"], 2),
            })
        total_value = sum(p["market_value"] for p in positions)
        for p in positions:
            p["weight"] = num(p["market_value"] / total_value if total_value else 0.0)
        return {
            "portfolio_id": portfolio["id"],
            "portfolio_name": portfolio["name"],
            "base_currency": portfolio["base_currency"],
            "positions": positions,
            "position_count": len(positions),
            "total_qty_open": num(sum(p["qty_open"] for p in positions)),
            "total_market_value": num(total_value, 2),
            "price_date": max((p["price_date"] for p in positions if p["price_date"]), default=None),
        }

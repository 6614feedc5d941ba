"""Portfolio performance metrics (table portfolio_metrics, keyed by portfolio, asof_date and
pricing pack): the 1-year figures, as of a date."""
from __future__ import annotations

from app.services.common import num, to_date, to_uuid


async def latest_metrics(pool, portfolio_id, as_of_date=None) -> dict:
    row = await pool.fetchrow(
        """
        SELECT asof_date AS as_of_date, twr_1y AS twr, volatility_1y AS volatility,
               sharpe_1y AS sharpe, max_drawdown_1y AS max_drawdown
          FROM portfolio_metrics
         WHERE portfolio_id = $1::uuid
           AND ($2::date IS NULL OR asof_date <= $2::date)
         ORDER BY asof_date DESC
         LIMIT 1
        """,
        to_uuid(portfolio_id), to_date(as_of_date),
    )
    if row is None:
        return {}
    return {
        "as_of_date": row["as_of_date"],
        "twr": num(row["twr"]),
        "volatility": num(row["volatility"]),
        "sharpe": num(row["sharpe"]),
        "max_drawdown": num(row["max_drawdown"]),
    }


async def metrics_history(pool, portfolio_id, days: int = 30) -> list[dict]:
    rows = await pool.fetch(
        """
        SELECT asof_date AS as_of_date, twr_ytd AS twr, volatility_30d AS volatility
          FROM portfolio_metrics
         WHERE portfolio_id = $1::uuid
         ORDER BY asof_date DESC
         LIMIT $2
        """,
        to_uuid(portfolio_id), int(days),
    )
    return [{"as_of_date": r["as_of_date"], "twr": num(r["twr"]), "volatility": num(r["volatility"])}
            for r in reversed(rows)]

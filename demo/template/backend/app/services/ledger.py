"""Ledger queries: tax lots and transactions.

Lots carry qty_original (quantity at open) and qty_open (still held); a lot is closed when
qty_open = 0 (is_open false, closed_date set). Holdings are always computed from open lots
(the idx_lots_qty_open partial index covers `WHERE qty_open > 0`)."""
from __future__ import annotations

from app.services.common import num, record, to_uuid

HOLDINGS_SQL = """
    SELECT s.id           AS security_id,
           s.symbol,
           s.name,
           initcap(s.security_type) AS sector,
           s.security_type     AS asset_class,
           s.trading_currency  AS currency,
           sum(l.qty_open)     AS qty_open,
           sum(l.qty_original) AS qty_original,
           sum(l.cost_basis * l.qty_open / l.qty_original) AS open_cost_basis,
           count(*)            AS lot_count,
           min(l.created_at)   AS first_qty_opened_at
      FROM lots l
      JOIN securities s ON s.id = l.security_id
     WHERE l.portfolio_id = $1::uuid
       AND l.qty_open > 0
     GROUP BY s.id, s.symbol, s.name, s.security_type, s.trading_currency
     ORDER BY s.symbol
"""


async def get_portfolio(pool, portfolio_id) -> dict | None:
    row = await pool.fetchrow(
        "SELECT id, user_id, name, base_currency, created_at FROM portfolios WHERE id = $1::uuid",
        to_uuid(portfolio_id),
    )
    return dict(row) if row else None


async def holdings(pool, portfolio_id) -> list[dict]:
    """One row per security with open lots (lots whose security is missing are skipped)."""
    rows = await pool.fetch(HOLDINGS_SQL, to_uuid(portfolio_id))
    return [record(r) for r in rows]


async def lots_for_security(pool, portfolio_id, security_id, include_closed: bool = True) -> list[dict]:
    rows = await pool.fetch(
        """
        SELECT id AS lot_id, quantity, qty_original, qty_open, cost_basis,
               acquisition_date, closed_date, is_open, created_at AS qty_opened_at
          FROM lots
         WHERE portfolio_id = $1::uuid AND security_id = $2::uuid
           AND ($3 OR qty_open > 0)
         ORDER BY acquisition_date, id
        """,
        to_uuid(portfolio_id), to_uuid(security_id), include_closed,
    )
    lots = []
    for r in rows:
        lot = record(r)
        lot["status"] = "closed" if lot["qty_open"] == 0 else (
            "partial" if lot["qty_open"] < lot["qty_original"] else "open")
        lots.append(lot)
    return lots


async def transactions(pool, portfolio_id, security_id=None, limit: int = 50) -> list[dict]:
    rows = await pool.fetch(
        """
        SELECT t.id AS transaction_id, t.transaction_type AS type, t.quantity, t.price, t.amount,
               t.transaction_date AS trade_date, t.lot_id, coalesce(s.symbol, t.symbol) AS symbol
          FROM transactions t
          LEFT JOIN securities s ON s.id = t.security_id
         WHERE t.portfolio_id = $1::uuid
           AND ($2::uuid IS NULL OR t.security_id = $2::uuid)
         ORDER BY t.transaction_date DESC, t.id
         LIMIT $3
        """,
        to_uuid(portfolio_id), to_uuid(security_id) if security_id else None, int(limit),
    )
    return [record(r) for r in rows]


def summarize_lots(lots: list[dict]) -> dict:
    total_qty_open = sum(l["qty_open"] for l in lots)
    total_qty_original = sum(l["qty_original"] for l in lots)
    return {
        "total_qty_open": num(total_qty_open),
        "total_qty_original": num(total_qty_original),
        "open_lot_count": sum(1 for l in lots if l["qty_open"] > 0),
        "closed_lot_count": sum(1 for l in lots if l["qty_open"] == 0),
    }

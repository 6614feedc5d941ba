"""Ledger reconciliation: lots vs. the transactions that should explain them."""
from __future__ import annotations

from app.services.common import num, to_uuid

BREAKS_SQL = """
    SELECT l.id AS lot_id, l.qty_original, l.qty_open,
           l.qty_original - l.qty_open AS qty_sold_per_lot,
           coalesce(sum(t.quantity) FILTER (WHERE t.transaction_type = 'SELL'), 0) AS qty_sold_per_ledger
      FROM lots l
      LEFT JOIN transactions t ON t.lot_id = l.id
     WHERE l.portfolio_id = $1::uuid
     GROUP BY l.id, l.qty_original, l.qty_open
    HAVING l.qty_original - l.qty_open
           <> coalesce(sum(t.quantity) FILTER (WHERE t.transaction_type = 'SELL'), 0)
"""

ORPHANS_SQL = """
    SELECT count(*) FROM lots l
     WHERE l.portfolio_id = $1::uuid
       AND NOT EXISTS (SELECT 1 FROM securities s WHERE s.id = l.security_id)
"""


async def lot_breaks(pool, portfolio_id, limit: int = 100) -> list[dict]:
    rows = await pool.fetch(BREAKS_SQL + f" LIMIT {int(limit)}", to_uuid(portfolio_id))
    return [{"lot_id": r["lot_id"], "qty_open": num(r["qty_open"]),
             "qty_original": num(r["qty_original"]),
             "difference": num(r["qty_sold_per_lot"] - r["qty_sold_per_ledger"])} for r in rows]


async def orphan_lot_count(pool, portfolio_id) -> int:
    """Lots whose security_id is not in the security master (no FK yet)."""
    return await pool.fetchval(ORPHANS_SQL, to_uuid(portfolio_id))

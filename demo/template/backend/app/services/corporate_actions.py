"""Corporate actions: projected dividends / splits for held securities, and split booking."""
from __future__ import annotations

import datetime as dt

from app.services.common import DEFAULT_AS_OF_DATE, num, to_date, to_uuid

DIVIDEND_CYCLE_DAYS = 91

UPCOMING_SQL = """
    WITH held AS (
        SELECT security_id, sum(qty_open) AS qty_open
          FROM lots
         WHERE portfolio_id = $1::uuid AND qty_open > 0
         GROUP BY security_id
    ), last_action AS (
        SELECT DISTINCT ON (t.security_id, t.transaction_type)
               t.security_id, t.transaction_type AS type, t.transaction_date AS trade_date,
               t.amount / NULLIF(t.quantity, 0) AS per_share
          FROM transactions t
         WHERE t.portfolio_id = $1::uuid AND t.transaction_type IN ('DIVIDEND', 'SPLIT')
           AND t.transaction_date <= $2::date
         ORDER BY t.security_id, t.transaction_type, t.transaction_date DESC
    )
    SELECT s.symbol, a.security_id, a.type, a.trade_date, a.per_share, h.qty_open
      FROM last_action a
      JOIN held h ON h.security_id = a.security_id
      JOIN securities s ON s.id = a.security_id
     ORDER BY s.symbol, a.type
"""


def next_occurrence(last: dt.date, as_of: dt.date, cycle_days: int) -> dt.date:
    periods = max(1, -(-(as_of - last).days // cycle_days))
    return last + dt.timedelta(days=periods * cycle_days)


async def upcoming(pool, portfolio_id, days_ahead: int = 120, as_of_date=None) -> dict:
    as_of = to_date(as_of_date, DEFAULT_AS_OF_DATE)
    rows = await pool.fetch(UPCOMING_SQL, to_uuid(portfolio_id), as_of)
    actions = []
    for r in rows:
        cycle = DIVIDEND_CYCLE_DAYS if r["type"] == "DIVIDEND" else 365
        ex_date = next_occurrence(r["trade_date"], as_of, cycle)
        if (ex_date - as_of).days > int(days_ahead):
            continue
        qty_open = num(r["qty_open"])
        per_share = num(r["per_share"], 4)
        actions.append({
            "symbol": r["symbol"],
            "security_id": r["security_id"],
            "action_type": r["type"].lower(),
            "ex_date": ex_date,
            "qty_open": qty_open,
            "amount_per_share": per_share,
            "estimated_amount": num(qty_open * per_share, 2) if r["type"] == "DIVIDEND" else 0.0,
        })
    actions.sort(key=lambda a: (a["ex_date"], a["symbol"]))
    return {"actions": actions, "as_of_date": as_of,
            "total_estimated_income": num(sum(a["estimated_amount"] for a in actions), 2)}


async def apply_split(pool, security_id, ratio: float) -> int:
    """Book a split: qty_original and qty_open scale by ratio, the per-share cost by 1/ratio
    (the lot's total cost basis and its legacy `quantity` are unchanged)."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            result = await conn.execute(
                """
                UPDATE lots
                   SET qty_original = qty_original * $2,
                       qty_open = qty_open * $2,
                       cost_basis_per_share = cost_basis_per_share / $2
                 WHERE security_id = $1::uuid AND qty_open > 0
                """,
                to_uuid(security_id), ratio,
            )
    return int(result.split()[-1])

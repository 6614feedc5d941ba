"""Trade execution against tax lots.

Buys open a lot (qty_original = qty_open = quantity). Sells consume open lots in FIFO
(or LIFO / HIFO) order through the database's reduce_lot(): each consumed lot's qty_open is
reduced, and a lot whose qty_open reaches 0 is closed on the trade date. Each SELL records the
lot it reduced (transactions.lot_id). Invariants (also enforced by CHECK constraints from
migration 007): 0 <= qty_open <= qty_original.
"""
from __future__ import annotations

import datetime as dt

from app.services.common import DEFAULT_AS_OF_DATE, num, to_date, to_uuid

LOT_ORDER = {
    "FIFO": "acquisition_date ASC, id",
    "LIFO": "acquisition_date DESC, id",
    "HIFO": "cost_basis / qty_original DESC, id",
}


class LotInvariantError(ValueError):
    pass


def validate_lot(lot: dict) -> None:
    """Raise if a lot dict violates the quantity invariants."""
    if lot["qty_open"] < 0:
        raise LotInvariantError(f"lot {lot.get('lot_id')}: qty_open is negative")
    if lot["qty_open"] > lot["qty_original"]:
        raise LotInvariantError(
            f"lot {lot.get('lot_id')}: qty_open {lot['qty_open']} exceeds "
            f"qty_original {lot['qty_original']}")


async def open_lots_for_sale(conn, portfolio_id, security_id, method: str = "FIFO",
                             for_update: bool = False) -> list[dict]:
    order = LOT_ORDER.get(method.upper(), LOT_ORDER["FIFO"])
    lock = " FOR UPDATE" if for_update else ""
    rows = await conn.fetch(
        f"""
        SELECT id, qty_open AS qty, qty_original, cost_basis, acquisition_date, symbol, currency
          FROM lots
         WHERE portfolio_id = $1::uuid AND security_id = $2::uuid AND qty_open > 0
         ORDER BY {order}{lock}
        """,
        to_uuid(portfolio_id), to_uuid(security_id),
    )
    return [{"lot_id": r["id"], "qty_open": num(r["qty"]), "qty_original": num(r["qty_original"]),
             "cost_basis": num(r["cost_basis"], 4), "acquisition_date": r["acquisition_date"],
             "symbol": r["symbol"], "currency": r["currency"]}
            for r in rows]


def allocate_sale(lots: list[dict], quantity: float, price: float) -> list[dict]:
    """Split a sale of `quantity` across lots (already in consumption order)."""
    remaining = float(quantity)
    fills = []
    for lot in lots:
        if remaining <= 0:
            break
        validate_lot(lot)
        take = min(lot["qty_open"], remaining)
        old_qty_open = lot["qty_open"]
        new_qty_open = num(old_qty_open - take)
        unit_cost = lot["cost_basis"] / lot["qty_original"] if lot["qty_original"] else 0.0
        fills.append({
            "lot_id": lot["lot_id"],
            "qty_sold": num(take),
            "qty_open": num(old_qty_open),
            "new_qty_open": new_qty_open,
            "qty_original": lot["qty_original"],
            "symbol": lot.get("symbol"),
            "currency": lot.get("currency", "USD"),
            "realized_gain": num((price - unit_cost) * take, 2),
            "closes_lot": new_qty_open == 0,
        })
        remaining -= take
    if remaining > 1e-9:
        available = sum(l["qty_open"] for l in lots)
        raise ValueError(f"cannot sell {quantity}: only {available} open")
    return fills


async def preview_sell(pool, portfolio_id, security_id, quantity: float, price: float,
                       method: str = "FIFO") -> dict:
    """What a sale would do to the lots, without writing anything."""
    lots = await open_lots_for_sale(pool, portfolio_id, security_id, method)
    quantity = min(float(quantity), sum(l["qty_open"] for l in lots))
    fills = allocate_sale(lots, quantity, price) if quantity > 0 else []
    return {"fills": fills, "realized_gain": num(sum(f["realized_gain"] for f in fills), 2)}


async def execute_sell(pool, portfolio_id, security_id, quantity: float, price: float,
                       trade_date=None, method: str = "FIFO") -> dict:
    """Sell `quantity`: reduce lots (via reduce_lot) and record one SELL per lot touched."""
    trade_date = to_date(trade_date, dt.date.today())
    async with pool.acquire() as conn:
        async with conn.transaction():
            lots = await open_lots_for_sale(conn, portfolio_id, security_id, method, for_update=True)
            fills = allocate_sale(lots, quantity, price)
            for fill in fills:
                await conn.fetchval("SELECT reduce_lot($1::uuid, $2::numeric, $3::date)",
                                    fill["lot_id"], fill["qty_sold"], trade_date)
                remaining = await conn.fetchval("SELECT qty_open FROM lots WHERE id = $1::uuid",
                                                fill["lot_id"])
                if num(remaining) != fill["new_qty_open"]:
                    raise LotInvariantError(
                        f"lot {fill['lot_id']}: expected qty_open {fill['new_qty_open']}, got {remaining}")
                await conn.execute(
                    """
                    INSERT INTO transactions (portfolio_id, transaction_type, security_id, symbol,
                                              transaction_date, quantity, price, amount, currency,
                                              lot_id)
                    VALUES ($1::uuid, 'SELL', $2::uuid, $3, $4, $5, $6, $7, $8, $9::uuid)
                    """,
                    to_uuid(portfolio_id), to_uuid(security_id), fill["symbol"], trade_date,
                    fill["qty_sold"], price, round(fill["qty_sold"] * price, 4), fill["currency"],
                    fill["lot_id"],
                )
    return {"fills": fills, "realized_gain": num(sum(f["realized_gain"] for f in fills), 2)}


async def execute_buy(pool, portfolio_id, security_id, quantity: float, price: float,
                      trade_date=None) -> dict:
    """Open a new lot: qty_original and qty_open both start at the bought quantity."""
    trade_date = to_date(trade_date, dt.date.today())
    async with pool.acquire() as conn:
        async with conn.transaction():
            security = await conn.fetchrow(
                "SELECT symbol, trading_currency FROM securities WHERE id = $1::uuid",
                to_uuid(security_id))
            if security is None:
                raise ValueError(f"security {security_id} not found")
            lot_id = await conn.fetchval(
                """
                INSERT INTO lots (portfolio_id, security_id, symbol, acquisition_date, quantity,
                                  cost_basis, cost_basis_per_share, currency, qty_original, qty_open)
                VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8, $5, $5)
                RETURNING id
                """,
                to_uuid(portfolio_id), to_uuid(security_id), security["symbol"], trade_date,
                quantity, round(quantity * price, 4), price, security["trading_currency"],
            )
            await conn.execute(
                """
                INSERT INTO transactions (portfolio_id, transaction_type, security_id, symbol,
                                          transaction_date, quantity, price, amount, currency)
                VALUES ($1::uuid, 'BUY', $2::uuid, $3, $4, $5, $6, $7, $8)
                """,
                to_uuid(portfolio_id), to_uuid(security_id), security["symbol"], trade_date,
                quantity, price, -round(quantity * price, 4), security["trading_currency"],
            )
    return {"lot_id": lot_id, "qty_open": num(quantity), "qty_original": num(quantity)}


async def reopen_lot(pool, lot_id, quantity: float) -> dict:
    """Undo part of a sale (trade break): qty_open goes back up, never above qty_original."""
    row = await pool.fetchrow(
        """
        UPDATE lots
           SET qty_open = LEAST(qty_open + $2, qty_original),
               closed_date = NULL,
               is_open = true
         WHERE id = $1::uuid
        RETURNING qty_open, qty_original
        """,
        to_uuid(lot_id), quantity,
    )
    if row is None:
        raise ValueError(f"lot {lot_id} not found")
    return {"lot_id": lot_id, "qty_open": num(row["qty_open"]),
            "qty_original": num(row["qty_original"])}


def as_of_default(as_of_date=None):
    return to_date(as_of_date, DEFAULT_AS_OF_DATE)

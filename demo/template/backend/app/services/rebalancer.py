"""Policy rebalancing: move every position toward its policy target weight."""
from __future__ import annotations

from app.services.common import num


def target_weights(positions: list[dict], policy: dict) -> dict:
    """Equal weight, capped at policy['max_weight'] (default 10%)."""
    if not positions:
        return {}
    cap = float(policy.get("max_weight", 0.10))
    equal = min(cap, 1.0 / len(positions))
    return {p["symbol"]: equal for p in positions}


def propose(positions: list[dict], policy: dict | None = None) -> dict:
    policy = policy or {}
    min_trade_value = float(policy.get("min_trade_value", 100.0))
    total = sum(p["market_value"] for p in positions)
    targets = target_weights(positions, policy)
    trades = []
    for p in positions:
        price = p["price"] or 0.0
        if not price or not total:
            continue
        target_qty = num(targets[p["symbol"]] * total / price, 4)
        trade_qty = num(target_qty - p["qty_open"], 4)
        # never sell more than is open: maxqty_open_sell guards rounding on tiny lots
        maxqty_open_sell = p["qty_open"]
        if trade_qty < 0 and -trade_qty > maxqty_open_sell:
            trade_qty = -maxqty_open_sell
        value = abs(trade_qty) * price
        if value < min_trade_value:
            continue
        trades.append({
            "symbol": p["symbol"],
            "security_id": p["security_id"],
            "side": "BUY" if trade_qty > 0 else "SELL",
            "qty_open": p["qty_open"],
            "target_qty": target_qty,
            "trade_qty": num(abs(trade_qty), 4),
            "price": price,
            "trade_value": num(value, 2),
        })
    trades.sort(key=lambda t: -t["trade_value"])
    turnover = sum(t["trade_value"] for t in trades) / total / 2 if total else 0.0
    return {"trades": trades, "turnover": num(turnover), "trade_count": len(trades)}

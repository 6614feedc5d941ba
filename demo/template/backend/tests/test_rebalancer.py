from app.services import alerts, currency_attribution, rebalancer


def test_rebalance_moves_toward_equal_weight(positions):
    result = rebalancer.propose(positions, {"max_weight": 0.5, "min_trade_value": 1})
    by_symbol = {t["symbol"]: t for t in result["trades"]}
    assert by_symbol["AAA"]["side"] == "SELL"
    assert by_symbol["CCC"]["side"] == "BUY"
    assert by_symbol["AAA"]["trade_qty"] <= by_symbol["AAA"]["qty_open"]


def test_concentration_alert_reports_qty_open(positions):
    found = alerts.position_alerts(positions, max_weight=0.4)
    assert found == [{"symbol": "AAA", "rule": "concentration", "weight": 0.5, "qty_open": 100.0}]


def test_currency_buckets(positions):
    rows = currency_attribution.attribute(positions, "USD")
    assert [r["currency"] for r in rows] == ["EUR", "USD"]

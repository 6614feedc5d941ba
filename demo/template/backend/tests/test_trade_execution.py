import pytest

from app.services import trade_execution as te


def test_fifo_sale_consumes_oldest_lot_first(lots):
    fills = te.allocate_sale(lots, 120, price=20.0)
    assert [f["lot_id"] for f in fills] == ["lot-1", "lot-2"]
    assert fills[0]["new_qty_open"] == 0 and fills[0]["closes_lot"]
    assert fills[1]["qty_open"] == 30.0
    assert fills[1]["new_qty_open"] == 10.0


def test_cannot_sell_more_than_open(lots):
    with pytest.raises(ValueError):
        te.allocate_sale(lots, sum(l["qty_open"] for l in lots) + 1, price=20.0)


def test_invariants(lots, closed_lot):
    for lot in lots + [closed_lot]:
        te.validate_lot(lot)
    broken = dict(lots[0], qty_open=lots[0]["qty_original"] + 1)
    with pytest.raises(te.LotInvariantError):
        te.validate_lot(broken)


def test_realized_gain_uses_qty_original_unit_cost(lots):
    fill = te.allocate_sale(lots[1:2], 10, price=20.0)[0]
    # unit cost = cost_basis / qty_original = 960 / 80 = 12
    assert fill["realized_gain"] == pytest.approx(80.0)

"""Unit-test fixtures (no database needed)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BACKEND))
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def lots():
    """Three lots of one security, FIFO order; the middle one is partly sold."""
    return json.loads((FIXTURES / "lots.json").read_text())


@pytest.fixture
def positions():
    return json.loads((FIXTURES / "positions.json").read_text())


@pytest.fixture
def closed_lot():
    return {"lot_id": "lot-closed", "qty_original": 50.0, "qty_open": 0.0,
            "cost_basis": 500.0, "acquisition_date": "2024-01-02"}

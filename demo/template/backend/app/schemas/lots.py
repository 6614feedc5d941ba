"""Response models of the lots / holdings endpoints."""
from __future__ import annotations

import datetime as dt
from uuid import UUID

from pydantic import BaseModel, Field


class LotOut(BaseModel):
    lot_id: UUID
    quantity: float
    qty_original: float = Field(description="Quantity when the lot was opened")
    qty_open: float = Field(description="Quantity still held")
    cost_basis: float
    acquisition_date: dt.date
    closed_date: dt.date | None = None
    status: str


class HoldingOut(BaseModel):
    security_id: UUID
    symbol: str
    qty_open: float
    qty_original: float
    lot_count: int


class SellRequest(BaseModel):
    security_id: UUID
    quantity: float = Field(gt=0)
    price: float = Field(gt=0)
    trade_date: dt.date | None = None
    method: str = "FIFO"


class FillOut(BaseModel):
    lot_id: UUID
    qty_sold: float
    qty_open: float
    new_qty_open: float
    realized_gain: float

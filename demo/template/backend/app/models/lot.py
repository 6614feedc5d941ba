"""In-memory tax lot used by the trade engine and the reconciliation job."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from uuid import UUID


@dataclass
class Lot:
    id: UUID
    portfolio_id: UUID
    security_id: UUID
    qty_original: float
    qty_open: float
    cost_basis: float
    acquisition_date: dt.date
    closed_date: dt.date | None = None
    qty_opened_at: dt.datetime | None = None     # lots.created_at: when the lot was booked
    tags: list[str] = field(default_factory=list)

    @classmethod
    def from_record(cls, row) -> "Lot":
        return cls(id=row["id"], portfolio_id=row["portfolio_id"], security_id=row["security_id"],
                   qty_original=float(row["qty_original"]), qty_open=float(row["qty_open"]),
                   cost_basis=float(row["cost_basis"]), acquisition_date=row["acquisition_date"],
                   closed_date=row.get("closed_date"), qty_opened_at=row.get("created_at"))

    @property
    def is_closed(self) -> bool:
        return self.qty_open == 0

    @property
    def qty_sold(self) -> float:
        return self.qty_original - self.qty_open

    @property
    def unit_cost(self) -> float:
        return self.cost_basis / self.qty_original if self.qty_original else 0.0

    def reduce(self, qty: float, on: dt.date) -> None:
        if qty > self.qty_open:
            raise ValueError(f"lot {self.id}: cannot reduce {qty}, only {self.qty_open} open")
        self.qty_open -= qty
        if self.qty_open == 0:
            self.closed_date = on

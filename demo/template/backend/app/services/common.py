"""Small helpers shared by the services."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

DEFAULT_AS_OF_DATE = dt.date(2025, 10, 31)


def num(value: Any, digits: int = 6) -> float:
    """Decimal/None -> float (JSON- and condition-friendly)."""
    if value is None:
        return 0.0
    if isinstance(value, Decimal):
        value = float(value)
    return round(float(value), digits)


def to_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def to_date(value: Any, default: dt.date | None = None) -> dt.date | None:
    """Accept a date, an ISO string, or 'latest'/None (-> default)."""
    if value in (None, "", "latest"):
        return default
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def record(row) -> dict:
    """asyncpg Record -> plain dict with floats instead of Decimals."""
    out = {}
    for key, value in dict(row).items():
        out[key] = num(value) if isinstance(value, Decimal) else value
    return out

"""URLs and values at the GX boundary: SQLAlchemy and libpq forms of a database URL, SQL
rendered to text, and result values made JSON-friendly for artifacts and alerts."""
from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from psycopg import sql

from runbook.errors import RunbookError
from runbook.pg import redact


def sqlalchemy_url(url: str) -> str:
    """`postgresql://…` / `postgres://…` → `postgresql+psycopg://…` (query args such as a
    unix-socket `?host=/dir` are kept verbatim)."""
    if "://" not in url:
        raise RunbookError(f"not a postgresql:// URL: {redact(url)}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgresql", "postgres"):
        scheme = "postgresql+psycopg"
    elif scheme.startswith("postgresql+") and scheme != "postgresql+psycopg":
        raise RunbookError(f"unsupported driver {scheme!r} in {redact(url)}: use postgresql://")
    elif not scheme.startswith("postgresql"):
        raise RunbookError(f"not a postgresql:// URL: {redact(url)}")
    return urlunsplit(parts._replace(scheme=scheme))



def libpq_url(url: str) -> str:
    """The plain libpq form of a URL (for psycopg.connect)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("postgresql+"):
        return urlunsplit(parts._replace(scheme="postgresql"))
    return url



def render(query: str | sql.Composable) -> str:
    """SQL text of a query built with psycopg.sql (identifiers quoted by psycopg)."""
    if isinstance(query, sql.Composable):
        return query.as_string(None)
    return str(query)



def jsonable(value: Any) -> Any:
    """A value fit for JSON: Decimal/UUID → str (no precision lost), dates → ISO 8601."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    return str(value)



def one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

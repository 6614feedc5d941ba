"""The price rows a Week 3 probe writes, and only those: a probe day far in the past that no
pricing pack covers, so every `prices`/`pricing_packs` row of that day is the probe's own (the
application may write other days meanwhile; it never writes 1900s closes).

`data_harvester.refresh_prices` (FMP's end-of-day closes, upserted into the day's pack) is the
writing step the probes use: a step that ran leaves rows of the probe day, one that never ran
leaves none, and the stand-in's log shows its FMP call."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from runbook.errors import RunbookError
from runbook.expectations.smoke import sample_inputs
from runbook.pg import connect

REFRESH_CAPABILITY = "data_harvester.refresh_prices"
FMP_PRICES_PATH = "/api/v3/historical-price-full/"   # the stand-in logs FMP's price calls under it


@dataclass(frozen=True)
class ProbeDay:
    day: date
    symbols: tuple[str, ...]
    portfolio_id: str          # the probe patterns' one input (they write nothing of it)

    def refresh_step(self, step_id: str = "refresh") -> dict:
        return {"id": step_id, "capability": REFRESH_CAPABILITY, "as": step_id,
                "args": {"symbols": list(self.symbols), "asof_date": self.day.isoformat()}}


def _rows(conn, day: date) -> dict[str, int]:
    packs = conn.execute("SELECT count(*) FROM pricing_packs WHERE date = %s", (day,)).fetchone()[0]
    prices = conn.execute(
        "SELECT count(*) FROM prices WHERE asof_date = %s"
        " OR pricing_pack_id IN (SELECT id FROM pricing_packs WHERE date = %s)", (day, day)).fetchone()[0]
    return {"pricing_packs": packs, "prices": prices}


def probe_day(database_url: str, symbols: int = 2) -> ProbeDay:
    """A weekday of 1900-1949 with no row in prices or pricing_packs, and `symbols` securities."""
    rng = random.Random()
    with connect(database_url) as conn:
        found = [r[0] for r in conn.execute(
            "SELECT symbol FROM securities WHERE symbol ~ '^[A-Z0-9.]+$' ORDER BY symbol LIMIT %s",
            (symbols,)).fetchall()]
        if not found:
            raise RunbookError("no security with a ticker symbol (letters, digits, dots): the probe has nothing to price")
        for _ in range(50):
            day = date(1900, 1, 1) + timedelta(days=rng.randrange(50 * 365))
            if day.weekday() < 5 and not any(_rows(conn, day).values()):
                return ProbeDay(day, tuple(found), sample_inputs(database_url)["portfolio_id"])
    raise RunbookError("no free probe day found in 1900-1949 (50 tries)")


def rows_of(database_url: str, day: date) -> dict[str, int]:
    """How many rows of the probe day exist (its pricing packs and their prices)."""
    with connect(database_url) as conn:
        return _rows(conn, day)


def remove_rows(database_url: str, day: date) -> None:
    """Delete the probe day's rows (prices first: they reference the pack)."""
    with connect(database_url) as conn:
        conn.execute("DELETE FROM prices WHERE asof_date = %s"
                     " OR pricing_pack_id IN (SELECT id FROM pricing_packs WHERE date = %s)", (day, day))
        conn.execute("DELETE FROM pricing_packs WHERE date = %s", (day,))
        conn.commit()


def price_calls(log: list[dict], since: float) -> list[dict]:
    """The stand-in's FMP price calls that arrived since `since` (epoch seconds)."""
    return [e for e in log if e["provider"] == "fmp" and e["path"].startswith(FMP_PRICES_PATH)
            and e["started"] >= since]

"""Report lots that break the quantity invariants (should print nothing).

    python scripts/check_lot_invariants.py postgresql://...
"""
from __future__ import annotations

import asyncio
import sys

import asyncpg

CHECKS = {
    "negative qty_open": "SELECT count(*) FROM lots WHERE qty_open < 0",
    "qty_open above qty_original": "SELECT count(*) FROM lots WHERE qty_open > qty_original",
    "closed without closed_date": "SELECT count(*) FROM lots WHERE qty_open = 0 AND closed_date IS NULL",
    "open with closed_date": "SELECT count(*) FROM lots WHERE qty_open > 0 AND closed_date IS NOT NULL",
    "is_open disagrees with qty_open": "SELECT count(*) FROM lots WHERE is_open IS DISTINCT FROM (qty_open > 0)",
}


async def main(url: str) -> int:
    conn = await asyncpg.connect(url)
    bad = 0
    try:
        for label, query in CHECKS.items():
            n = await conn.fetchval(query)
            if n:
                bad += 1
                print(f"{label}: {n}")
    finally:
        await conn.close()
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1])))

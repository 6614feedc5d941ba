"""Nightly job: close lots whose qty_open reached 0 without a closed_date, and audit it.

Run: python -m jobs.nightly_close  (DATABASE_URL from the environment)."""
from __future__ import annotations

import asyncio
import json

from app.core import database

SYSTEM_USER = "00000000-0000-0000-0000-000000000000"   # the system administrator

STAMP_SQL = """
    UPDATE lots
       SET closed_date = CURRENT_DATE, is_open = false
     WHERE qty_open = 0 AND closed_date IS NULL
    RETURNING id
"""


async def main() -> int:
    pool = await database.init_pool()
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():
                rows = await conn.fetch(STAMP_SQL)
                await conn.execute(
                    "INSERT INTO audit_log (user_id, action, resource_type, resource_id, details)"
                    " VALUES ($1::uuid, $2, 'lots', 'nightly_close', $3::jsonb)",
                    SYSTEM_USER, "stamp_closed_lots", json.dumps({"lots": len(rows)}),
                )
        print(f"stamped closed_date on {len(rows)} lots with qty_open = 0")
        return 0
    finally:
        await database.close_pool()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

"""asyncpg connection pool shared by the services.

The pool is created with asyncpg's defaults (the refactoring plan, Week 0 Days 3-4,
adds explicit sizing and timeouts here)."""
from __future__ import annotations

import os

import asyncpg

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dawsos")

_pool = None


async def init_pool():
    """Create the global pool (idempotent)."""
    global _pool
    if _pool is None:
        _pool = await asyncpg.create_pool(DATABASE_URL)
    return _pool


def get_pool():
    """The pool created by init_pool(); raises if the app has not started."""
    if _pool is None:
        raise RuntimeError("database pool is not initialised; call init_pool() first")
    return _pool


async def close_pool():
    global _pool
    if _pool is not None:
        await _pool.close()
        _pool = None

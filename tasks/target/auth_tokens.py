"""Bearer tokens for the target API, signed as the target signs them (HS256 JWT with the user
in `sub`, the role in `role`, an expiry in `exp`). The runbook mints its own calls' tokens and
the authorization gate's probe tokens (forged, expired, without rights) from the same secret."""
from __future__ import annotations

import time

import jwt

from runbook.errors import RunbookError

ALGORITHM = "HS256"


def mint(secret: str | None, sub: str, role: str, *, ttl_s: int = 600) -> str:
    if not secret:
        raise RunbookError("no JWT secret for the target API (setting TARGET_JWT_SECRET): "
                           "cannot sign a bearer token")
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "iat": now, "exp": now + ttl_s}, secret,
                      algorithm=ALGORITHM)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

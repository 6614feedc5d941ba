"""Authentication: signed JWT bearer tokens (HS256) checked by a FastAPI dependency.

The signing secret comes from AUTH_JWT_SECRET in the process environment. A token carries the
user (`sub`), the role (`role`) and an expiry (`exp`); a missing, forged or expired token is
answered 401. What a role may do is decided here, on the server (ROLE_RIGHTS), never by the
caller.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import jwt
from fastapi import HTTPException, Request, status

log = logging.getLogger("dawsos.auth")

JWT_ALGORITHM = "HS256"

# rights each role holds; an unknown role holds none
ROLE_RIGHTS: dict[str, frozenset[str]] = {
    "admin": frozenset({"patterns:read", "patterns:execute", "holdings:read", "trades:write"}),
    "analyst": frozenset({"patterns:read", "patterns:execute", "holdings:read"}),
    "viewer": frozenset({"patterns:read", "holdings:read"}),
}


@dataclass(frozen=True)
class Identity:
    user_id: str
    role: str

    @property
    def rights(self) -> frozenset[str]:
        return ROLE_RIGHTS.get(self.role, frozenset())


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


def verify_token(token: str) -> Identity:
    secret = os.environ.get("AUTH_JWT_SECRET", "")
    if not secret:
        # no secret, no verification: refuse everyone rather than trust anyone
        log.error("AUTH_JWT_SECRET is not set: every request is refused")
        raise HTTPException(status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="authentication is not configured")
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM],
                            options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token expired") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("invalid token") from None
    return Identity(user_id=str(claims["sub"]), role=str(claims.get("role") or ""))


async def require_auth(request: Request) -> Identity:
    """FastAPI dependency: the verified caller, or 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("authentication required")
    return verify_token(token.strip())

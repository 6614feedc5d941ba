"""REST endpoints for holdings and lots (the pattern endpoint covers the dashboards)."""
from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException

from app.auth.dependencies import Identity, require_auth
from app.core.database import get_pool
from app.schemas.lots import HoldingOut, LotOut
from app.services import ledger

router = APIRouter(prefix="/api/portfolios", tags=["holdings"])


@router.get("/{portfolio_id}/holdings", response_model=list[HoldingOut])
async def holdings(portfolio_id: UUID, user: Identity = Depends(require_auth)):
    rows = await ledger.holdings(get_pool(), portfolio_id)
    return [HoldingOut(security_id=r["security_id"], symbol=r["symbol"], qty_open=r["qty_open"],
                       qty_original=r["qty_original"], lot_count=r["lot_count"]) for r in rows]


@router.get("/{portfolio_id}/securities/{security_id}/lots", response_model=list[LotOut])
async def lots(portfolio_id: UUID, security_id: UUID, include_closed: bool = True,
               user: Identity = Depends(require_auth)):
    rows = await ledger.lots_for_security(get_pool(), portfolio_id, security_id, include_closed)
    if not rows:
        raise HTTPException(status_code=404, detail="no lots")
    return [LotOut(**r) for r in rows]

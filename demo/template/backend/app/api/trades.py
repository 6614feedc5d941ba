"""Trade endpoints: sell against open lots."""
from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException

from app.auth.dependencies import Identity, require_auth
from app.core.database import get_pool
from app.schemas.lots import FillOut, SellRequest
from app.services import trade_execution

router = APIRouter(prefix="/api/portfolios", tags=["trades"])


@router.post("/{portfolio_id}/sell", response_model=list[FillOut])
async def sell(portfolio_id: UUID, req: SellRequest, user: Identity = Depends(require_auth)):
    try:
        result = await trade_execution.execute_sell(get_pool(), portfolio_id, req.security_id,
                                                    req.quantity, req.price, req.trade_date, req.method)
    except ValueError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return [FillOut(lot_id=f["lot_id"], qty_sold=f["qty_sold"], qty_open=f["qty_open"],
                    new_qty_open=f["new_qty_open"], realized_gain=f["realized_gain"])
            for f in result["fills"]]

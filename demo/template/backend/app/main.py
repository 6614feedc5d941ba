"""DawsOS API.

Run from backend/:  DATABASE_URL=postgresql://... python -m uvicorn app.main:app
"""
from __future__ import annotations

import logging
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.api import holdings, trades
from app.auth.dependencies import Identity, require_auth
from app.core import database
from app.core.pattern_orchestrator import PatternNotFound, PatternOrchestrator, StepFailed

log = logging.getLogger("dawsos.api")


def running_commit() -> str:
    """The commit this process was started on (read once, at start: a checkout that moves
    under a running process does not change what it serves)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@asynccontextmanager
async def lifespan(app: FastAPI):
    try:
        await database.init_pool()
    except Exception as exc:  # the API still starts; /health reports degraded
        log.error("database pool could not be created: %s", exc)
    app.state.orchestrator = PatternOrchestrator()
    app.state.commit = running_commit()
    yield
    await database.close_pool()


app = FastAPI(title="DawsOS", version="0.9.0", lifespan=lifespan)
app.include_router(holdings.router)
app.include_router(trades.router)


def _rights(request: Request) -> list[str]:
    raw = request.headers.get("X-DawsOS-Rights", "")
    return [r.strip() for r in raw.split(",") if r.strip()]


@app.get("/health")
async def health():
    try:
        pool = database.get_pool()
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except Exception as exc:
        return JSONResponse(status_code=503, content={
            "status": "degraded", "database": f"error: {exc}", "commit": app.state.commit})
    return {"status": "ok", "database": "ok", "commit": app.state.commit}


@app.get("/api/patterns")
async def list_patterns(request: Request, user: Identity = Depends(require_auth)):
    return {"patterns": request.app.state.orchestrator.list_patterns()}


@app.post("/api/patterns/{pattern_id}/execute")
async def execute_pattern(pattern_id: str, request: Request, user: Identity = Depends(require_auth)):
    orchestrator: PatternOrchestrator = request.app.state.orchestrator
    try:
        body = await request.json()
    except Exception:
        body = {}
    inputs = (body or {}).get("inputs") or {}
    try:
        result = await orchestrator.run_pattern(pattern_id, inputs, rights=_rights(request))
    except PatternNotFound:
        return JSONResponse(status_code=404,
                            content={"error": "pattern_not_found", "pattern_id": pattern_id})
    except ValueError as exc:
        return JSONResponse(status_code=422, content={"error": "invalid_inputs", "detail": str(exc)})
    except StepFailed as exc:
        log.exception("pattern %s failed", pattern_id)
        return JSONResponse(status_code=500, content={
            "error": "step_failed", "pattern_id": pattern_id, "step": exc.step_id,
            "detail": f"{type(exc.error).__name__}: {exc.error}"})
    return JSONResponse(content=jsonable_encoder(result))

"""A loop that answers every request at once and does nothing else, served by uvicorn like the
target: the async gate's reference for how fast this machine, under the same load at the same
moment, lets an idle event loop answer.
Run as `python -m uvicorn runbook.expectations.week4.reference_loop:app --lifespan off`."""
from __future__ import annotations

BODY = b'{"detail":"Not Found"}'


async def app(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})

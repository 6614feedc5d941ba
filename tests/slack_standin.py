"""A Slack stand-in: a real HTTP server on 127.0.0.1 that records every request.

Serves incoming-webhook posts (any path, answers ``ok``) and the Web API
(``POST /api/chat.postMessage`` answers ``{"ok": true, "ts": ...}``; other ``/api/*`` methods
answer ``{"ok": true}``). Modes:

* ``ok()``                      answer normally (default)
* ``fail(status=500, times=None, retry_after=None)``  answer with an error status (for the
  next `times` requests only, then ok again, if given)
* ``slow(seconds)``             wait before answering normally
* ``down()``                    stop the server: connections are refused

Use the ``slack_standin`` fixture: ``from slack_standin import slack_standin``.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

WEBHOOK_PATH = "/services/T0STANDIN/B0STANDIN/"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    raw: str
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    at: float = 0.0

    @property
    def payload(self) -> dict:
        """The message fields, whichever way they were sent (JSON or form)."""
        if isinstance(self.json, dict):
            return self.json
        data = dict(self.form)
        for key in ("blocks", "attachments"):
            if isinstance(data.get(key), str):
                try:
                    data[key] = json.loads(data[key])
                except ValueError:
                    pass
        return data


class SlackStandIn:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.mode = "ok"
        self.status = 500
        self.fail_times: int | None = None
        self.retry_after: float | None = None
        self.delay = 0.0
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None
        self.running = False

    # ---- lifecycle
    def start(self) -> SlackStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.running = True
        return self

    def stop(self) -> None:
        self._wake.set()                     # release handlers sleeping in slow mode
        if self.running:
            self._server.shutdown()
            self.running = False
        self._server.server_close()
        if self._thread:
            self._thread.join(5)

    # ---- addresses
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def webhook_url(self, secret: str = "standinWebhookSecret0123456789") -> str:
        return f"{self.url}{WEBHOOK_PATH}{secret}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    # ---- modes
    def ok(self) -> None:
        self.mode, self.fail_times, self.retry_after, self.delay = "ok", None, None, 0.0

    def fail(self, status: int = 500, *, times: int | None = None,
             retry_after: float | None = None) -> None:
        self.mode, self.status, self.fail_times, self.retry_after = "fail", status, times, retry_after

    def slow(self, seconds: float) -> None:
        self.mode, self.delay = "slow", seconds

    def down(self) -> None:
        self.mode = "down"
        self.stop()

    # ---- inspection
    def bodies(self) -> str:
        """Every recorded request body, concatenated (for 'never appears' checks)."""
        with self._lock:
            return "\n".join(r.raw for r in self.requests)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _next_failure(self) -> bool:
        """Whether this request should fail (consumes one of `times`)."""
        with self._lock:
            if self.mode != "fail":
                return False
            if self.fail_times is None:
                return True
            if self.fail_times > 0:
                self.fail_times -= 1
                return True
            return False

    def _handler_class(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: str, ctype: str, extra: dict | None = None):
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (extra or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass                     # the client gave up (timeout): fine

            def do_GET(self):
                self._reply(200, "slack stand-in", "text/plain")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                ctype = (self.headers.get("Content-Type") or "").lower()
                parsed_json, form = None, {}
                if "json" in ctype or raw.lstrip().startswith(("{", "[")):
                    try:
                        parsed_json = json.loads(raw)
                    except ValueError:
                        pass
                elif "form" in ctype:
                    form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                path = urlsplit(self.path).path
                standin._record(RecordedRequest("POST", path, dict(self.headers.items()), raw,
                                                parsed_json, form, time.monotonic()))
                is_api = path.startswith("/api/")

                if standin.mode == "slow" and standin.delay > 0:
                    standin._wake.wait(standin.delay)
                if standin._next_failure():
                    status = standin.status
                    extra = {}
                    if standin.retry_after is not None:
                        extra["Retry-After"] = str(standin.retry_after)
                    if is_api:
                        err = "ratelimited" if status == 429 else "internal_error"
                        self._reply(status, json.dumps({"ok": False, "error": err}),
                                    "application/json; charset=utf-8", extra)
                    else:
                        self._reply(status, "rate_limited" if status == 429 else "internal_error",
                                    "text/plain", extra)
                    return
                if is_api:
                    body: dict[str, Any] = {"ok": True}
                    if path.rstrip("/").endswith("chat.postMessage"):
                        payload = parsed_json if isinstance(parsed_json, dict) else form
                        body.update({"channel": payload.get("channel"),
                                     "ts": f"{time.time():.6f}",
                                     "message": {"text": payload.get("text")}})
                    self._reply(200, json.dumps(body), "application/json; charset=utf-8")
                else:
                    self._reply(200, "ok", "text/html")

        return Handler


@pytest.fixture
def slack_standin():
    server = SlackStandIn().start()
    try:
        yield server
    finally:
        server.stop()

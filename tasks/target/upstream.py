"""A stand-in for the market-data providers DawsOS calls (FMP, Polygon, FRED), that the gates
can break on purpose.

One real HTTP server on 127.0.0.1: `/fmp/...`, `/polygon/...`, `/fred/...` answer like the
providers (deterministic data, enough for the demo's clients), and `/_control` sets faults per
provider and reads the request log:

    POST   /_control/{provider}   {"latency_ms": 300, "status": 429, "retry_after_s": 1, "down": false}
    DELETE /_control/{provider}   back to healthy
    GET    /_control/log          [{"provider", "path", "status", "started", "at"}, ...]
                                  (epoch seconds: arrival, and answer or the client's hang-up)
    DELETE /_control/log          empty the log
    GET    /_control/inflight     {"fmp": 0, "polygon": 2, "fred": 0}: requests not yet answered
                                  whose client is still waiting

`down` drops the connection without an answer (what a dead provider looks like to a client);
`status` answers every request with that status (429 carries `Retry-After`). While a slowed
request waits, a client that hangs up (its timeout, a cancelled run) ends it at once: it is
logged with status "client-closed" and no longer counts as in flight. Against a real
staging, the staging API's provider base URLs point at this server while the gates run
(`runbook upstream --port 8765`).
"""
from __future__ import annotations

import hashlib
import json
import select
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PROVIDERS = ("fmp", "polygon", "fred")
# the target's settings that name each provider's base URL
BASE_URL_SETTINGS = {"fmp": "FMP_BASE_URL", "polygon": "POLYGON_BASE_URL", "fred": "FRED_BASE_URL"}


@dataclass
class Fault:
    latency_ms: int = 0
    status: int | None = None          # answer every request with this status
    retry_after_s: float | None = None  # with status 429
    down: bool = False                 # drop the connection, answer nothing

    @classmethod
    def parse(cls, body: dict) -> Fault:
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        fault = cls(**body)
        if fault.latency_ms < 0 or fault.latency_ms > 120_000:
            raise ValueError("latency_ms must be between 0 and 120000")
        if fault.status is not None and not 100 <= int(fault.status) <= 599:
            raise ValueError("status must be an HTTP status code")
        return fault


def _number(*parts: str) -> float:
    """A deterministic number in [0, 1) from the parts (same request, same answer)."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:6], "big") / 2 ** 48


def _days(start: str, end: str) -> list[str]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    if (last - first).days > 366:
        raise ValueError("at most a year of data per request")
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)
            if (first + timedelta(days=i)).weekday() < 5]


def fmp(path: str, query: dict[str, str]) -> object:
    if path.startswith("/api/v3/historical-price-full/"):
        symbols = path.rsplit("/", 1)[1].split(",")
        days = _days(query.get("from", "2025-01-02"), query.get("to", query.get("from", "2025-01-02")))
        stocks = [{"symbol": s, "historical": [
            {"date": d, "close": round(50 + 150 * _number("close", s, d), 4),
             "volume": int(1e6 * (1 + _number("volume", s, d)))} for d in days]} for s in symbols]
        return {"historicalStockList": stocks} if len(stocks) > 1 else stocks[0]
    if path.startswith("/api/v3/key-metrics-ttm/"):
        symbol = path.rsplit("/", 1)[1]
        return [{"symbol": symbol, "peRatioTTM": round(5 + 40 * _number("pe", symbol), 2),
                 "roeTTM": round(0.3 * _number("roe", symbol), 4)}]
    raise LookupError(path)


def polygon(path: str, query: dict[str, str]) -> object:
    ticker = query.get("ticker", "")
    if path == "/v2/reference/news":
        limit = min(int(query.get("limit", "10")), 50)
        return {"results": [{"title": f"{ticker} headline {i}", "published_utc": f"2025-10-{i + 1:02d}T12:00:00Z"}
                            for i in range(limit)]}
    if path == "/v3/reference/dividends":
        return {"results": [{"ticker": ticker, "cash_amount": round(_number("div", ticker), 4),
                             "ex_dividend_date": "2025-12-01", "pay_date": "2025-12-15"}]}
    raise LookupError(path)


def fred(path: str, query: dict[str, str]) -> object:
    if path == "/series/observations":
        series = query.get("series_id", "")
        days = _days(query.get("observation_start", "2025-01-02"), query.get("observation_end", "2025-01-31"))
        return {"observations": [{"date": d, "value": f"{100 * _number(series, d):.3f}"} for d in days]}
    raise LookupError(path)


ANSWER = {"fmp": fmp, "polygon": polygon, "fred": fred}


class _Handler(BaseHTTPRequestHandler):
    server: _StandInServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:   # the request log is ours, not stderr
        pass

    def _reply(self, status: int, body: object, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_control/log":
            return self._reply(200, self.server.log_entries())
        if url.path == "/_control/inflight":
            return self._reply(200, self.server.inflight_counts())
        if url.path == "/_control":
            return self._reply(200, {p: asdict(f) for p, f in self.server.faults.items()})
        provider, _, rest = url.path.lstrip("/").partition("/")
        if provider not in ANSWER:
            return self._reply(404, {"error": f"no provider {provider!r}; one of {', '.join(PROVIDERS)}"})
        self._provider(provider, "/" + rest, {k: v[-1] for k, v in parse_qs(url.query).items()})

    def _client_gone(self) -> bool:
        """The client closed its end (readable with nothing to read)."""
        try:
            ready, _, _ = select.select([self.connection], [], [], 0)
            return bool(ready) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _wait(self, seconds: float) -> bool:
        """Sleep the fault's latency; False as soon as the client hangs up."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._client_gone():
                return False
            time.sleep(min(0.02, left))
        return True

    def _provider(self, provider: str, path: str, query: dict[str, str]) -> None:
        started = self.server.arrived(provider)
        try:
            self._answer(provider, path, query, started)
        finally:
            self.server.left(provider)

    def _answer(self, provider: str, path: str, query: dict[str, str], started: float) -> None:
        fault = self.server.faults[provider]
        if fault.latency_ms and not self._wait(fault.latency_ms / 1000):
            self.server.record(provider, path, "client-closed", started)
            self.close_connection = True
            return
        if fault.down:
            self.server.record(provider, path, None, started)
            self.close_connection = True        # no answer at all
            return
        if fault.status:
            self.server.record(provider, path, fault.status, started)
            headers = {"Retry-After": f"{fault.retry_after_s:g}"} if fault.retry_after_s is not None else {}
            return self._reply(fault.status, {"error": f"stand-in fault: HTTP {fault.status}"}, headers)
        try:
            body, status = ANSWER[provider](path, query), 200
        except LookupError:
            body, status = {"error": f"unknown {provider} endpoint {path}"}, 404
        except ValueError as exc:
            body, status = {"error": str(exc)}, 400
        self.server.record(provider, path, status, started)
        self._reply(status, body)

    def do_POST(self) -> None:
        provider = urlsplit(self.path).path.removeprefix("/_control/")
        if provider not in self.server.faults:
            return self._reply(404, {"error": f"no provider {provider!r}; one of {', '.join(PROVIDERS)}"})
        try:
            self.server.faults[provider] = Fault.parse(self._body())
        except (ValueError, TypeError) as exc:
            return self._reply(400, {"error": str(exc)})
        self._reply(200, asdict(self.server.faults[provider]))

    def do_DELETE(self) -> None:
        what = urlsplit(self.path).path.removeprefix("/_control/")
        if what == "log":
            self.server.clear_log()
            return self._reply(200, {"cleared": True})
        if what not in self.server.faults:
            return self._reply(404, {"error": f"no provider {what!r}"})
        self.server.faults[what] = Fault()
        self._reply(200, asdict(self.server.faults[what]))


class _StandInServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address):
        super().__init__(address, _Handler)
        self.faults: dict[str, Fault] = {p: Fault() for p in PROVIDERS}
        self._log: list[dict] = []
        self._inflight: dict[str, int] = {p: 0 for p in PROVIDERS}
        self._lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        # a client that gave up (its timeout) before a slowed answer: expected here, not an error
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    def arrived(self, provider: str) -> float:
        with self._lock:
            self._inflight[provider] += 1
        return time.time()

    def left(self, provider: str) -> None:
        with self._lock:
            self._inflight[provider] -= 1

    def inflight_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._inflight)

    def record(self, provider: str, path: str, status: int | str | None, started: float) -> None:
        with self._lock:
            self._log.append({"provider": provider, "path": path, "status": status,
                              "started": started, "at": time.time()})

    def log_entries(self) -> list[dict]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()


class UpstreamStandIn:
    """The stand-in, served from a background thread of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._server = _StandInServer((host, port))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def provider_settings(self) -> dict[str, str]:
        """The target's environment that points its provider clients here."""
        return {setting: f"{self.base_url}/{p}" for p, setting in BASE_URL_SETTINGS.items()}

    def start(self) -> UpstreamStandIn:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="upstream-stand-in",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread = None

    def __enter__(self) -> UpstreamStandIn:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


class UpstreamControl:
    """The stand-in's control API, from the gates (in this process or against a staging's)."""

    def __init__(self, base_url: str):
        import httpx

        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=10)

    def set_fault(self, provider: str, **fault) -> dict:
        r = self._http.post(f"/_control/{provider}", json=fault)
        if r.status_code != 200:
            raise ValueError(f"stand-in refused the fault for {provider}: {r.json().get('error')}")
        return r.json()

    def heal(self, provider: str | None = None) -> None:
        for p in [provider] if provider else PROVIDERS:
            self._http.delete(f"/_control/{p}").raise_for_status()

    def log(self, provider: str | None = None) -> list[dict]:
        entries = self._http.get("/_control/log").raise_for_status().json()
        return [e for e in entries if provider is None or e["provider"] == provider]

    def clear_log(self) -> None:
        self._http.delete("/_control/log").raise_for_status()

    def inflight(self) -> dict[str, int]:
        return self._http.get("/_control/inflight").raise_for_status().json()

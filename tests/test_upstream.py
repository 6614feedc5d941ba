"""The market-data stand-in: answers like the providers, and breaks on purpose through its
control API (latency, forced status with Retry-After, down), logging every request."""
from __future__ import annotations

import httpx
import pytest

from runbook.tasks.target.upstream import UpstreamControl, UpstreamStandIn


@pytest.fixture
def standin():
    with UpstreamStandIn() as server:
        yield server, UpstreamControl(server.base_url)


def test_answers_like_the_providers_and_logs(standin):
    server, control = standin
    urls = server.provider_settings()
    prices = httpx.get(urls["FMP_BASE_URL"] + "/api/v3/historical-price-full/AAPL",
                       params={"from": "2025-10-06", "to": "2025-10-10"}).json()
    assert prices["symbol"] == "AAPL" and len(prices["historical"]) == 5
    again = httpx.get(urls["FMP_BASE_URL"] + "/api/v3/historical-price-full/AAPL",
                      params={"from": "2025-10-06", "to": "2025-10-10"}).json()
    assert again == prices                                   # deterministic
    news = httpx.get(urls["POLYGON_BASE_URL"] + "/v2/reference/news", params={"ticker": "MSFT", "limit": 3})
    assert len(news.json()["results"]) == 3
    obs = httpx.get(urls["FRED_BASE_URL"] + "/series/observations",
                    params={"series_id": "T10Y2Y", "observation_start": "2025-01-06",
                            "observation_end": "2025-01-10"}).json()
    assert len(obs["observations"]) == 5
    assert [(e["provider"], e["status"]) for e in control.log()] == [
        ("fmp", 200), ("fmp", 200), ("polygon", 200), ("fred", 200)]


def test_faults_per_provider(standin):
    server, control = standin
    urls = server.provider_settings()
    control.set_fault("polygon", status=429, retry_after_s=2)
    r = httpx.get(urls["POLYGON_BASE_URL"] + "/v2/reference/news", params={"ticker": "X"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert httpx.get(urls["FRED_BASE_URL"] + "/series/observations",
                     params={"series_id": "A"}).status_code == 200     # the others are unaffected
    control.set_fault("fmp", down=True)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(urls["FMP_BASE_URL"] + "/api/v3/key-metrics-ttm/AAPL")
    control.set_fault("fred", latency_ms=1500)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(urls["FRED_BASE_URL"] + "/series/observations", params={"series_id": "A"}, timeout=0.3)
    control.heal()
    assert httpx.get(urls["FMP_BASE_URL"] + "/api/v3/key-metrics-ttm/AAPL").status_code == 200
    statuses = [(e["provider"], e["status"]) for e in control.log()]
    assert ("polygon", 429) in statuses and ("fmp", None) in statuses and statuses[-1] == ("fmp", 200)


def test_bad_fault_is_refused_by_name(standin):
    _server, control = standin
    with pytest.raises(ValueError, match="unknown fault field.*latency"):
        control.set_fault("fmp", latency=5)
    with pytest.raises(ValueError, match="no provider 'nyse'"):
        control.set_fault("nyse", down=True)


def test_a_client_that_hangs_up_ends_its_slowed_request_at_once(standin):
    """What the cancellation gate reads: in flight while the client waits, gone (logged
    client-closed) as soon as it hangs up, long before the fault's latency is over."""
    import threading
    import time

    server, control = standin
    urls = server.provider_settings()
    control.set_fault("polygon", latency_ms=20_000)
    errors = []

    def call():
        try:
            httpx.get(urls["POLYGON_BASE_URL"] + "/v2/reference/news", params={"ticker": "X"}, timeout=0.5)
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.25)
    assert control.inflight()["polygon"] == 1
    caller.join()
    deadline = time.monotonic() + 2
    while control.inflight()["polygon"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert control.inflight() == {"fmp": 0, "polygon": 0, "fred": 0} and errors == ["ReadTimeout"]
    [entry] = control.log("polygon")
    assert entry["status"] == "client-closed" and entry["at"] - entry["started"] < 2

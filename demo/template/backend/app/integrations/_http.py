from __future__ import annotations

import httpx


class ProviderClient:
    base_url = ""
    api_key = ""
    timeout = 10.0

    def __init__(self, base_url: str | None = None, api_key: str | None = None):
        self.base_url = (base_url or self.base_url).rstrip("/")
        self.api_key = api_key or self.api_key
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self):
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
        return self

    async def __aexit__(self, *exc):
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get_json(self, path: str, params: dict | None = None):
        params = dict(params or {})
        params.setdefault("apikey", self.api_key)
        resp = await self._client.get(path, params=params)
        resp.raise_for_status()
        return resp.json()

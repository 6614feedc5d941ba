"""The target's /metrics (Prometheus text exposition), read with prometheus_client's own parser."""
from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

METRICS_ROUTE = "/metrics"


class Scrape:
    """One reading of /metrics: `samples[(sample name, frozenset(labels))] = value`; `error`
    names why there is none (HTTP status, unparsable text)."""

    def __init__(self, client: httpx.Client, base_url: str, headers: dict):
        self.samples: dict[tuple[str, frozenset], float] = {}
        self.types: dict[str, str] = {}
        self.error = ""
        try:
            r = client.get(base_url + METRICS_ROUTE, headers=headers)
        except httpx.HTTPError as exc:
            self.error = f"GET {METRICS_ROUTE} failed: {type(exc).__name__}"
            return
        if r.status_code != 200:
            self.error = f"GET {METRICS_ROUTE} answered HTTP {r.status_code}"
            return
        try:
            for family in text_string_to_metric_families(r.text):
                self.types[family.name] = family.type
                for s in family.samples:
                    self.samples[(s.name, frozenset(s.labels.items()))] = s.value
        except ValueError as exc:
            self.error = f"GET {METRICS_ROUTE}: not the Prometheus text format ({exc})"[:200]

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(ls).get(label) for (n, ls), _v in self.samples.items() if n == name} - {None}


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.total(name, **labels) - before.total(name, **labels)

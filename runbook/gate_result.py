"""The structured result every gate returns: kept as a Prefect artifact, sent in alerts,
raised (as GateFailed) to fail a step."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from runbook.errors import GateFailed


@dataclass
class GateResult:
    name: str                      # e.g. "parity:lots"
    passed: bool
    expectation: str               # what must hold, in words
    observed: Any = None           # what was seen (count, list, value)
    expected: Any = None           # what should have been seen
    sample: list[dict] = field(default_factory=list)   # a few offending rows
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return f"{self.expectation}: observed {self.observed!r}, expected {self.expected!r}"

    def raise_if_failed(self) -> GateResult:
        if not self.passed:
            raise GateFailed(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    def to_markdown(self) -> str:
        mark = "✅" if self.passed else "❌"
        lines = [f"### {mark} {self.name}", "", f"**Expectation:** {self.expectation}",
                 f"**Observed:** `{self.observed}`  **Expected:** `{self.expected}`"]
        if self.sample:
            cols = list(self.sample[0].keys())
            lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(str(r.get(c)) for c in cols) + " |" for r in self.sample[:10]]
        return "\n".join(lines)

"""Base class of the agents: a named set of async capabilities."""
from __future__ import annotations

from app.core.database import get_pool


class BaseAgent:
    name = "base"
    capabilities: tuple[str, ...] = ()

    @property
    def pool(self):
        return get_pool()

    def get_capabilities(self) -> list[str]:
        return [f"{self.name}.{c}" for c in self.capabilities]

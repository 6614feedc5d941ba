"""Agent registry: resolves "agent.method" capabilities used by the pattern steps."""
from __future__ import annotations

import inspect
import logging

log = logging.getLogger("dawsos.agents")


class CapabilityNotFound(LookupError):
    pass


class AgentRegistry:
    def __init__(self):
        self.agents: dict = {}

    def register(self, agent) -> None:
        self.agents[agent.name] = agent

    def resolve(self, capability: str):
        agent_name, _, method = capability.partition(".")
        agent = self.agents.get(agent_name)
        if agent is None or method not in agent.capabilities:
            raise CapabilityNotFound(f"unknown capability {capability!r}")
        return getattr(agent, method)

    def list_capabilities(self) -> list[str]:
        return sorted(c for a in self.agents.values() for c in a.get_capabilities())

    async def call(self, capability: str, args: dict, context: dict | None = None):
        fn = self.resolve(capability)
        log.debug("%s(%s) rights=%s", capability, sorted(args), (context or {}).get("rights"))
        result = fn(**args)
        if inspect.isawaitable(result):
            result = await result
        return result


def default_registry() -> AgentRegistry:
    from app.agents.charts_agent import ChartsAgent
    from app.agents.claude_agent import ClaudeAgent
    from app.agents.data_harvester import DataHarvester
    from app.agents.financial_analyst import FinancialAnalyst
    from app.agents.macro_hound import MacroHound
    from app.agents.optimizer_agent import OptimizerAgent
    from app.agents.ratings_agent import RatingsAgent

    registry = AgentRegistry()
    for agent in (FinancialAnalyst(), MacroHound(), RatingsAgent(), OptimizerAgent(),
                  ChartsAgent(), DataHarvester(), ClaudeAgent()):
        registry.register(agent)
    return registry

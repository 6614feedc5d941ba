"""Week 4, Days 3-4 of the plan: Performance Optimisation, carried by the team's change set.

Task 8.1  no N+1 queries: statements per run independent of the portfolio's size
Task 8.2  pattern results cached in Redis per user, for the pattern's TTL
Task 8.3  monitoring: Prometheus metrics, slow queries logged
Task 8.4  async execution: /health stays fast while patterns run
and the plan's rollback trigger: no pattern's p95 latency more than 20% worse.

Same shape as Week 3's days; any failing gate reverts the merge and alerts.
"""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.week4.day3_4 import (
    async_check,
    cache_check,
    monitoring_check,
    n_plus_one_check,
    no_regression_check,
)
from runbook.plan import WEEK4_DAY3_4
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import change_set_step
from runbook.tasks.steps.core import Step, gate_step
from runbook.tasks.steps.day import smoke_step
from runbook.tasks.steps.day_flow import plan_day_flow


def steps(ctx: RunContext) -> list[Step]:
    return [
        approval_step("performance optimisation (batch loading, Redis cache, metrics, async execution)"),
        change_set_step("code:change-set", "Week 4 Days 3-4: performance optimisation"),
        gate_step("gate:n-plus-one", n_plus_one_check),
        gate_step("gate:cache", cache_check),
        gate_step("gate:monitoring", monitoring_check),
        gate_step("gate:async", async_check),
        gate_step("gate:no-regression", no_regression_check),
        smoke_step("smoke"),
    ]


performance_optimisation = plan_day_flow(
    WEEK4_DAY3_4, steps,
    description="Week 4, Days 3-4: Performance optimisation from the team's change set (change_ref): "
                "statements per run independent of portfolio size, per-user Redis cache with the "
                "pattern's TTL, Prometheus metrics and slow-query logs, /health fast under load, "
                "p95 latency within 20% of the code before.")

"""Week 3, Days 3-4 of the plan: Data Integrity Fixes, carried by the team's change set.

Task 6.1  blocking validation: a pattern spec with a critical error is refused before any step
Task 6.2  transactions: a pattern or route that fails at step N leaves no partial state
Task 6.3  input validation at every API boundary (fuzzed from the OpenAPI schema)
Task 6.4  rate limiting per provider, retry with exponential backoff, circuit breaker

Same shape as Days 1-2: preflight of the change set, approval, merge deployed, black-box gates,
smoke; any failing gate reverts the merge and alerts.
"""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.week3.day3_4 import (
    blocking_validation_check,
    input_validation_check,
    rate_limiting_check,
    transactions_check,
)
from runbook.plan import WEEK3_DAY3_4
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import change_set_step
from runbook.tasks.steps.core import Step, gate_step
from runbook.tasks.steps.day import smoke_step
from runbook.tasks.steps.day_flow import plan_day_flow


def steps(ctx: RunContext) -> list[Step]:
    return [
        approval_step("data integrity fixes (blocking validation, transactions, input validation, "
                      "rate limiting with retry and circuit breaker)"),
        change_set_step("code:change-set", "Week 3 Days 3-4: data integrity fixes"),
        gate_step("gate:blocking-validation", blocking_validation_check),
        gate_step("gate:transactions", transactions_check),
        gate_step("gate:input-validation", input_validation_check),
        gate_step("gate:rate-limiting", rate_limiting_check),
        smoke_step("smoke"),
    ]


data_integrity_fixes = plan_day_flow(
    WEEK3_DAY3_4, steps,
    description="Week 3, Days 3-4: Data integrity fixes from the team's change set (change_ref): "
                "blocking pattern validation, transactions around writing patterns and routes, "
                "input validation fuzzed from the OpenAPI schema, per-provider rate limits with "
                "retry/backoff and a circuit breaker driven through the upstream stand-in.")

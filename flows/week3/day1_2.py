"""Week 3, Days 1-2 of the plan: Reliability Fixes, carried by the team's change set.

Task 5.1  pattern execution timeout: asyncio.wait_for per pattern, declared in its JSON
Task 5.2  cancellation: a cancellation endpoint; resources cleaned up, nothing partial written
Task 5.3  template substitution: {{?a.b}} (optional) and {{a.b|default:v}} (default)

Preflight (before approval): the change set's ref exists, merges cleanly onto what the
environment runs, and the target's own suite passes on the merge. Then the merge is deployed,
and black-box gates drive the API, the database and the upstream stand-in. Any failing gate
reverts the merge and alerts.
"""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.week3.day1_2 import cancellation_check, template_check, timeout_check
from runbook.plan import WEEK3_DAY1_2
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import change_set_step
from runbook.tasks.steps.core import Step, gate_step
from runbook.tasks.steps.day import smoke_step
from runbook.tasks.steps.day_flow import plan_day_flow


def steps(ctx: RunContext) -> list[Step]:
    return [
        approval_step("reliability fixes (pattern timeouts, cancellation, template substitution)"),
        change_set_step("code:change-set", "Week 3 Days 1-2: reliability fixes"),
        gate_step("gate:timeout", timeout_check),
        gate_step("gate:cancellation", cancellation_check),
        gate_step("gate:template", template_check),
        smoke_step("smoke"),
    ]


reliability_fixes = plan_day_flow(
    WEEK3_DAY1_2, steps,
    description="Week 3, Days 1-2: Reliability fixes from the team's change set (change_ref): "
                "pattern timeouts declared in the pattern JSON, cancellation through the API, "
                "optional and default template variables. Gated before the merge (ref, clean "
                "merge, the target's own tests) and after it (timeout, cancellation, template "
                "differential, 13-pattern smoke); any failure reverts the merge.")

"""Week 3, Day 5 of the plan: Error Handling Standardization, carried by the team's change set.

Task 7.1  every error response {"error": {"code", "message", "request_id", "details"}}
Task 7.2  JSON log lines with time, level, request id and pattern id; no secret in any line
Task 7.3  resources (fds, connections, threads, tasks) back to baseline after errors

Same shape as Days 1-2; any failing gate reverts the merge and alerts.
"""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.week3.day5 import error_shape_check, logging_check, resources_check
from runbook.plan import WEEK3_DAY5
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import change_set_step
from runbook.tasks.steps.core import Step, gate_step
from runbook.tasks.steps.day import smoke_step
from runbook.tasks.steps.day_flow import plan_day_flow


def steps(ctx: RunContext) -> list[Step]:
    return [
        approval_step("error handling standardization (error shape, JSON logging, resource management)"),
        change_set_step("code:change-set", "Week 3 Day 5: error handling standardization"),
        gate_step("gate:error-shape", error_shape_check),
        gate_step("gate:logging", logging_check),
        gate_step("gate:resources", resources_check),
        smoke_step("smoke"),
    ]


error_handling = plan_day_flow(
    WEEK3_DAY5, steps,
    description="Week 3, Day 5: Error handling standardization from the team's change set "
                "(change_ref): one structured error shape on every route, JSON logs with request "
                "and pattern ids and no secrets, resources back to baseline after a few hundred "
                "mixed error requests.")

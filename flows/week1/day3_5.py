"""Week 1, Days 3-5 of the plan: Backend Pattern System Preparation.

Task 4.1  panel definitions (dataPath, columns, config) from the frontend registry into the
          pattern JSON; every panel's dataPath resolves on the live API
Task 4.2  Pydantic input models, validated before a pattern runs (422 naming the field)
Task 4.3  responses carry the panels; the frontend renders them from the response

Code only (each update a commit, deployed, reverted on failure), after Week 0: the pattern
JSON must already use the standardized names.
"""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.week1.day3_5 import (
    input_models_check,
    panel_datapath_check,
    panel_parity_check,
    pattern_json_check,
    pattern_names_check,
)
from runbook.plan import WEEK1_DAY3_5
from runbook.tasks.code.transforms import FRONTEND_PANELS, INPUT_SCHEMAS, PANELS
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import code_update
from runbook.tasks.steps.core import Step, gate_step
from runbook.tasks.steps.day import smoke_step
from runbook.tasks.steps.day_flow import plan_day_flow


def steps(ctx: RunContext) -> list[Step]:
    return [
        approval_step("pattern system preparation (panels into the pattern JSON, input models, "
                      "frontend reads panels from the backend)"),
        code_update(PANELS),
        gate_step("gate:pattern-json", pattern_json_check),
        gate_step("gate:panel-datapaths", panel_datapath_check),
        code_update(INPUT_SCHEMAS),
        gate_step("gate:input-models", input_models_check),
        code_update(FRONTEND_PANELS),
        gate_step("gate:panel-parity", panel_parity_check),
        gate_step("gate:pattern-names", pattern_names_check),
        smoke_step("smoke"),
    ]


pattern_system = plan_day_flow(
    WEEK1_DAY3_5, steps, code_updates=[PANELS, INPUT_SCHEMAS, FRONTEND_PANELS],
    description="Week 1, Days 3-5: Backend pattern system preparation. Panel definitions move "
                "from the frontend registry into the pattern JSON (every dataPath resolved on "
                "the live API), Pydantic input models validated before a run (422 naming the "
                "field, nothing run), responses carry their panels and the frontend renders "
                "from them, 13-pattern smoke.")

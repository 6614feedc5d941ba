"""Production pauses for a human: the Prefect UI shows a form (approve + comment)."""
from __future__ import annotations

from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.tasks.steps.core import Step


class Approval(RunInput):
    approve: bool = False
    approver: str = ""
    comment: str = ""


def ask_approval(what: str, where: str, why: str, timeout_s: int = 24 * 3600) -> dict:
    """Pause this flow run until a human answers the form in the UI; raise on a rejection."""
    answer: Approval = pause_flow_run(wait_for_input=Approval.with_initial_data(
        description=f"Approve {what} on **{where}**? {why}"), timeout=timeout_s)
    if not answer.approve:
        raise RunbookError(f"{what} rejected by {answer.approver or 'the approver'}: {answer.comment or 'no reason given'}")
    return {"approval": "approved", "approver": answer.approver, "comment": answer.comment}


def approval_step(what: str, timeout_s: int = 24 * 3600) -> Step:
    def apply(ctx: RunContext, _adopted) -> dict:
        if not ctx.extra.get("require_approval"):
            return {"approval": "not required"}
        return ask_approval(what, ctx.slot, "The backup and staging rehearsal passed; see this run's artifacts.",
                            timeout_s)
    return Step("approval", apply)

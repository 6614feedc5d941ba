"""Week 3 gates (being written): each fails closed until it is."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.gate_result import GateResult



def timeout_check(ctx: RunContext) -> GateResult:
    return GateResult("timeout", False, "not written yet", observed="no check", expected="a check")


def cancellation_check(ctx: RunContext) -> GateResult:
    return GateResult("cancellation", False, "not written yet", observed="no check", expected="a check")


def template_check(ctx: RunContext) -> GateResult:
    return GateResult("template", False, "not written yet", observed="no check", expected="a check")

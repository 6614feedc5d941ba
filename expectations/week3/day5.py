"""Week 3 gates (being written): each fails closed until it is."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.gate_result import GateResult



def error_shape_check(ctx: RunContext) -> GateResult:
    return GateResult("error-shape", False, "not written yet", observed="no check", expected="a check")


def logging_check(ctx: RunContext) -> GateResult:
    return GateResult("logging", False, "not written yet", observed="no check", expected="a check")


def resources_check(ctx: RunContext) -> GateResult:
    return GateResult("resources", False, "not written yet", observed="no check", expected="a check")

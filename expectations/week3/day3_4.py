"""Week 3 gates (being written): each fails closed until it is."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.gate_result import GateResult



def blocking_validation_check(ctx: RunContext) -> GateResult:
    return GateResult("blocking-validation", False, "not written yet", observed="no check", expected="a check")


def transactions_check(ctx: RunContext) -> GateResult:
    return GateResult("transactions", False, "not written yet", observed="no check", expected="a check")


def input_validation_check(ctx: RunContext) -> GateResult:
    return GateResult("input-validation", False, "not written yet", observed="no check", expected="a check")


def rate_limiting_check(ctx: RunContext) -> GateResult:
    return GateResult("rate-limiting", False, "not written yet", observed="no check", expected="a check")

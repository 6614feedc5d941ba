"""Gates of Week 1, Days 3-5 (pattern system preparation), on the environment's deployed code
and its running API."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.deployed import served_checkout
from runbook.expectations.patterns import (
    input_models_gate,
    panel_datapath_gate,
    panel_parity_gate,
    pattern_json_gate,
    pattern_names_gate,
)
from runbook.gate_result import GateResult
from runbook.tasks.target.deploy import api


def pattern_json_check(ctx: RunContext) -> GateResult:
    return pattern_json_gate(served_checkout(ctx))


def pattern_names_check(ctx: RunContext) -> GateResult:
    return pattern_names_gate(served_checkout(ctx))


def _live(gate, per_caller: bool = False):
    def check(ctx: RunContext) -> GateResult:
        server = api(ctx)
        server.start()
        # per_caller: the gate mints a caller per probe (server.headers(user)), to find its audit rows
        return gate(server.base_url, ctx.deploy_dir, ctx.database_url,
                    server.headers if per_caller else server.headers())
    check.__name__ = gate.__name__.replace("_gate", "_check")
    return check


panel_datapath_check = _live(panel_datapath_gate)
input_models_check = _live(input_models_gate, per_caller=True)
panel_parity_check = _live(panel_parity_gate)

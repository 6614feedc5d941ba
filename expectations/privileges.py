"""The runbook runs with least privilege (README: "The runbook's database role"): before a
plan day changes anything, its role must hold exactly the grants the day needs. A missing one
fails preflight naming the grant and why it is needed — never a half-run that stops at the
first ALTER."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.database import queries

NAME = "preflight:privileges"


@gate(NAME, checks="the runbook's role owns the app's tables and functions, is in pg_read_all_stats, "
      "may create its ledger schema, and (days that rehearse) may create the scratch database",
      runs_in="every plan day's preflight")
def privileges(ctx: RunContext, rehearses: bool) -> GateResult:
    with connect(ctx.database_url) as conn:
        missing = [{"grant": g, "why": why, "objects": objs or ""}
                   for g, why, objs in conn.execute(queries.text("privileges")).fetchall()]
    if rehearses:
        with connect(ctx.rehearsal_server_url) as conn:
            may = conn.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        if not may:
            missing.append({"grant": "CREATEDB on the rehearsal server",
                            "why": "the staging rehearsal restores the backup into a scratch database",
                            "objects": ""})
    first = missing[0] if missing else None
    return GateResult(
        name=NAME, passed=not missing,
        expectation="the runbook's role holds every grant the plan day needs",
        observed=(f"missing {first['grant']} ({first['why']})"
                  + (f": {first['objects']}" if first["objects"] else "")) if first else "all held",
        expected="all held", sample=missing)

"""The registry of read-only checks the verification flow re-runs.

Each check says which ledger fact makes it due (a migration applied, a code step applied and
not reverted) and how to run it. Nothing here writes: catalog and data reads, git-tracked file
reads, and API calls for the pattern smoke.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from runbook.context import RunContext
from runbook.expectations.deployed import served_checkout
from runbook.expectations.evaluator import no_eval_gate
from runbook.expectations.integrity import fk_catalog_gate
from runbook.expectations.smoke import smoke
from runbook.expectations.week0.day1_2 import old_names_gate, parity_gates
from runbook.expectations.week0.day3_4 import fk_indexes_gate, orphan_gates, pool_health_gate
from runbook.expectations.week0.day5 import authorization_check
from runbook.expectations.week1.day3_5 import (
    input_models_check,
    panel_datapath_check,
    panel_parity_check,
    pattern_json_check,
)
from runbook.expectations.week3.still_deployed import change_sets_deployed, merged_change_sets
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.plan import (
    MIGRATION_014,
    MIGRATION_015,
    MIGRATION_016,
    SUPERSEDED_BY,
    WEEK0_DAY1_2,
    WEEK0_DAY3_4,
    WEEK0_DAY5,
    WEEK1_DAY3_5,
)
from runbook.target import DAWSOS
from runbook.tasks.database import migrate, migration_files
from runbook.tasks.target.deploy import api

DAY_1_2 = WEEK0_DAY1_2.flow_name
DAY_3_4 = WEEK0_DAY3_4.flow_name
DAY_5 = WEEK0_DAY5.flow_name
WEEK1 = WEEK1_DAY3_5.flow_name


@dataclass
class LedgerView:
    """What the target's ledger says is applied (read without creating anything)."""
    migrations: set[str] = field(default_factory=set)
    applied_at: dict[str, object] = field(default_factory=dict)
    steps: set[tuple[str, str]] = field(default_factory=set)   # (flow name, step) not reverted

    def step_applied(self, flow_name: str, prefix: str) -> bool:
        return any(f == flow_name and s.startswith(prefix) for f, s in self.steps)


def read_ledger(url: str) -> LedgerView:
    view = LedgerView()
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('runbook.migrations')").fetchone()[0] is None:
            return view
        for mid, at in conn.execute(
                "SELECT id, applied_at FROM runbook.migrations WHERE status = 'applied'").fetchall():
            view.migrations.add(mid)
            view.applied_at[mid] = at
        rows = conn.execute(
            """SELECT DISTINCT ON (flow_run_id, step) flow_name, step, status
                 FROM runbook.run_steps ORDER BY flow_run_id, step, id DESC""").fetchall()
    view.steps = {(f, s) for f, s, status in rows if status == "applied"}
    return view


@dataclass(frozen=True)
class Check:
    name: str
    kind: str                                    # parity | migration | integrity | catalog | code | smoke
    due: Callable[[LedgerView, RunContext], bool]
    run: Callable[[RunContext, LedgerView], list[GateResult]]




# -- the checks ------------------------------------------------------------------------------

@gate('verify', checks="every applied migration's verify.sql holds and its files exist",
      runs_in='scheduled verification')
def migration_verifies(ctx: RunContext, view: LedgerView) -> list[GateResult]:
    out = []
    for mid in sorted(view.migrations):
        if SUPERSEDED_BY.get(mid) in view.migrations:
            continue
        try:
            m = migration_files.load(mid)
        except Exception as exc:  # noqa: BLE001 - a ledger entry without files is itself drift
            out.append(GateResult(f"verify:{mid}", False, "the applied migration's files exist",
                                  observed=str(exc), expected="up/down/verify.sql"))
            continue
        out.append(migrate.verify(ctx.database_url, m))
    return out


def parity(ctx: RunContext, view: LedgerView) -> list[GateResult]:
    """014's synced pairs whose old column still exists (after 017, not the contracted ones)."""
    return parity_gates(ctx.database_url, {})


def orphans(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    return orphan_gates(ctx.database_url)


def fk_catalog(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    return [fk_catalog_gate(ctx.database_url, DAWSOS.foreign_keys)]


def fk_indexes(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    """Every FK indexed, and the plan's queries use the indexes (Day 3-4's own gate)."""
    return fk_indexes_gate(ctx)


def pool_health(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    api(ctx).start()
    return [pool_health_gate(ctx)]


def old_names(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    return [old_names_gate(ctx)]


def no_eval(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    """Day 5's AST gate (eval/exec/compile)."""
    return [no_eval_gate(served_checkout(ctx))]


def authorization(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    return [authorization_check(ctx)]


def smoke_patterns(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    """All patterns through the managed API of the deployed worktree (started, never moved)."""
    server = api(ctx)
    server.start()
    result, _runs = smoke(server.base_url, ctx.deploy_dir, ctx.database_url, server.headers())
    return [result]


def panels(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    """Week 1: the pattern JSON's panels, and their dataPaths on the live API."""
    return [pattern_json_check(ctx), panel_datapath_check(ctx)]


def input_models(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    return [input_models_check(ctx)]


def panel_parity(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    return [panel_parity_check(ctx)]


def _applied(mid: str) -> Callable[[LedgerView, RunContext], bool]:
    return lambda view, _ctx: mid in view.migrations


CHECKS: tuple[Check, ...] = (
    Check("migrations:verify", "migration", lambda v, _c: bool(v.migrations), migration_verifies),
    Check("parity:014", "parity", _applied(MIGRATION_014), parity),
    Check("integrity:orphans", "integrity", _applied(MIGRATION_015), orphans),
    Check("catalog:fk", "catalog", _applied(MIGRATION_015), fk_catalog),
    Check("catalog:fk-indexes", "catalog",
          lambda v, _c: MIGRATION_016 in v.migrations or MIGRATION_015 in v.migrations, fk_indexes),
    Check("pool-health", "code", lambda v, _c: v.step_applied(DAY_3_4, "code:pool-config"), pool_health),
    Check("code:old-names", "code", lambda v, _c: v.step_applied(DAY_1_2, "code:rename-fields"), old_names),
    Check("code:no-eval", "code", lambda v, _c: v.step_applied(DAY_5, "code:simpleeval"), no_eval),
    Check("authorization", "code", lambda v, _c: v.step_applied(DAY_5, "code:authorization"), authorization),
    Check("patterns:panels", "code", lambda v, _c: v.step_applied(WEEK1, "code:panels"), panels),
    Check("patterns:input-models", "code", lambda v, _c: v.step_applied(WEEK1, "code:input-schemas"),
          input_models),
    Check("patterns:panel-parity", "code", lambda v, _c: v.step_applied(WEEK1, "code:frontend-panels"),
          panel_parity),
    Check("change-set:deployed", "code", lambda _v, c: bool(merged_change_sets(c.database_url)),
          lambda c, _v: [change_sets_deployed(c)]),
    Check("smoke", "smoke", lambda _v, c: (c.deploy_dir / ".git").exists(), smoke_patterns),
)


def due_checks(view: LedgerView, ctx: RunContext) -> list[Check]:
    return [c for c in CHECKS if c.due(view, ctx)]


# -- catalog references to columns (the contract's refusal) -----------------------------------



# -- restore proof that survives column order (re-added columns go last) ----------------------




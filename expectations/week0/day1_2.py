"""Gates of Week 0, Day 1-2 (field standardisation, migration 014): column parity, the plan's
own validation queries, and no old name left in the deployed code."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.deployed import served_checkout
from runbook.expectations.parity import parity_gate, plan_validation_queries
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.plan import MIGRATION_014, SUPERSEDED_BY
from runbook.target import DAWSOS
from runbook.tasks.code import git_ops
from runbook.tasks.code.rename import find_old_names
from runbook.tasks.code.transforms import rename_excludes
from runbook.tasks.database import expand, ledger, migrate
from runbook.tasks.database.migrate import primary_key


@gate('plan-validation:014', checks="the plan's Task 1.1 validation queries: all lots match, new columns NOT NULL",
      runs_in='Week 0 Day 1-2 after 014')
def plan_validation_gate(url: str) -> GateResult:
    """The plan's own Task 1.1 validation queries, verbatim, and its expected result."""
    out = plan_validation_queries(url)
    d = out.get("data") or {}
    not_null = {c["column_name"]: c["is_nullable"] for c in out["columns"]}
    ok = (bool(d) and d["total_lots"] == d["matching_open"] == d["matching_original"]
          and not_null.get("quantity_open") == "NO" and not_null.get("quantity_original") == "NO")
    return GateResult(name="plan-validation:014", passed=ok,
                      expectation="the plan's Task 1.1 queries: all lots match, no NULLs in the new columns",
                      observed={"data": d, "columns": not_null},
                      expected="total_lots = matching_open = matching_original; new columns NOT NULL",
                      details={"queries": out["queries"], "error": out.get("data_error")})


@gate('backfill-side-effects', checks='the backfill changed no column but the new ones',
      runs_in='Week 0 Day 1-2 after 014')
def side_effects_gate(url: str, migration_id: str = MIGRATION_014) -> GateResult:
    """Every other column of every row the backfill updated is unchanged (each batch compared
    the rows' other columns before and after), unless the operator accepted the triggers."""
    seen = migrate.backfill_side_effects(url, migration_id)
    bad = {t: s for t, s in seen.items() if s["rows"] and not s["triggers"].startswith("fire, accepted")}
    return GateResult(name=f"backfill-side-effects:{migration_id}", passed=not bad,
                      expectation="the backfill changed no column but the new ones (user triggers kept out)",
                      observed=sum(s["rows"] for s in bad.values()), expected=0,
                      sample=[{"table": t, "row": k} for t, s in bad.items() for k in s["sample"]][:10],
                      details={"tables": seen})


@gate("parity-pairs", checks="014 has column pairs to compare (its plan in the ledger, both columns present) "
      "until the contract supersedes it: no pair to compare fails", runs_in="Week 0 Day 1-2 after 014; "
      "scheduled verification")
def pairs_gate(url: str, pairs: dict[str, list[tuple[str, str]]], migration_id: str = MIGRATION_014) -> GateResult:
    """Parity over no pair would pass in silence: after 014 there must be pairs, unless the
    contract (017) dropped their old columns."""
    later = SUPERSEDED_BY.get(migration_id)
    superseded = bool(later) and (ledger.migration_state(url, later) or {}).get("status") == "applied"
    return GateResult(name=f"parity-pairs:{migration_id}", passed=bool(pairs) or superseded,
                      expectation=f"the column pairs {migration_id} keeps in sync are there to compare",
                      observed=f"{sum(map(len, pairs.values()))} pairs in {len(pairs)} tables"
                               + (f" ({later} applied: contracted)" if superseded and not pairs else ""),
                      expected="at least one pair (until the contract)")


def parity_gates(url: str, data: dict) -> list[GateResult]:
    """Parity of every column pair 014 keeps in sync (one GX scan per table), the backfill's
    side effects, and the plan's own validation queries (while lots has both names). Row
    counts are not compared: the application inserts and deletes while this runs."""
    out = []
    pairs = expand.synced_pairs(url, MIGRATION_014)
    out.append(pairs_gate(url, pairs))
    with connect(url) as conn:
        keys = {table: primary_key(conn, table) for table in pairs}
    for table, table_pairs in pairs.items():
        out.append(parity_gate(url, table, table_pairs, key=keys[table][0]))
    out.append(side_effects_gate(url))
    if "lots" in pairs and len(pairs["lots"]) == 2:
        out.append(plan_validation_gate(url))
    return out


@gate('code:old-names', checks='0 occurrences of the old column names in the deployed code',
      runs_in='Week 0 Day 1-2; contract (017); scheduled verification')
def old_names_gate(ctx: RunContext) -> GateResult:
    """The plan's grep validation, by the boundary rule, outside the migration history."""
    renames = DAWSOS.code_renames
    if not git_ops.git(ctx.deploy_dir, "ls-files", check=False).strip():
        # an empty or missing checkout has no old names because it has no code: not a pass
        return GateResult(name="code:old-names", passed=False, expectation="the deployed code is searched",
                          observed=f"no tracked files in {ctx.deploy_dir}", expected="the deployed checkout")
    checkout = served_checkout(ctx)      # the code the service runs, not only what was checked out
    found, near = find_old_names(checkout, list(renames), exclude=rename_excludes(checkout))
    return GateResult(name="code:old-names", passed=not found,
                      expectation="0 occurrences of " + ", ".join(renames) + " in the deployed code",
                      observed=len(found), expected=0,
                      sample=[{"file": o.path, "line": o.line, "name": o.name, "text": o.text.strip()[:120]}
                              for o in found[:10]],
                      details={"near_misses_left_alone": [f"{o.path}:{o.line} {o.name}" for o in near[:50]]})

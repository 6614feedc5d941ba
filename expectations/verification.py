"""The registry of read-only checks the verification flow re-runs.

Each check says which ledger fact makes it due (a migration applied, a code step applied and
not reverted) and how to run it. Nothing here writes: catalog and data reads, git-tracked file
reads, and API calls for the pattern smoke.
"""
from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from runbook.context import RunContext
from runbook.gate_result import GateResult
from runbook.pg import connect

MIGRATION_014 = "014_standardize_quantity_fields"
MIGRATION_015 = "015_add_fk_constraints"
MIGRATION_016 = "016_add_indexes"
MIGRATION_017 = "017_contract_quantity_fields"
DAY_1_2 = "week0-day1-2-standardize-fields"
DAY_5 = "week0-day5-security-fixes"
# a later migration whose verify.sql contradicts an earlier one's (017 drops what 014 keeps)
SUPERSEDED_BY = {MIGRATION_014: MIGRATION_017}
DAY_3_4 = "week0-day3-4-integrity-pooling"


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


def _optional(module: str, attr: str):
    """A function another plan day exports, if that module exists yet."""
    try:
        return getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None


# -- the checks ------------------------------------------------------------------------------

def migration_verifies(ctx: RunContext, view: LedgerView) -> list[GateResult]:
    from runbook.tasks.database import migrate, migration_files

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
    """014's backfill pairs; after 017 only the pairs whose old column still exists."""
    from runbook.expectations.parity import parity_gate
    from runbook.flows.week0.day1_2 import parity_gates
    from runbook.tasks.database import migration_files
    from runbook.tasks.database.migrate import primary_key

    if MIGRATION_017 not in view.migrations:
        return parity_gates(ctx.database_url, {})
    out = []
    with connect(ctx.database_url) as conn:
        for s in migration_files.load(MIGRATION_014).up_sections():
            if s.is_backfill and s.backfill_table != "lots":
                key = primary_key(conn, s.backfill_table)[0]
                out.append(parity_gate(ctx.database_url, s.backfill_table,
                                       [(old, new) for new, old in s.backfill_pairs], key=key))
    return out


def orphans(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    from runbook.flows.week0.day3_4 import orphan_gates

    return orphan_gates(ctx.database_url)


def fk_catalog(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    from runbook.expectations.integrity import fk_catalog_gate
    from runbook.flows.week0.day3_4 import FKS_015

    return [fk_catalog_gate(ctx.database_url, FKS_015)]


def fk_indexes(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    """Every FK indexed, and the plan's queries use the indexes (Day 3-4's own gate)."""
    from runbook.flows.week0.day3_4 import fk_indexes_gate

    return fk_indexes_gate(ctx)


def pool_health(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    from runbook.flows.week0.day3_4 import pool_health_gate
    from runbook.tasks.target.deploy import api

    api(ctx).start()
    return [pool_health_gate(ctx)]


def old_names(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    from runbook.flows.week0.day1_2 import old_names_gate

    return [old_names_gate(ctx)]


def eval_calls(checkout: Path) -> list[dict]:
    """Every call of the builtin eval/exec in the checkout's backend Python (AST, not grep:
    comments, strings and `literal_eval` don't count)."""
    found = []
    for path in sorted((Path(checkout) / "backend").rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
        except SyntaxError as exc:
            found.append({"file": str(path.relative_to(checkout)), "line": exc.lineno, "call": "unparsable"})
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("eval", "exec")):
                found.append({"file": str(path.relative_to(checkout)), "line": node.lineno,
                              "call": node.func.id})
    return found


def no_eval(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    """Day 5's AST gate (eval/exec/compile); this module's own walk if Day 5 is absent."""
    gate = _optional("runbook.expectations.evaluator", "no_eval_gate")
    if gate is not None:
        return [gate(ctx.deploy_dir)]
    found = eval_calls(ctx.deploy_dir)
    return [GateResult("code:no-eval", not found, "no eval()/exec() call in the deployed backend",
                       observed=len(found), expected=0, sample=found[:10])]


def authorization(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    from runbook.flows.week0.day5 import authorization_check

    return [authorization_check(ctx)]


def smoke_patterns(ctx: RunContext, _view: LedgerView | None = None) -> list[GateResult]:
    """All patterns through the managed API of the deployed worktree (started, never moved)."""
    from runbook.tasks.target.deploy import api
    from runbook.expectations.smoke import smoke

    server = api(ctx)
    server.start()
    result, _runs = smoke(server.base_url, ctx.deploy_dir, ctx.database_url, server.headers())
    return [result]


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
    Check("smoke", "smoke", lambda _v, c: (c.deploy_dir / ".git").exists(), smoke_patterns),
)


def due_checks(view: LedgerView, ctx: RunContext) -> list[Check]:
    return [c for c in CHECKS if c.due(view, ctx)]


# -- catalog references to columns (the contract's refusal) -----------------------------------

def column_references(url: str, table: str, columns: list[str]) -> list[dict]:
    """Database code that still uses `columns` of `table`: views (pg_depend), functions
    (their source text, word-bounded) and triggers (their arguments or WHEN clause)."""
    pattern = "(^|[^A-Za-z0-9_])(" + "|".join(columns) + ")($|[^A-Za-z0-9_])"
    with connect(url) as conn:
        views = conn.execute(sql.SQL(
            """SELECT DISTINCT 'view' AS kind, v.oid::regclass::text AS name, a.attname AS column_name
                 FROM pg_depend d
                 JOIN pg_rewrite r ON r.oid = d.objid
                 JOIN pg_class v ON v.oid = r.ev_class
                 JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass({t})
                  AND v.oid <> d.refobjid AND a.attname = ANY({cols})""").format(
            t=sql.Literal(table), cols=sql.Literal(columns))).fetchall()
        funcs = conn.execute(
            """SELECT 'function', p.oid::regprocedure::text, substring(p.prosrc from %s)
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prosrc ~ %s""",
            (pattern, pattern)).fetchall()
        trigs = conn.execute(
            """SELECT 'trigger', t.tgname || ' ON ' || t.tgrelid::regclass::text, NULL
                 FROM pg_trigger t
                WHERE NOT t.tgisinternal AND t.tgrelid = to_regclass(%s)
                  AND (encode(t.tgargs, 'escape') ~ %s OR pg_get_triggerdef(t.oid) ~ %s)""",
            (table, pattern, pattern)).fetchall()
    return [{"kind": k, "object": n, "column": c} for k, n, c in [*views, *funcs, *trigs]]


# -- restore proof that survives column order (re-added columns go last) ----------------------

def column_checksums(url: str, schema: str = "public") -> dict[str, dict[str, str]]:
    """Per table, per column: row count and an order-independent sum of md5 of the value.
    Comparing the columns present on both sides proves a rollback kept every surviving value,
    even when it re-added columns (which PostgreSQL appends, changing whole-row text)."""
    out: dict[str, dict[str, str]] = {}
    with connect(url) as conn:
        cols = conn.execute(
            """SELECT c.relname, a.attname FROM pg_attribute a
                 JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY 1, a.attnum""", (schema,)).fetchall()
        tables: dict[str, list[str]] = {}
        for t, c in cols:
            tables.setdefault(t, []).append(c)
        for t, names in tables.items():
            aggs = [sql.SQL("count(*)")] + [
                sql.SQL("coalesce(sum(('x' || substr(md5(coalesce({c}::text, '<null>')), 1, 15))::bit(60)::bigint), 0)"
                        ).format(c=sql.Identifier(c)) for c in names]
            row = conn.execute(sql.SQL("SELECT {} FROM {}.{}").format(
                sql.SQL(", ").join(aggs), sql.Identifier(schema), sql.Identifier(t))).fetchone()
            out[t] = {"<rows>": str(row[0]), **{c: str(v) for c, v in zip(names, row[1:])}}
    return out


def restore_proof(name: str, before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]
                  ) -> GateResult:
    changed = []
    for t in sorted(set(before) | set(after)):
        b, a = before.get(t), after.get(t)
        if b is None or a is None:
            changed.append({"table": t, "column": "*", "before": "present" if b else "absent",
                            "after": "present" if a else "absent"})
            continue
        for c in sorted(set(b) & set(a)):
            if b[c] != a[c]:
                changed.append({"table": t, "column": c, "before": b[c], "after": a[c]})
    return GateResult(name=name, passed=not changed,
                      expectation="every value of every column present before and after is unchanged",
                      observed=f"{len(changed)} columns differ", expected="0 columns differ",
                      sample=changed[:20])

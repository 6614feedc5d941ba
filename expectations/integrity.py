"""Referential-integrity gates (foreign keys), each an unexpected-rows check run through GX.

* `orphans_gate`      — child rows whose FK value has no parent row (one scan of the child).
* `fk_catalog_gate`   — the expected FK constraints exist in pg_catalog AND are validated.
* `fk_index_gate`     — every FK in schema public has an index whose leading columns cover it.
* `invalid_insert_rejected` — PostgreSQL itself refuses a row that breaks an FK (always
  rolled back).
"""
from __future__ import annotations

import json
import string
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from runbook.errors import RunbookError
from runbook.expectations.gx.runner import (
    _regclass_text,
    connect,
    jsonable,
    require_tables,
    run_unexpected_rows,
    table_ident,
)
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.tasks.database import queries
from runbook.tasks.database.fk_indexes import Probe


@gate('orphans', checks='every FK value refers to an existing parent row',
      runs_in='Week 0 Day 3-4 after 015; scheduled verification')
def orphans_gate(url: str, child_table: str, fk_column: str, parent_table: str,
                 parent_key: str = "id", *, sample_size: int = 10,
                 materialize: bool = True) -> GateResult:
    """No row of child_table has a non-NULL fk_column without a matching parent row."""
    query = sql.SQL(
        "SELECT c.* FROM {child} AS c "
        "WHERE c.{fk} IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM {parent} AS p WHERE p.{pk} = c.{fk})"
    ).format(child=table_ident(child_table), fk=sql.Identifier(fk_column),
             parent=table_ident(parent_table), pk=sql.Identifier(parent_key))
    return run_unexpected_rows(
        url,
        name=f"orphans:{child_table}.{fk_column}",
        expectation=(f"every {child_table}.{fk_column} refers to an existing "
                     f"{parent_table}.{parent_key}"),
        query=query,
        sample_size=sample_size,
        tables=[child_table, parent_table],
        materialize=materialize,
        details={"child_table": child_table, "fk_column": fk_column,
                 "parent_table": parent_table, "parent_key": parent_key},
    )


@gate('fk-catalog', checks="the plan's foreign keys exist in pg_catalog and are validated",
      runs_in='Week 0 Day 3-4 after 015; scheduled verification')
def fk_catalog_gate(url: str, expected: Sequence[tuple[str, str, str]], *,
                    sample_size: int = 10) -> GateResult:
    """Each (child_table, column, parent_table) has a FOREIGN KEY constraint on exactly that
    column referencing parent_table, and it is validated (pg_constraint.convalidated)."""
    expected = [tuple(e) for e in expected]
    if not expected:
        raise RunbookError("fk_catalog_gate needs at least one (child_table, column, parent_table)")
    tables = sorted({e[0] for e in expected} | {e[2] for e in expected})
    require_tables(url, tables, gate="fk-catalog")
    values = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}, {}, {})").format(
            sql.Literal(child), sql.Literal(col), sql.Literal(parent),
            sql.Literal(_regclass_text(child)), sql.Literal(_regclass_text(parent)))
        for child, col, parent in expected)
    query = sql.SQL(
        "WITH expected(child_table, column_name, parent_table, child_reg, parent_reg) AS "
        "(VALUES {values}) "
        "SELECT e.child_table, e.column_name, e.parent_table, "
        "CASE WHEN con.oid IS NULL THEN 'missing' ELSE 'not_validated' END AS problem, "
        "con.conname AS constraint_name, con.convalidated AS validated "
        "FROM expected AS e "
        "LEFT JOIN LATERAL ("
        "  SELECT k.oid, k.conname, k.convalidated FROM pg_catalog.pg_constraint AS k "
        "  WHERE k.contype = 'f' "
        "    AND k.conrelid = to_regclass(e.child_reg) "
        "    AND k.confrelid = to_regclass(e.parent_reg) "
        "    AND k.conkey = ARRAY[(SELECT a.attnum FROM pg_catalog.pg_attribute AS a "
        "                          WHERE a.attrelid = to_regclass(e.child_reg) "
        "                            AND a.attname = e.column_name AND NOT a.attisdropped)] "
        "  ORDER BY k.convalidated DESC, k.conname LIMIT 1"
        ") AS con ON true "
        "WHERE con.oid IS NULL OR NOT con.convalidated "
        "ORDER BY 1, 2"
    ).format(values=values)
    listed = ", ".join(f"{c}.{col} → {p}" for c, col, p in expected)
    return run_unexpected_rows(
        url,
        name="fk-catalog",
        expectation=f"foreign keys present and validated: {listed}",
        query=query,
        sample_size=sample_size,
        materialize=False,          # a catalog lookup: nothing big to scan twice
        details={"expected": [list(e) for e in expected]},
    )




@gate('fk-index', checks='every foreign key in the schema has an index on its columns (a schema without foreign keys fails)',
      runs_in='Week 0 Day 3-4 after 016; scheduled verification')
def fk_index_gate(url: str, schema: str = "public", *, sample_size: int = 50) -> GateResult:
    """Every FK column set in `schema` has a valid, non-partial index whose leading columns are
    exactly that set (any order): unindexed FKs make parent deletes/updates scan the child."""
    with connect(url) as conn:
        fks = conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = "
                           "to_regnamespace(%s)", (schema,)).fetchone()[0]
    if not fks:   # no foreign key to look at is not "every foreign key indexed"
        return GateResult(name=f"fk-index:{schema}", passed=False,
                          expectation=f"every foreign key in schema {schema} has an index on its columns",
                          observed=f"no foreign key in schema {schema}: nothing to check",
                          expected="the schema's foreign keys, each indexed")
    return run_unexpected_rows(
        url,
        name=f"fk-index:{schema}",
        expectation=f"every foreign key in schema {schema} has an index on its columns",
        query=queries.compose("unindexed_foreign_keys", schema=schema),
        sample_size=sample_size,
        materialize=False,
        details={"schema": schema},
    )


@gate('fk-rejects', checks='PostgreSQL refuses a row that breaks a foreign key (rolled back)',
      runs_in='Week 0 Day 3-4 after 015')
def invalid_insert_rejected(url: str, table: str, row: dict[str, Any]) -> GateResult:
    """Inserting `row` into `table` raises ForeignKeyViolation. The insert runs in a
    transaction that is always rolled back, so the table is never changed."""
    if not row:
        raise RunbookError(f"invalid_insert_rejected on {table!r}: empty row")
    name = f"fk-rejects:{table}"
    require_tables(url, [table], gate=name)
    stmt = sql.SQL("INSERT INTO {t} ({cols}) VALUES ({vals})").format(
        t=table_ident(table),
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in row),
        vals=sql.SQL(", ").join(sql.Placeholder() for _ in row))
    error: BaseException | None = None
    with connect(url) as conn:
        try:
            conn.execute(stmt, list(row.values()))
        except psycopg.Error as exc:
            error = exc
        finally:
            conn.rollback()
    sample_row = {k: jsonable(v) for k, v in row.items()}
    if isinstance(error, psycopg.errors.ForeignKeyViolation):
        observed = f"ForeignKeyViolation: {_first_line(error)}"
        passed = True
        sample: list[dict] = []
    elif error is not None:
        observed = f"{type(error).__name__}: {_first_line(error)}"
        passed = False
        sample = [sample_row]
    else:
        observed = "row accepted (rolled back)"
        passed = False
        sample = [sample_row]
    details: dict[str, Any] = {"table": table, "row": sample_row, "rolled_back": True}
    diag = getattr(error, "diag", None)
    if diag is not None and diag.constraint_name:
        details["constraint"] = diag.constraint_name
    return GateResult(
        name=name,
        passed=passed,
        expectation=f"PostgreSQL rejects a row in {table} that breaks a foreign key",
        observed=observed,
        expected="ForeignKeyViolation",
        sample=sample,
        details=details,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _index_names(plan: dict | list) -> list[str]:
    found = []
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.append(plan["Index Name"])
        for v in plan.values():
            found += _index_names(v)
    elif isinstance(plan, list):
        for v in plan:
            found += _index_names(v)
    return found



@gate('explain:indexes-used', checks='EXPLAIN of each hot query and FK lookup uses an index leading with its columns (no probe fails)',
      runs_in='Week 0 Day 3-4 after 016; scheduled verification')
def explain_gate(url: str, probes: list[Probe]) -> GateResult:
    """EXPLAIN each probe with enable_seqscan = off (on a small table the planner rightly
    prefers a seq scan; this asks whether a fitting index is *usable*) and check the plan
    uses an index whose leading columns are the probe's."""
    bad, seen = [], []
    if not probes:   # no query to explain proves no index is used
        bad.append({"query": "(none)", "problem": "no query or FK lookup to explain: nothing to check"})
    with connect(url) as conn:
        indexes = {r[0]: tuple(r[1]) for r in conn.execute(
            """SELECT c.relname, array_agg(a.attname::text ORDER BY k.ord)
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) ON true
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indisvalid GROUP BY c.relname""").fetchall()}
        conn.execute("SET LOCAL enable_seqscan = off")
        for p in probes:
            cols = list(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(p.query) if f))
            row = conn.execute(sql.SQL("SELECT {} FROM {} WHERE {} LIMIT 1").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(p.table),
                sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in cols))).fetchone()
            if row is None:
                bad.append({"query": p.description, "problem": f"{p.table} has no row to probe with"})
                continue
            text = p.query.format(**{c: sql.Literal(v).as_string(conn) for c, v in zip(cols, row)})
            plan = conn.execute("EXPLAIN (FORMAT JSON) " + text).fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            used = _index_names(plan)
            fitting = [n for n in used if p.fits(indexes.get(n, ()))]
            seen.append({"query": p.description, "index": ", ".join(used) or "(none)"})
            if not fitting:
                bad.append({"query": p.description, "problem": "no index leading with "
                            + ", ".join(p.leading) + " in the plan", "plan_uses": ", ".join(used) or "(none)"})
        conn.rollback()
    return GateResult(name="explain:indexes-used", passed=not bad and bool(probes),
                      expectation="EXPLAIN (enable_seqscan = off) of each common query and FK lookup "
                                  "uses an index leading with its columns",
                      observed=f"{len(probes) - len(bad)}/{len(probes)} use one",
                      expected=f"{len(probes)}/{len(probes)}", sample=bad or seen,
                      details={"plans": seen, "note": "enable_seqscan = off: on small demo tables the "
                               "planner prefers a seq scan; this checks the index is usable"})

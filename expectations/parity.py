"""Column-copy parity (Day 1–2, migration 014: qty_* → quantity_*), as one scan of the table.

Parity is a property of each row, compared by key: old and new name of the same row hold the
same value. It holds while the application writes (rows inserted or deleted meanwhile are
rows like any other), so the flows never ask for an unchanged row count: the database is live.

`parity_gate` builds a single query whose rows are the unexpected rows:

* one row per table row where a new column IS DISTINCT FROM its old column, or is NULL
  (problem = 'value_mismatch', with the key, old and new values, typed as in the table);
* only when `expected_rows` is given (a database known to be quiet: the benches), one sentinel
  row (problem = 'row_count_changed', with the row count) when the row count differs.

Both come from one aggregate pass over the table (`count(*)` and the offending rows collected
with a parallel-safe temp aggregate, `pg_temp.rb_collect`), so PostgreSQL can run it as a
parallel seq scan — the same plan shape as a plain `SELECT count(*), count(*) FILTER (…)`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from runbook.errors import RunbookError
from runbook.expectations.gx.runner import (
    fetch_all,
    require_tables,
    run_unexpected_rows,
    table_ident,
)
from runbook.gate_registry import gate
from runbook.gate_result import GateResult

# array_append/array_cat make an aggregate PostgreSQL can run in parallel (array_agg only
# gained a combine function in PostgreSQL 16). Created once per session, in pg_temp.
COLLECT_AGGREGATE = sql.SQL(
    "DO $rb$ BEGIN "
    "IF to_regprocedure('pg_temp.rb_collect(jsonb)') IS NULL THEN "
    "CREATE AGGREGATE pg_temp.rb_collect(jsonb) (sfunc = array_append, stype = jsonb[], "
    "combinefunc = array_cat, parallel = safe); "
    "END IF; END $rb$"
)

_RESERVED = {"problem", "table_rows", "expected_rows"}


def mismatch_condition(pairs: Sequence[tuple[str, str]]) -> sql.Composable:
    """`new IS DISTINCT FROM old OR new IS NULL`, OR-ed over the (old, new) pairs."""
    if not pairs:
        raise RunbookError("parity gate needs at least one (old, new) column pair")
    return sql.SQL(" OR ").join(
        sql.SQL("{new} IS DISTINCT FROM {old} OR {new} IS NULL").format(
            old=sql.Identifier(old), new=sql.Identifier(new))
        for old, new in pairs
    )


def parity_query(table: str, pairs: Sequence[tuple[str, str]], key: str = "id",
                 expected_rows: int | None = None) -> sql.Composed:
    """The one-scan unexpected-rows query of `parity_gate` (all identifiers quoted)."""
    columns: list[str] = []
    for col in [key] + [c for pair in pairs for c in pair]:
        if col not in columns:
            columns.append(col)
    clash = _RESERVED.intersection(columns)
    if clash:
        raise RunbookError(f"parity gate on {table!r}: column name(s) {sorted(clash)} clash "
                           "with the gate's own output columns")
    tbl = table_ident(table)
    bad = mismatch_condition(pairs)
    payload = sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier(c)) for c in columns))
    typed_cols = sql.SQL(", ").join(
        sql.SQL("rec.{c} AS {c}").format(c=sql.Identifier(c)) for c in columns)
    # The sentinel's key/value columns are NULL typed like the table's: take them from a NULL
    # row of the table's row type.
    null_cols = sql.SQL(", ").join(
        sql.SQL("(NULL::{tbl}).{c} AS {c}").format(tbl=tbl, c=sql.Identifier(c)) for c in columns)

    if expected_rows is None:
        count_expr = sql.SQL("NULL::bigint")
        sentinel = sql.SQL("")
    else:
        count_expr = sql.SQL("count(*)")
        sentinel = sql.SQL(
            " UNION ALL "
            "SELECT 'row_count_changed'::text AS problem, {null_cols}, "
            "scan.table_rows AS table_rows, {exp}::bigint AS expected_rows "
            "FROM scan WHERE scan.table_rows IS DISTINCT FROM {exp}::bigint"
        ).format(null_cols=null_cols, exp=sql.Literal(int(expected_rows)))

    return sql.SQL(
        "WITH scan AS MATERIALIZED ("
        "SELECT {count_expr} AS table_rows, "
        "pg_temp.rb_collect({payload}) FILTER (WHERE {bad}) AS bad_rows "
        "FROM {tbl}) "
        "SELECT 'value_mismatch'::text AS problem, {typed_cols}, "
        "NULL::bigint AS table_rows, {exp_col} AS expected_rows "
        "FROM scan CROSS JOIN LATERAL unnest(scan.bad_rows) AS r(j) "
        "CROSS JOIN LATERAL jsonb_populate_record(NULL::{tbl}, r.j) AS rec"
        "{sentinel}"
    ).format(count_expr=count_expr, payload=payload, bad=bad, tbl=tbl, typed_cols=typed_cols,
             exp_col=sql.SQL("NULL::bigint") if expected_rows is None
             else sql.SQL("{}::bigint").format(sql.Literal(int(expected_rows))),
             sentinel=sentinel)


@gate("parity", checks="every row's new column equals its old one (compared by key, NOT NULL), "
      "while the application writes", runs_in="Week 0 Day 1-2 (014 apply, rehearsal), scheduled verification")
def parity_gate(url: str, table: str, pairs: list[tuple[str, str]], key: str = "id",
                expected_rows: int | None = None, *, sample_size: int = 10,
                materialize: bool = True) -> GateResult:
    """Every row's new columns equal its old ones (and are not NULL), compared by key; with
    `expected_rows` (quiet databases only), also the row count.

    `pairs` are (old_column, new_column), e.g. [("qty_open", "quantity_open")].
    observed = number of unexpected rows (mismatching rows, plus one if the row count changed).
    """
    names = ", ".join(f"{new} = {old}" for old, new in pairs)
    expectation = f"every row of {table} has {names} (new columns NOT NULL)"
    if expected_rows is not None:
        expectation += f", and {table} still has {expected_rows} rows"
    require_tables(url, [table], gate=f"parity:{table}")
    result = run_unexpected_rows(
        url,
        name=f"parity:{table}",
        expectation=expectation,
        query=parity_query(table, pairs, key, expected_rows),
        sample_size=sample_size,
        expected_hint=0,
        setup=[COLLECT_AGGREGATE],
        materialize=materialize,
        details={"table": table, "key": key, "pairs": [list(p) for p in pairs],
                 "expected_rows": expected_rows},
    )
    problems: dict[str, int] = {}
    for row in result.sample:
        problems[row.get("problem")] = problems.get(row.get("problem"), 0) + 1
    changed = [r for r in result.sample if r.get("problem") == "row_count_changed"]
    if changed:
        result.details["table_rows"] = changed[0].get("table_rows")
    result.details["sample_problems"] = problems
    return result


# --------------------------------------------------------------------------- plan's own SQL

PLAN_COLUMNS_QUERY = """\
SELECT column_name, data_type, is_nullable
FROM information_schema.columns
WHERE table_name = 'lots'
  AND column_name IN ('quantity_open', 'quantity_original', 'qty_open', 'qty_original')
ORDER BY column_name"""

PLAN_DATA_QUERY = """\
SELECT
    COUNT(*) AS total_lots,
    COUNT(*) FILTER (WHERE quantity_open = qty_open) AS matching_open,
    COUNT(*) FILTER (WHERE quantity_original = qty_original) AS matching_original
FROM lots
WHERE qty_open IS NOT NULL"""


def plan_validation_queries(url: str) -> dict[str, Any]:
    """Run the refactoring plan's own Day 1–2 validation SQL (Task 1.1) verbatim.

    Returns {"columns": [...], "data": {...} | None, "queries": {...}}; "data" is None when the
    lots table lacks one of the four columns (the query could not run), with "data_error" set.
    """
    require_tables(url, ["lots"], gate="plan-validation:lots")
    columns = fetch_all(url, PLAN_COLUMNS_QUERY)
    present = {c["column_name"] for c in columns}
    out: dict[str, Any] = {
        "columns": columns,
        "data": None,
        "queries": {"columns": PLAN_COLUMNS_QUERY, "data": PLAN_DATA_QUERY},
    }
    needed = {"quantity_open", "quantity_original", "qty_open", "qty_original"}
    if needed <= present:
        out["data"] = fetch_all(url, PLAN_DATA_QUERY)[0]
    else:
        out["data_error"] = f"lots lacks column(s) {sorted(needed - present)}"
    return out

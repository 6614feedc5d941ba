"""Catalog reads used by gates and proofs: database code that references columns, and
per-column checksums that survive a change of column order."""
from __future__ import annotations

from psycopg import sql

from runbook.pg import connect
from runbook.tasks.database.sql_rewrite import identifiers


def column_references(url: str, table: str, columns: list[str]) -> list[dict]:
    """Database code that still uses `columns` of `table`: views (pg_depend), functions (an
    identifier of their body, as PostgreSQL's scanner reads it: not a string, a comment or a
    longer name) and triggers (their arguments or WHEN clause)."""
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
        candidates = conn.execute(
            """SELECT 'function', p.oid::regprocedure::text, p.prosrc
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prosrc ~ %s""",
            (pattern,)).fetchall()
        funcs = [(k, n, ", ".join(sorted(identifiers(src) & set(columns))))
                 for k, n, src in candidates if identifiers(src) & set(columns)]
        trigs = conn.execute(
            """SELECT 'trigger', t.tgname || ' ON ' || t.tgrelid::regclass::text, NULL
                 FROM pg_trigger t
                WHERE NOT t.tgisinternal AND t.tgrelid = to_regclass(%s)
                  AND (encode(t.tgargs, 'escape') ~ %s OR pg_get_triggerdef(t.oid) ~ %s)""",
            (table, pattern, pattern)).fetchall()
    return [{"kind": k, "object": n, "column": c} for k, n, c in [*views, *funcs, *trigs]]



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

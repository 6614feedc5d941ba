"""Indexes for foreign keys (Week 0, Task 2.4): found from the catalog, built CONCURRENTLY,
dropped CONCURRENTLY on revert; and the EXPLAIN check that the common queries can use them.

The FK columns lacking an index come from the same catalog query as the fk-index gate
(sql/unindexed_foreign_keys.sql), so "created what the gate wants" holds by
construction. CREATE INDEX CONCURRENTLY cannot run in a transaction (nor a DO block), hence
Python, one statement per index in autocommit, with lock_timeout and retry.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from psycopg import sql

from runbook.pg import connect
from runbook.target import DAWSOS
from runbook.tasks.database import queries
from runbook.tasks.database.migrate import MigrationOptions, with_lock_retry


def index_name(table: str, columns: list[str]) -> str:
    name = f"idx_{table}_{'_'.join(columns)}"
    if len(name) <= 63:
        return name
    return name[:54] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]


def missing(url: str, schema: str = "public") -> list[tuple[str, list[str]]]:
    """(table, FK columns) of every FK without an index leading with exactly its columns."""
    with connect(url) as conn:
        rows = conn.execute(queries.text("unindexed_foreign_keys"), {"schema": schema}).fetchall()
    seen, out = set(), []
    for table, _constraint, columns, _parent in rows:
        key = (table, tuple(columns))
        if key not in seen:
            seen.add(key)
            out.append((table, list(columns)))
    return out


def create_missing(url: str, lock_timeout_ms: int = 2000, schema: str = "public") -> list[str]:
    """Build an index for every unindexed FK; returns the names built (the step's ledger
    record: its revert drops these and nothing else). A valid index that already has the
    generated name is someone's own (it does not cover the FK, or the FK would not be missing):
    it is left alone and the new index gets another name. An INVALID one is what an interrupted
    build of ours left: it is dropped and rebuilt."""
    built = []
    opts = MigrationOptions(lock_timeout_ms=lock_timeout_ms)
    for table, columns in missing(url, schema):
        name = _free_name(url, schema, index_name(table, columns))
        ident = sql.Identifier(schema, name)
        create = sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} ({})").format(
            sql.Identifier(name), sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, columns)))

        def attempt(create=create, ident=ident) -> None:
            with connect(url, autocommit=True) as conn:
                conn.execute(f"SET lock_timeout = '{int(lock_timeout_ms)}ms'")
                valid = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                                     (ident.as_string(conn),)).fetchone()
                if valid is not None and not valid[0]:
                    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(ident))
                conn.execute(create)
        with_lock_retry(attempt, opts, f"index {name} on {table} ({', '.join(columns)})")
        built.append(name)
    return built


def _free_name(url: str, schema: str, name: str) -> str:
    """`name`, or `name_2`, `name_3`... when a valid relation already holds it."""
    with connect(url) as conn:
        candidate, n = name, 2
        while True:
            row = conn.execute("SELECT i.indisvalid FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid"
                               " WHERE c.oid = to_regclass(%s)",
                               (sql.Identifier(schema, candidate).as_string(conn),)).fetchone()
            if row is None or row[0] is False:      # free, or our interrupted build
                return candidate
            candidate, n = f"{name[:60]}_{n}", n + 1


def drop(url: str, names: list[str], lock_timeout_ms: int = 2000, schema: str = "public") -> None:
    opts = MigrationOptions(lock_timeout_ms=lock_timeout_ms)
    for name in names:
        def attempt(name=name) -> None:
            with connect(url, autocommit=True) as conn:
                conn.execute(f"SET lock_timeout = '{int(lock_timeout_ms)}ms'")
                conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, name)))
        with_lock_retry(attempt, opts, f"drop index {name}")


# -- EXPLAIN: can the common queries use an index? ---------------------------------------------

@dataclass(frozen=True)
class Probe:
    description: str
    table: str
    leading: tuple[str, ...]     # the index the plan should use leads with these columns
    query: str                   # {column} placeholders filled from a row of `table`
    any_order: bool = False      # an FK is covered by its columns leading in any order

    def fits(self, index_columns: tuple[str, ...]) -> bool:
        head = index_columns[:len(self.leading)]
        return head == self.leading or (self.any_order and set(head) == set(self.leading))


# the target's hot queries (Task 2.4), as probes
COMMON_QUERIES = tuple(Probe(q.title, q.table, q.leading, q.query) for q in DAWSOS.hot_queries)


def fk_probes(url: str, schema: str = "public") -> list[Probe]:
    """For every FK, the lookup a parent-row delete makes: child rows by the FK columns."""
    with connect(url) as conn:
        rows = conn.execute(
            """SELECT c.relname, array_agg(a.attname::text ORDER BY k.ord)
                 FROM pg_constraint con
                 JOIN pg_class c ON c.oid = con.conrelid
                 JOIN unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) ON true
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                WHERE con.contype = 'f' AND c.relnamespace = to_regnamespace(%s)
                GROUP BY con.oid, c.relname ORDER BY 1, 2""", (schema,)).fetchall()
    def q(name: str) -> str:
        return sql.Identifier(name).as_string(None)
    return [Probe(f"{t} rows of one {', '.join(cols)} (FK lookup)", t, tuple(cols),
                  f"SELECT 1 FROM {q(t)} WHERE " + " AND ".join(f"{q(c)} = {{{c}}}" for c in cols),
                  any_order=True)
            for t, cols in rows]





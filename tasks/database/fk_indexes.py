"""Indexes for foreign keys (Week 0, Task 2.4): found from the catalog, built CONCURRENTLY,
dropped CONCURRENTLY on revert; and the EXPLAIN check that the common queries can use them.

The FK columns lacking an index come from the same catalog query as the fk-index gate
(expectations.integrity.FK_INDEX_QUERY), so "created what the gate wants" holds by
construction. CREATE INDEX CONCURRENTLY cannot run in a transaction (nor a DO block), hence
Python, one statement per index in autocommit, with lock_timeout and retry.
"""
from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass

from psycopg import sql

from runbook.expectations.integrity import FK_INDEX_QUERY
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.database.migrate import MigrationOptions, with_lock_retry


def index_name(table: str, columns: list[str]) -> str:
    name = f"idx_{table}_{'_'.join(columns)}"
    if len(name) <= 63:
        return name
    return name[:54] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]


def missing(url: str, schema: str = "public") -> list[tuple[str, list[str]]]:
    """(table, FK columns) of every FK without an index leading with exactly its columns."""
    with connect(url) as conn:
        rows = conn.execute(FK_INDEX_QUERY.format(schema=sql.Literal(schema))).fetchall()
    seen, out = set(), []
    for table, _constraint, columns, _parent in rows:
        key = (table, tuple(columns))
        if key not in seen:
            seen.add(key)
            out.append((table, list(columns)))
    return out


def create_missing(url: str, lock_timeout_ms: int = 2000, schema: str = "public") -> list[str]:
    """Build an index for every unindexed FK; returns the names built (for revert)."""
    built = []
    opts = MigrationOptions(lock_timeout_ms=lock_timeout_ms)
    for table, columns in missing(url, schema):
        name = index_name(table, columns)
        ident = sql.Identifier(schema, name)
        create = sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} ({})").format(
            sql.Identifier(name), sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, columns)))

        def attempt(create=create, ident=ident) -> None:
            with connect(url, autocommit=True) as conn:
                conn.execute(f"SET lock_timeout = '{int(lock_timeout_ms)}ms'")
                # an interrupted earlier build leaves an INVALID index of that name: rebuild it
                conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(ident))
                conn.execute(create)
        with_lock_retry(attempt, opts, f"index {name} on {table} ({', '.join(columns)})")
        built.append(name)
    return built


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


# the demo services' hot queries (ledger.py, trade_execution.py, corporate_actions.py)
COMMON_QUERIES = (
    Probe("lots of one security in a portfolio", "lots", ("portfolio_id", "security_id"),
          "SELECT id FROM lots WHERE portfolio_id = {portfolio_id} AND security_id = {security_id}"),
    Probe("a portfolio's transactions, newest first", "transactions", ("portfolio_id", "trade_date"),
          "SELECT id FROM transactions WHERE portfolio_id = {portfolio_id} ORDER BY trade_date DESC LIMIT 50"),
)


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


def explain_gate(url: str, probes: list[Probe]) -> GateResult:
    """EXPLAIN each probe with enable_seqscan = off (on a small table the planner rightly
    prefers a seq scan; this asks whether a fitting index is *usable*) and check the plan
    uses an index whose leading columns are the probe's."""
    bad, seen = [], []
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
    return GateResult(name="explain:indexes-used", passed=not bad,
                      expectation="EXPLAIN (enable_seqscan = off) of each common query and FK lookup "
                                  "uses an index leading with its columns",
                      observed=f"{len(probes) - len(bad)}/{len(probes)} use one",
                      expected=f"{len(probes)}/{len(probes)}", sample=bad or seen,
                      details={"plans": seen, "note": "enable_seqscan = off: on small demo tables the "
                               "planner prefers a seq scan; this checks the index is usable"})

"""What the Week 4 gates share: pattern runs as a given user, the largest portfolio and a
one-lot copy of it the gate owns."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from psycopg import sql

from runbook.errors import RunbookError
from runbook.expectations.smoke import declared_inputs, execute, load_pattern
from runbook.expectations.week3.probe import PATTERNS_DIR_SETTING
from runbook.pg import connect
from runbook.tasks.target.api_server import ApiServer

CACHE_HEADER = "X-Cache"


def fresh_user(label: str) -> str:
    """A `sub` nobody used before: its cache scope is empty (the cache key holds the sub)."""
    return f"rb-{label}-{uuid.uuid4().hex[:8]}"


def pattern_spec(server: ApiServer, pattern_id: str) -> dict:
    """The pattern as the server reads it: from a probe API's scratch patterns directory (which
    holds the probe patterns too), else from its checkout."""
    scratch = server.environment.get(PATTERNS_DIR_SETTING)
    if scratch:
        return json.loads((Path(scratch) / f"{pattern_id}.json").read_text())
    return load_pattern(server.checkout, pattern_id)


def run_as(client: httpx.Client, server: ApiServer, pattern_id: str, inputs: dict, sub: str) -> httpx.Response:
    """One run of a pattern with the inputs it declares, as user `sub` in the operator's role."""
    spec = pattern_spec(server, pattern_id)
    return execute(client, server.base_url, pattern_id, declared_inputs(spec, inputs), server.headers(sub=sub))


OPEN_QTY = "coalesce(to_jsonb(l) ->> 'quantity_open', to_jsonb(l) ->> 'qty_open')::numeric > 0"


def largest_portfolio(database_url: str) -> dict:
    """The portfolio with the most open lots: its inputs (one of its securities) and lot count."""
    with connect(database_url) as conn:
        row = conn.execute(
            f"""SELECT l.portfolio_id::text, count(*), min(s.id::text), min(s.symbol)
                  FROM lots l JOIN securities s ON s.id = l.security_id WHERE {OPEN_QTY}
                 GROUP BY l.portfolio_id ORDER BY count(*) DESC, l.portfolio_id LIMIT 1""").fetchone()
        if not row:
            raise RunbookError("no portfolio with open lots in the target database")
        symbol = conn.execute("SELECT symbol FROM securities WHERE id = %s", (row[2],)).fetchone()[0]
    return {"inputs": {"portfolio_id": row[0], "security_id": row[2], "symbol": symbol}, "open_lots": row[1]}


def _portfolio_tables(conn) -> list[tuple[str, list[tuple[str, str, str | None]]]]:
    """Tables keyed by portfolio (not the ones pointing at lots), with their columns."""
    rows = conn.execute(
        """SELECT c.table_name, c.column_name, c.data_type, c.column_default
             FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.table_name <> 'portfolios'
              AND c.table_name IN (SELECT table_name FROM information_schema.columns
                                    WHERE table_schema = 'public' AND column_name = 'portfolio_id')
              AND c.table_name NOT IN (SELECT table_name FROM information_schema.columns
                                        WHERE table_schema = 'public' AND column_name = 'lot_id')
            ORDER BY c.table_name, c.ordinal_position""").fetchall()
    tables: dict[str, list] = {}
    for table, column, kind, default in rows:
        tables.setdefault(table, []).append((column, kind, default))
    return sorted(tables.items(), key=lambda t: t[0] != "lots")     # lots first


@contextmanager
def one_lot_copy(database_url: str, source: dict) -> Iterator[dict]:
    """A portfolio the gate owns: a copy of `source` (its analytics rows too) holding one open
    lot of it; removed afterwards, whatever happened."""
    new_id = str(uuid.uuid4())
    with connect(database_url) as conn:
        tables = _portfolio_tables(conn)
        conn.execute("INSERT INTO portfolios SELECT (jsonb_populate_record(NULL::portfolios, to_jsonb(p) || "
                     "jsonb_build_object('id', %s::uuid, 'name', 'runbook n+1 probe'))).* "
                     "FROM portfolios p WHERE id = %s", (new_id, source["inputs"]["portfolio_id"]))
    try:
        with connect(database_url) as conn:
            for table, columns in tables:
                chosen = [(c, k, d) for c, k, d in columns if not (d or "").startswith("nextval")]
                values = [sql.SQL("%(new)s::uuid") if c == "portfolio_id" else
                          sql.SQL("gen_random_uuid()") if c == "id" and k == "uuid" else sql.Identifier("l", c)
                          for c, k, _d in chosen]
                one = sql.SQL(f" AND {OPEN_QTY} AND l.security_id = %(security)s::uuid ORDER BY l.id LIMIT 1"
                              if table == "lots" else "")
                conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} l WHERE l.portfolio_id = %(old)s::uuid").format(
                    sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c, _k, _d in chosen),
                    sql.SQL(", ").join(values), sql.Identifier(table)) + one,
                    {"new": new_id, "old": source["inputs"]["portfolio_id"],
                     "security": source["inputs"]["security_id"]})
            lots = conn.execute("SELECT count(*) FROM lots WHERE portfolio_id = %s", (new_id,)).fetchone()[0]
        yield {"inputs": {**source["inputs"], "portfolio_id": new_id}, "open_lots": lots}
    finally:
        with connect(database_url) as conn:
            for table, _columns in reversed(tables):
                conn.execute(sql.SQL("DELETE FROM {} WHERE portfolio_id = %s").format(sql.Identifier(table)), (new_id,))
            conn.execute("DELETE FROM portfolios WHERE id = %s", (new_id,))

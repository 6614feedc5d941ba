"""GX-backed gates against a real PostgreSQL (fixture `fresh_db`)."""
from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from runbook.errors import GateFailed, RunbookError
from runbook.expectations.gx import runner as gx_runner
from runbook.expectations.gx.values import sqlalchemy_url
from runbook.expectations.integrity import (
    fk_catalog_gate,
    fk_index_gate,
    invalid_insert_rejected,
    orphans_gate,
)
from runbook.expectations.parity import parity_gate, parity_query, plan_validation_queries
from runbook.gate_result import GateResult

PAIRS = [("qty_open", "quantity_open"), ("qty_original", "quantity_original")]
ROWS = 50


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory):
    """Overrides conftest's for this module: there, the TEST_DATABASE_URL branch `return`s
    from a generator fixture, which pytest rejects ("did not yield a value")."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from runbook.pg import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    yield server.start()
    server.stop()


@pytest.fixture
def db(fresh_db):
    yield fresh_db
    gx_runner.dispose_runner(fresh_db)   # its pooled connection, before the DB is dropped


def execute(url: str, *statements: str, params=None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt, params)


def scalar(url: str, query: str):
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


@pytest.fixture
def lots_db(db):
    execute(db,
            "CREATE TABLE lots (id uuid PRIMARY KEY, qty_open numeric, qty_original numeric, "
            "quantity_open numeric, quantity_original numeric)",
            f"INSERT INTO lots SELECT md5(g::text)::uuid, g % 7, g, g % 7, g "
            f"FROM generate_series(1, {ROWS}) AS g")
    return db


@pytest.fixture
def fk_db(db):
    execute(db,
            "CREATE TABLE portfolios (id int PRIMARY KEY, name text)",
            "CREATE TABLE lots (id int PRIMARY KEY, portfolio_id int, qty numeric)",
            "INSERT INTO portfolios VALUES (1, 'a'), (2, 'b')",
            "INSERT INTO lots VALUES (10, 1, 5), (11, 2, 6), (12, NULL, 7)")
    return db


# --------------------------------------------------------------------------- runner

def test_url_conversion_keeps_unix_socket_args():
    assert sqlalchemy_url("postgresql://postgres@/db?host=/tmp/x") == \
        "postgresql+psycopg://postgres@/db?host=/tmp/x"
    assert sqlalchemy_url("postgres://u:p@h:5432/d").startswith("postgresql+psycopg://u:p@h:5432")
    with pytest.raises(RunbookError):
        sqlalchemy_url("mysql://x/y")


def test_unix_socket_url(lots_db):
    """The same database reached through a unix socket URL (`?host=/dir`)."""
    from urllib.parse import urlsplit

    parts = urlsplit(lots_db)
    if "host=" in parts.query:
        url = lots_db
    else:
        sock = Path("/var/run/postgresql")
        if not (sock / f".s.PGSQL.{parts.port or 5432}").exists():
            pytest.skip("no local unix socket for this server")
        url = f"postgresql://{parts.username or 'postgres'}@{parts.path}?host={sock}" \
              + (f"&port={parts.port}" if parts.port else "")
    try:
        assert parity_gate(url, "lots", PAIRS, expected_rows=ROWS).passed
    finally:
        gx_runner.dispose_runner(url)


def test_run_unexpected_rows_generic(db):
    execute(db, "CREATE TABLE t (id int, note text)",
            "INSERT INTO t VALUES (1, '50% {braces}'), (2, 'ok')")
    res = gx_runner.run_unexpected_rows(
        db, name="t", expectation="no notes with %",
        query="SELECT id, note FROM t WHERE note LIKE '%\\%%'", tables=["t"])
    assert isinstance(res, GateResult)
    assert not res.passed and res.observed == 1 and res.expected == 0
    assert res.sample == [{"id": 1, "note": "50% {braces}"}]
    assert res.details["result"]["observed_value"] == 1
    # the temp table GX validated is gone again
    assert gx_runner.fetch_all(db, "SELECT count(*) AS n FROM pg_class "
                                   "WHERE relname LIKE 'rb_gate_%'")[0]["n"] == 0
    direct = gx_runner.run_unexpected_rows(
        db, name="t", expectation="x", query="SELECT id FROM t WHERE id > 5", materialize=False)
    assert direct.passed and direct.observed == 0


# --------------------------------------------------------------------------- parity

def test_parity_passes_on_equal_data(lots_db):
    res = parity_gate(lots_db, "lots", PAIRS, expected_rows=ROWS)
    assert res.passed, res.summary
    assert res.observed == 0 and res.sample == []
    res.raise_if_failed()
    assert res.to_dict()["name"] == "parity:lots"


def test_parity_mismatch_row_is_sampled(lots_db):
    key = scalar(lots_db, "SELECT id::text FROM lots ORDER BY id LIMIT 1 OFFSET 7")
    execute(lots_db, "UPDATE lots SET quantity_open = quantity_open + 1 WHERE id = %s",
            params=[key])
    res = parity_gate(lots_db, "lots", PAIRS, expected_rows=ROWS)
    assert not res.passed and res.observed == 1
    (row,) = res.sample
    assert row["problem"] == "value_mismatch" and row["id"] == key
    assert row["quantity_open"] == row["qty_open"] + 1
    with pytest.raises(GateFailed, match="parity:lots"):
        res.raise_if_failed()


def test_parity_null_new_value_fails(lots_db):
    key = scalar(lots_db, "SELECT id::text FROM lots ORDER BY id LIMIT 1")
    # both NULL: IS DISTINCT FROM alone would let this through
    execute(lots_db, "UPDATE lots SET qty_original = NULL, quantity_original = NULL "
                     "WHERE id = %s", params=[key])
    res = parity_gate(lots_db, "lots", PAIRS, expected_rows=ROWS)
    assert not res.passed and res.observed == 1
    assert res.sample[0]["id"] == key and res.sample[0]["quantity_original"] is None


def test_parity_row_count_change_detected(lots_db):
    execute(lots_db, "DELETE FROM lots WHERE id IN (SELECT id FROM lots LIMIT 2)")
    res = parity_gate(lots_db, "lots", PAIRS, expected_rows=ROWS)
    assert not res.passed and res.observed == 1
    assert res.sample[0]["problem"] == "row_count_changed"
    assert res.sample[0]["table_rows"] == ROWS - 2 and res.sample[0]["expected_rows"] == ROWS
    assert res.details["table_rows"] == ROWS - 2
    # without expected_rows only values are checked
    assert parity_gate(lots_db, "lots", PAIRS).passed


def test_parity_is_one_scan(lots_db):
    from runbook.expectations.parity import COLLECT_AGGREGATE

    with psycopg.connect(lots_db) as conn:
        conn.execute(COLLECT_AGGREGATE.as_string(None))   # the temp aggregate, this session
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN " + parity_query("lots", PAIRS, "id", ROWS).as_string(None)))
    assert plan.count("Scan on lots") == 1, plan


def test_parity_quotes_identifiers(db):
    execute(db, 'CREATE TABLE "Odd Lots" ("Key" int, "old col" int, "new;col" int)',
            'INSERT INTO "Odd Lots" VALUES (1, 1, 1), (2, 2, 3)')
    res = parity_gate(db, "Odd Lots", [("old col", "new;col")], key="Key", expected_rows=2)
    assert not res.passed and res.sample[0]["Key"] == 2


def test_plan_validation_queries(lots_db):
    out = plan_validation_queries(lots_db)
    assert [c["column_name"] for c in out["columns"]] == [
        "qty_open", "qty_original", "quantity_open", "quantity_original"]
    assert out["data"] == {"total_lots": ROWS, "matching_open": ROWS,
                           "matching_original": ROWS}


# --------------------------------------------------------------------------- integrity

@pytest.mark.gate_fails("orphans")
def test_orphans_gate_catches_orphan(fk_db):
    assert orphans_gate(fk_db, "lots", "portfolio_id", "portfolios").passed
    execute(fk_db, "INSERT INTO lots VALUES (13, 99, 8)")   # no FK yet: the orphan gets in
    res = orphans_gate(fk_db, "lots", "portfolio_id", "portfolios")
    assert not res.passed and res.observed == 1
    assert res.sample == [{"id": 13, "portfolio_id": 99, "qty": 8}]


@pytest.mark.gate_fails("fk-catalog")
def test_fk_catalog_gate_not_valid_then_validated(fk_db):
    expected = [("lots", "portfolio_id", "portfolios")]
    missing = fk_catalog_gate(fk_db, expected)
    assert not missing.passed and missing.sample[0]["problem"] == "missing"
    execute(fk_db, "ALTER TABLE lots ADD CONSTRAINT lots_portfolio_fk FOREIGN KEY "
                   "(portfolio_id) REFERENCES portfolios (id) NOT VALID")
    res = fk_catalog_gate(fk_db, expected)
    assert not res.passed and res.observed == 1
    assert res.sample[0]["problem"] == "not_validated"
    assert res.sample[0]["constraint_name"] == "lots_portfolio_fk"
    execute(fk_db, "ALTER TABLE lots VALIDATE CONSTRAINT lots_portfolio_fk")
    assert fk_catalog_gate(fk_db, expected).passed


@pytest.mark.gate_fails("fk-index")
def test_fk_index_gate_lists_unindexed_fk(fk_db):
    execute(fk_db, "ALTER TABLE lots ADD CONSTRAINT lots_portfolio_fk FOREIGN KEY "
                   "(portfolio_id) REFERENCES portfolios (id)")
    res = fk_index_gate(fk_db)
    assert not res.passed and res.observed == 1
    assert res.sample == [{"table_name": "lots", "constraint_name": "lots_portfolio_fk",
                           "columns": ["portfolio_id"], "parent_table": "portfolios"}]
    execute(fk_db, "CREATE INDEX lots_portfolio_partial ON lots (portfolio_id) "
                   "WHERE qty > 0")                   # partial: does not count
    assert not fk_index_gate(fk_db).passed
    execute(fk_db, "CREATE INDEX lots_portfolio_qty ON lots (portfolio_id, qty)")
    assert fk_index_gate(fk_db).passed


@pytest.mark.gate_fails("fk-rejects")
def test_invalid_insert_rejected(fk_db):
    row = {"id": 20, "portfolio_id": 12345, "qty": 1}
    without = invalid_insert_rejected(fk_db, "lots", row)
    assert not without.passed and without.sample == [row]
    execute(fk_db, "ALTER TABLE lots ADD CONSTRAINT lots_portfolio_fk FOREIGN KEY "
                   "(portfolio_id) REFERENCES portfolios (id)")
    with_fk = invalid_insert_rejected(fk_db, "lots", row)
    assert with_fk.passed, with_fk.summary
    assert with_fk.observed.startswith("ForeignKeyViolation")
    assert with_fk.details["constraint"] == "lots_portfolio_fk"
    assert scalar(fk_db, "SELECT count(*) FROM lots") == 3   # both attempts rolled back


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("gate", [
    lambda u: parity_gate(u, "lots_missing", PAIRS),
    lambda u: orphans_gate(u, "lots_missing", "portfolio_id", "portfolios"),
    lambda u: fk_catalog_gate(u, [("lots_missing", "portfolio_id", "portfolios")]),
    lambda u: invalid_insert_rejected(u, "lots_missing", {"id": 1}),
])
def test_missing_table_is_a_clear_error(fk_db, gate):
    with pytest.raises(RunbookError, match="lots_missing") as info:
        gate(fk_db)
    assert "Traceback" not in str(info.value)
    assert "\n" not in str(info.value)


def test_query_error_is_a_clear_error(db):
    with pytest.raises(RunbookError, match="nope"):
        gx_runner.run_unexpected_rows(db, name="t", expectation="x",
                                      query="SELECT * FROM nope", materialize=False)

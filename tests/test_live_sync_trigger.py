"""The 014 sync trigger never silently loses a write: a statement that writes both names of a
renamed column with different values is refused (nothing stored), naming both columns; the
normal cases (either name alone, both equal) are kept in sync."""
from __future__ import annotations

import psycopg
import pytest
from live_support import demo_db  # noqa: F401

from runbook.pg import connect
from runbook.plan import MIGRATION_014
from runbook.tasks.database import migrate, migration_files

INSERT = ("INSERT INTO lots (portfolio_id, security_id, symbol, quantity, cost_basis, cost_basis_per_share,"
          " acquisition_date, {cols}) VALUES (%s, %s, 'T', 5, 50, 10, '2025-01-02', {vals}) RETURNING id")


@pytest.fixture
def expanded(demo_db):  # noqa: F811
    migrate.apply(demo_db, migration_files.load(MIGRATION_014))
    return demo_db


def lot(conn, key) -> tuple:
    return conn.execute("SELECT qty_open, quantity_open, qty_original, quantity_original FROM lots"
                        " WHERE id = %s", (key,)).fetchone()


def test_update_of_both_names_with_different_values_is_refused(expanded):
    with connect(expanded, autocommit=True) as conn:
        key, before = conn.execute("SELECT id, qty_open FROM lots WHERE qty_open > 5 ORDER BY id LIMIT 1").fetchone()
        with pytest.raises(psycopg.errors.CheckViolation, match="qty_open and quantity_open were both written"):
            conn.execute("UPDATE lots SET qty_open = 4, quantity_open = 3 WHERE id = %s", (key,))
        assert lot(conn, key)[:2] == (before, before)          # nothing stored


def test_insert_of_both_names_with_different_values_is_refused(expanded):
    with connect(expanded, autocommit=True) as conn:
        parent = conn.execute("SELECT portfolio_id, security_id FROM lots LIMIT 1").fetchone()
        n = conn.execute("SELECT count(*) FROM lots").fetchone()[0]
        with pytest.raises(psycopg.errors.CheckViolation,
                           match="qty_original and quantity_original were both written"):
            conn.execute(INSERT.format(cols="qty_original, quantity_original, qty_open",
                                       vals="5, 6, 5"), parent)
        assert conn.execute("SELECT count(*) FROM lots").fetchone()[0] == n


def test_either_name_alone_or_both_equal_stay_in_sync(expanded):
    with connect(expanded, autocommit=True) as conn:
        a, b, c = [r[0] for r in conn.execute("SELECT id FROM lots WHERE qty_open > 5 ORDER BY id LIMIT 3")]
        conn.execute("UPDATE lots SET qty_open = 4 WHERE id = %s", (a,))                    # old code
        conn.execute("UPDATE lots SET quantity_open = 3 WHERE id = %s", (b,))               # new code
        conn.execute("UPDATE lots SET qty_open = 2, quantity_open = 2 WHERE id = %s", (c,))  # both, equal
        assert lot(conn, a)[:2] == (4, 4) and lot(conn, b)[:2] == (3, 3) and lot(conn, c)[:2] == (2, 2)
        parent = conn.execute("SELECT portfolio_id, security_id FROM lots LIMIT 1").fetchone()
        old = conn.execute(INSERT.format(cols="qty_original, qty_open", vals="5, 4"), parent).fetchone()[0]
        new = conn.execute(INSERT.format(cols="quantity_original, quantity_open", vals="5, 3"), parent).fetchone()[0]
        both = conn.execute(INSERT.format(cols="qty_original, quantity_original, qty_open, quantity_open",
                                          vals="5, 5, 1, 1"), parent).fetchone()[0]
        assert lot(conn, old) == (4, 4, 5, 5) and lot(conn, new) == (3, 3, 5, 5)
        assert lot(conn, both) == (1, 1, 5, 5)


def test_a_name_left_at_its_default_on_insert_is_not_a_contradiction(fresh_db):
    """Old code inserting through the old name leaves the new one at its (copied) default: the
    old value is kept in both; the same from the new name; a real contradiction is refused."""
    from runbook.tasks.database import queries

    with connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA runbook")
        conn.execute(queries.text("sync_renamed_columns"))
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, qty numeric DEFAULT 0, quantity numeric DEFAULT 0)")
        conn.execute("CREATE TRIGGER t_sync BEFORE INSERT OR UPDATE ON t FOR EACH ROW"
                     " EXECUTE FUNCTION runbook.sync_renamed_columns('qty', 'quantity')")
        conn.execute("INSERT INTO t (id, qty) VALUES (1, 5)")
        conn.execute("INSERT INTO t (id, quantity) VALUES (2, 7)")
        conn.execute("INSERT INTO t (id) VALUES (3)")
        with pytest.raises(psycopg.errors.CheckViolation, match="qty and quantity were both written"):
            conn.execute("INSERT INTO t (id, qty, quantity) VALUES (4, 5, 6)")
        rows = conn.execute("SELECT id, qty, quantity FROM t ORDER BY id").fetchall()
    assert rows == [(1, 5, 5), (2, 7, 7), (3, 0, 0)]

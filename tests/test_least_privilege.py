"""Least privilege: Day 1-2 runs end to end as a role holding only the grants README lists
(owner of the app's objects, CREATEDB, pg_read_all_stats) — not as a superuser — and a role
missing one of them fails preflight naming it, with nothing changed.

The databases are built by that role, as a real deployment's owner role builds them (its
default privileges for the app role are its own)."""
from __future__ import annotations

import uuid

import pytest
from psycopg import sql

from runbook.flows.week0.day1_2 import standardize_fields
from runbook.pg import connect, drop_database, with_database
from runbook.tasks.database import checksums

pytestmark = pytest.mark.usefixtures("prefect_server")
ROWS = 300


def as_role(url: str, role: str) -> str:
    host = url.split("://", 1)[1].split("@", 1)[1]
    return f"postgresql://{role}@{host}"


def create_role(admin_url: str, *, createdb: bool = True, read_all_stats: bool = True) -> str:
    role = f"rb_runner_{uuid.uuid4().hex[:8]}"
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role)))
        if read_all_stats:
            conn.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(sql.Identifier(role)))
    return role


def drop_role(admin_url: str, role: str) -> None:
    with connect(admin_url, autocommit=True) as conn:
        dbs = [r[0] for r in conn.execute("SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba"
                                          " WHERE r.rolname = %s", [role]).fetchall()]
    for db in dbs:
        drop_database(admin_url, db)
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def owned_target(target, admin_url, monkeypatch):
    """The `target`, but its databases built by a fresh least-privileged role that owns them."""
    from runbook.demo.workspace import seed_template_database

    role = create_role(admin_url)
    role_admin = as_role(admin_url, role)
    template = f"rbtpl_role_{uuid.uuid4().hex[:8]}"
    seed_template_database(role_admin, template, ROWS)
    for url in (target.staging_url, target.database_url):
        name = url.rsplit("/", 1)[1]
        drop_database(admin_url, name)
        with connect(role_admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                          sql.Identifier(template)))
    monkeypatch.setenv("STAGING_DATABASE_URL", as_role(target.staging_url, role))
    monkeypatch.setenv("DATABASE_URL", as_role(target.database_url, role))
    yield target, role
    drop_role(admin_url, role)


def lots_mismatched(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM lots WHERE quantity_open IS DISTINCT FROM qty_open").fetchone()[0]


def test_day1_2_runs_as_the_least_privileged_role(owned_target):
    target, role = owned_target
    with connect(as_role(target.staging_url, role)) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    out = standardize_fields(environment="staging")
    assert out.status == "completed", out
    assert lots_mismatched(target.staging_url) == 0


def revoke(admin_url: str, target, role: str, what: str) -> None:
    r = sql.Identifier(role)
    with connect(admin_url, autocommit=True) as conn:
        if what == "pg_read_all_stats":
            conn.execute(sql.SQL("REVOKE pg_read_all_stats FROM {}").format(r))
        elif what == "createdb":
            conn.execute(sql.SQL("ALTER ROLE {} NOCREATEDB").format(r))
    if what == "ownership":   # one table handed to someone else (the app may still write it)
        with connect(target.staging_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE lots OWNER TO postgres")


@pytest.mark.gate_fails("preflight:privileges")
@pytest.mark.parametrize("what, named", [
    ("pg_read_all_stats", "membership in pg_read_all_stats"),
    ("createdb", "CREATEDB on the rehearsal server"),
    ("ownership", ("ownership of the app's tables and functions (ALTER TABLE, triggers and CREATE OR REPLACE"
                   " FUNCTION need the owner): public.lots")),
])
def test_a_missing_grant_fails_preflight_naming_it(owned_target, admin_url, what, named):
    target, role = owned_target
    revoke(admin_url, target, role, what)
    before = checksums.table_checksums(target.staging_url)
    state = standardize_fields(environment="staging", return_state=True)
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert "preflight:privileges" in message and named in message, message
    assert checksums.table_checksums(target.staging_url) == before
    with connect(target.staging_url) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'lots'"
                            " AND column_name = 'quantity_open'").fetchone()[0] == 0


def test_the_rehearsal_server_url_keeps_the_role():
    assert with_database("postgresql://rb_runner@h:5432/a", "b") == "postgresql://rb_runner@h:5432/b"

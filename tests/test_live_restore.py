"""Restore proofs under traffic: one component (expectations/restore.py) proves, after a
revert beside the live writer, that the catalog of what the change touched is as before and
that every row the application did not write is unchanged; it fails when a row the application
never wrote changed, when an object is left behind, and when it would prove nothing (no table,
tables outside `public` the old checksums could not see)."""
from __future__ import annotations

import pytest
from live_support import LiveWriter, all_committed_writes_present, demo_db, wait_for  # noqa: F401

from runbook.errors import RunbookError
from runbook.expectations.restore import restore_proof
from runbook.pg import connect
from runbook.plan import MIGRATION_014, MIGRATION_015
from runbook.settings import get_settings
from runbook.tasks.database import checksums, migrate, migration_files, restore_baseline
from runbook.tasks.steps.migration import take_restore_baseline

OPTS = migrate.MigrationOptions(batch_size=200, lock_timeout_ms=500)
WRITE_LOG = "SELECT 'public.lots', key::text FROM live_writer.log WHERE at >= %(since)s::timestamptz - interval '5 s'"


@pytest.fixture
def write_log(monkeypatch):
    """The application's write log is the live writer's: proofs verify every other row."""
    monkeypatch.setenv("RESTORE_APP_WRITES_SQL", WRITE_LOG)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def apply_revert_beside_writer(url: str, migration_id: str, between=None, code: str = "both"):
    m = migration_files.load(migration_id)
    with LiveWriter(url, rate=150, code=code) as writer:
        wait_for(writer, 50)
        baseline = take_restore_baseline(url, m)
        migrate.apply(url, m, OPTS)
        restore_baseline.mark_touched(url, baseline)
        wait_for(writer, writer.committed() + 100)
        if between:
            between(url)
        migrate.revert(url, m, OPTS)
        wait_for(writer, writer.committed() + 50)
        stats = writer.stop()
    assert stats.committed > 100, stats
    return restore_proof(url, baseline)


@pytest.mark.parametrize("migration_id", [MIGRATION_014, MIGRATION_015])
def test_revert_beside_the_writer_is_proven_restored(demo_db, write_log, migration_id):  # noqa: F811
    proof = apply_revert_beside_writer(demo_db, migration_id)
    assert proof.passed, proof.sample
    assert proof.details["verified_against_write_log"] is True
    assert "public.lots" in proof.details["tables"] and proof.details["rows_compared"] > 2000
    assert sum(proof.details["written_by_application_meanwhile"].values()) > 0   # named and counted
    assert proof.details["objects_compared"] > 50 and proof.details["left_to_later_changes"] == []
    assert all_committed_writes_present(demo_db).lost == []


@pytest.mark.gate_fails("restored")
def test_a_row_the_application_never_wrote_changed_fails_the_proof(demo_db, write_log):  # noqa: F811
    victim = {}

    def damage(url):
        with connect(url) as conn:        # what a faulty revert could do to a quiet row
            victim["id"] = conn.execute(    # a row the writer never writes (not one it inserted)
                "SELECT id::text FROM lots WHERE id NOT IN (SELECT key FROM live_writer.log)"
                " ORDER BY md5(id::text) DESC LIMIT 1").fetchone()[0]
            conn.execute("UPDATE lots SET symbol = symbol || 'x' WHERE id = %s", (victim["id"],))
    proof = apply_revert_beside_writer(demo_db, MIGRATION_014, damage)
    assert not proof.passed
    assert proof.sample == [{"what": "row changed, not written by the application", "table": "public.lots",
                             "key": victim["id"]}]


@pytest.mark.gate_fails("restored")
def test_an_object_left_behind_fails_the_proof(demo_db):  # noqa: F811
    m = migration_files.load(MIGRATION_014)
    baseline = take_restore_baseline(demo_db, m)
    migrate.apply(demo_db, m, OPTS)
    restore_baseline.mark_touched(demo_db, baseline)
    migrate.revert(demo_db, m, OPTS)
    with connect(demo_db) as conn:       # what a revert could leave behind or change
        conn.execute("CREATE INDEX kept_idx ON lots (qty_open)")
        conn.execute("ALTER TABLE lots ALTER COLUMN qty_open DROP NOT NULL")
    proof = restore_proof(demo_db, baseline, writes=set())
    assert not proof.passed
    assert {s["object"] for s in proof.sample} == {"index kept_idx", "column public.lots.qty_open"}


@pytest.mark.gate_fails("restored")
def test_a_proof_of_no_table_fails_naming_the_cause(demo_db):  # noqa: F811
    proof = restore_proof(demo_db, None, name="restored:x")
    assert not proof.passed and proof.observed == "no restore baseline was recorded before the change"
    with pytest.raises(RunbookError, match="no table to take it of"):
        restore_baseline.take(demo_db, "x", [])


def test_tables_outside_public_are_seen(fresh_db):
    """Issue 9's finding: with the application's tables in their own schema, the checksums
    compared nothing and passed. They are seen now, and no table at all is an error."""
    with pytest.raises(RunbookError, match="comparison over no table would prove nothing"):
        checksums.table_checksums(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute("CREATE SCHEMA app; CREATE TABLE app.lots (id int PRIMARY KEY, qty numeric);"
                     " INSERT INTO app.lots SELECT g, g FROM generate_series(1, 50) g")
    before = checksums.table_checksums(fresh_db)
    assert list(before) == ["app.lots"]
    assert restore_baseline.tables_named(fresh_db, ["UPDATE app.lots SET qty = 1"]) == ["app.lots"]
    baseline = restore_baseline.take(fresh_db, "t", ["app.lots"])
    with connect(fresh_db) as conn:
        conn.execute("UPDATE app.lots SET qty = 0 WHERE id = 7")
    assert checksums.diff(before, checksums.table_checksums(fresh_db)) != []
    proof = restore_proof(fresh_db, baseline, writes=set())
    assert not proof.passed and proof.sample[0]["key"] == "7" and proof.sample[0]["table"] == "app.lots"
    assert checksums.diff({}, {}) != []        # nothing compared is never "equal"


def test_contract_and_its_revert_beside_the_writer(demo_db, write_log):  # noqa: F811
    """017 drops the old names while the new code writes (the old code is gone before a
    contract: its precondition), and its revert brings them back, proven restored; no committed
    write lost, through both names."""
    from runbook.plan import MIGRATION_017

    migrate.apply(demo_db, migration_files.load(MIGRATION_014), OPTS)
    proof = apply_revert_beside_writer(demo_db, MIGRATION_017, code="new")
    assert proof.passed, proof.sample
    with connect(demo_db) as conn:
        names = dict(conn.execute("SELECT names, count(*) FROM live_writer.log GROUP BY names").fetchall())
    assert names.get("new", 0) > 0
    assert all_committed_writes_present(demo_db).lost == []

"""The backfill says which server settings a large relation will strain, before it starts."""
from __future__ import annotations

from runbook.pg import connect
from runbook.plan import MIGRATION_014
from runbook.tasks.database import migrate, migration_files
from runbook.tasks.database.server_advice import ServerFit, advice, read_fit

MB, GB = 2**20, 2**30


def test_a_relation_larger_than_the_server_settings_gets_one_line_per_setting():
    # the 10M-lot bench: 7.8 GB with 2.9 GB of indexes, on the server's defaults
    lines = advice(ServerFit("lots", total_bytes=int(7.8 * GB), index_bytes=int(2.9 * GB),
                             shared_buffers_bytes=128 * MB, max_wal_size_bytes=1 * GB, min_wal_size_bytes=80 * MB))
    assert len(lines) == 2
    assert lines[0].startswith("shared_buffers (128.0 MB) is smaller than the indexes of lots (2.9 GB)")
    assert lines[1].startswith("max_wal_size (1.0 GB) is smaller than lots (7.8 GB with its indexes)")
    # max_wal_size raised but min_wal_size left: a writer's commit now and then creates a segment
    assert advice(ServerFit("lots", int(7.8 * GB), int(2.9 * GB), 4 * GB, 16 * GB, 80 * MB)) == [
        "min_wal_size (80.0 MB) is smaller than lots (7.8 GB with its indexes): the backfill's WAL needs new "
        "segment files, and a writer whose commit creates one waits for its zero-filling; a min_wal_size "
        "above the relation's size keeps recycled segments ready"]
    # the same relation on a server sized for it
    assert advice(ServerFit("lots", int(7.8 * GB), int(2.9 * GB), 4 * GB, 16 * GB, 16 * GB)) == []


def test_the_demo_relation_fits_and_its_backfill_reports_no_advice(demo_db):
    with connect(demo_db) as conn:
        fit = read_fit(conn, "lots")
        buffers = conn.execute("SELECT pg_size_bytes(current_setting('shared_buffers'))").fetchone()[0]
    assert 0 < fit.index_bytes < fit.total_bytes and fit.shared_buffers_bytes == buffers
    report = migrate.apply(demo_db, migration_files.load(MIGRATION_014))
    assert report.rows_backfilled["lots"] > 0 and report.server_advice == {}


def test_a_relation_the_defaults_handle_gets_no_advice():
    # the 1M-lot bench: writers stayed under 50 ms on the server's defaults
    assert advice(ServerFit("lots", int(277 * MB), int(150 * MB), 128 * MB, 1 * GB, 80 * MB)) == []

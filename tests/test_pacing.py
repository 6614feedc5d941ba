"""The backfill paces itself by what the database reports: batch size from what each batch cost
(rows held + its WAL flush), an optional WAL-rate cap, and a replica's replay lag."""
from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from psycopg import sql

from runbook.errors import RunbookError
from runbook.pg import connect
from runbook.plan import MIGRATION_014
from runbook.tasks.database import ledger, migrate, migration_files
from runbook.tasks.database.pacing import PaceLimits, Pacer, ReplicaLagging


def apply_014(url: str, pace: PaceLimits, batch_size: int = 200) -> migrate.ApplyReport:
    opts = migrate.MigrationOptions(batch_size=batch_size, pace=pace)
    return migrate.apply(url, migration_files.load(MIGRATION_014), opts)


def mismatched_lots(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM lots WHERE qty_open IS DISTINCT FROM quantity_open"
                            " OR qty_original IS DISTINCT FROM quantity_original").fetchone()[0]


def test_batches_shrink_over_budget_and_grow_under_it(demo_db):
    tight = apply_014(demo_db, PaceLimits(batch_budget_ms=0.001), batch_size=2000).pacing["lots"]
    assert tight["batches"] > 1 and tight["grows"] == 0
    assert len(tight["steps_seen"]) == 1           # held at the floor: 1/8 of batch_size
    assert mismatched_lots(demo_db) == 0

    migrate.revert(demo_db, migration_files.load(MIGRATION_014))
    loose = apply_014(demo_db, PaceLimits(batch_budget_ms=60_000), batch_size=50).pacing["lots"]
    assert loose["grows"] >= 1 and loose["shrinks"] == 0
    assert mismatched_lots(demo_db) == 0


def test_the_pace_follows_each_batch_cost_between_floor_and_ceiling(fresh_db):
    pacer = Pacer(PaceLimits(batch_budget_ms=20), initial_step=80, max_step=160)
    assert pacer.step == 10                       # slow start at the floor (1/8)
    with connect(fresh_db, autocommit=True) as conn:
        def batch(held_ms: float) -> int:
            pacer.before_batch(conn)
            pacer._t0 -= held_ms / 1000           # as if the batch had held the table this long
            pacer.after_batch(conn)
            return pacer.step
        assert [batch(5) for _ in range(4)] == [15, 23, 35, 53]   # cheap: grows 1.5x a batch
        assert batch(40) == 26                    # twice the budget: halves
        assert batch(400) == 10                   # far over: down to the floor, never below
        assert [batch(1) for _ in range(8)][-1] == 160            # capped at the ceiling
    assert pacer.stats.shrinks == 2 and pacer.stats.grows >= 5


def test_a_slow_commit_makes_the_backfill_rest_before_the_next_batch(fresh_db):
    """The batch's commit is the WAL fsync writers queue behind: over max_commit_ms, the pacer
    rests for the commit's time, times how far over it was; under it, never."""
    def run(limit, commits_ms):
        pacer = Pacer(PaceLimits(batch_budget_ms=20, max_commit_ms=limit), initial_step=80, max_step=160)
        with connect(fresh_db, autocommit=True) as conn:
            for ms in commits_ms:
                pacer.before_batch(conn)
                pacer.before_commit()
                pacer._commit_t0 -= ms / 1000             # as if the commit had taken this long
                pacer.after_batch(conn)
        return pacer.stats
    quick = run(10, [2, 5, 9])
    assert quick.commit_rests == 0 and quick.slept_s == 0
    slow = run(10, [5, 40, 400])
    assert slow.commit_rests == 2 and slow.max_commit_ms >= 400
    assert slow.slept_s == pytest.approx(0.040 * 4 + 1.0, abs=0.01)   # 160 ms, then the 1 s ceiling
    unlimited = run(None, [400])
    assert unlimited.commit_rests == 0 and unlimited.slept_s == 0


def test_fixed_batches_when_pacing_is_off(demo_db):
    fixed = apply_014(demo_db, PaceLimits(batch_budget_ms=0)).pacing["lots"]
    assert fixed["shrinks"] == fixed["grows"] == 0 and len(fixed["steps_seen"]) == 1
    assert mismatched_lots(demo_db) == 0


def test_wal_rate_cap_spaces_the_batches(demo_db):
    capped = apply_014(demo_db, PaceLimits(batch_budget_ms=0, max_wal_mb_s=0.05)).pacing["lots"]
    assert capped["wal_bytes"] > 0
    assert capped["slept_s"] > 0                  # the cap made the backfill wait for its slot
    assert mismatched_lots(demo_db) == 0


@pytest.mark.parametrize("kwargs, named", [({"batch_budget_ms": -1}, "batch_budget_ms"),
                                           ({"max_wal_mb_s": 0}, "max_wal_mb_s"),
                                           ({"workers": 0}, "workers"), ({"workers": 17}, "workers"),
                                           ({"max_commit_ms": 0}, "max_commit_ms"),
                                           ({"wal_compression": "gzip"}, "wal_compression")])
def test_bad_pace_is_refused_naming_it(kwargs, named):
    with pytest.raises(ValueError, match=named):
        PaceLimits(**kwargs)


def test_segments_cover_the_blocks_once():
    assert migrate._segments(0, 2) == []                   # an empty table: nothing to walk
    assert migrate._segments(3, 8) == [[0, 1], [1, 2], [2, 3]]
    assert migrate._segments(1001, 2) == [[0, 500], [500, 1001]]


def test_workers_walk_their_own_segments_and_a_resume_keeps_the_segments(demo_db):
    """Three sessions backfill lots, each over its own blocks; stopped midway and resumed with
    one worker asked for, the run finishes the three segments it began with."""
    m = migration_files.load(MIGRATION_014)
    with pytest.raises(RunbookError, match="stopped after 4 backfill batches"):
        migrate.apply(demo_db, m, migrate.MigrationOptions(
            batch_size=40, pace=PaceLimits(batch_budget_ms=0, workers=3), stop_after_batches=4))
    assert 0 < mismatched_lots(demo_db)
    with connect(demo_db) as conn:
        segments = {name: (key["block"], finished) for name, key, finished in conn.execute(
            "SELECT table_name, last_key, finished FROM runbook.checkpoints WHERE table_name LIKE 'lots#%'")}
        layout = conn.execute("SELECT last_key->'segments' FROM runbook.checkpoints"
                              " WHERE table_name = 'lots'").fetchone()[0]
    assert len(layout) == 3 and layout[0][0] == 0 and all(a[1] == b[0] for a, b in zip(layout, layout[1:]))
    assert set(segments) <= {"lots#0", "lots#1", "lots#2"} and not any(f for _, f in segments.values())
    progress = ledger.backfill_progress(demo_db, MIGRATION_014)["lots"]
    assert progress["started"] and not progress["finished"] and progress["rows_done"] > 0

    report = migrate.apply(demo_db, m, migrate.MigrationOptions(
        batch_size=40, pace=PaceLimits(batch_budget_ms=0, workers=1)))
    assert mismatched_lots(demo_db) == 0
    progress = ledger.backfill_progress(demo_db, MIGRATION_014)["lots"]
    with connect(demo_db) as conn:
        lots = conn.execute("SELECT count(*) FROM lots").fetchone()[0]
        finished = conn.execute("SELECT count(*) FROM runbook.checkpoints WHERE table_name LIKE 'lots#%%'"
                                " AND finished").fetchone()[0]
    assert progress["finished"] and progress["rows_done"] == lots and progress["side_effects"] == 0
    assert finished == 3 and report.rows_backfilled["lots"] < lots      # only what was left


# -- a real streaming replica ------------------------------------------------------------------

@contextmanager
def lagging_replica(pair):
    """A seeded primary whose replica has stopped replaying (and has reported it): yields the
    primary's URL and the standby's connection (replay resumed on the way out)."""
    from runbook.demo.workspace import seed_template_database

    seed_template_database(pair.url(), "dawsos", 300)
    url = pair.url("dawsos")
    with connect(pair.url(replica=True), autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        with connect(url, autocommit=True) as conn:   # WAL the replica has not replayed
            conn.execute("UPDATE lots SET cost_basis = cost_basis")
        time.sleep(1.5)                                # its status report says so
        try:
            yield url, standby
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")


def test_backfill_waits_while_a_replica_lags_then_goes_on(replicated_pair):
    with lagging_replica(replicated_pair) as (url, standby):
        threading.Timer(1.0, lambda: standby.execute("SELECT pg_wal_replay_resume()")).start()
        report = apply_014(url, PaceLimits(batch_budget_ms=0, max_replica_lag_s=0.5, replica_wait_max_s=60))
    assert report.pacing["lots"]["replica_waits"] >= 1
    assert mismatched_lots(url) == 0


def test_backfill_gives_up_naming_the_lag_when_the_replica_never_catches_up(replicated_pair):
    with lagging_replica(replicated_pair) as (url, _standby), \
            pytest.raises(ReplicaLagging, match=r"a replica lags [\d.]+ s \(allowed 0.5 s\)"):
        apply_014(url, PaceLimits(batch_budget_ms=0, max_replica_lag_s=0.5, replica_wait_max_s=2))


def test_backfill_wal_is_compressed_for_a_superuser_and_goes_on_without_for_another_role(fresh_db):
    """wal_compression is superuser-only: a least-privileged runner keeps the server's setting,
    and the stats say which the backfill got."""
    pacer = Pacer(PaceLimits(wal_compression="lz4"), initial_step=8, max_step=8)
    with connect(fresh_db, autocommit=True) as conn:
        pacer.configure_session(conn)
        assert conn.execute("SHOW wal_compression").fetchone()[0] == "lz4"
        server = conn.execute("SELECT boot_val FROM pg_settings WHERE name = 'wal_compression'").fetchone()[0]
    assert pacer.stats.to_dict()["wal_compression"] == "lz4"

    role = f"rb_pace_{uuid.uuid4().hex[:8]}"
    with connect(fresh_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        plain = Pacer(PaceLimits(wal_compression="lz4"), initial_step=8, max_step=8)
        with connect(f"postgresql://{role}@{fresh_db.split('@', 1)[1]}", autocommit=True) as conn:
            plain.configure_session(conn)
            assert conn.execute("SELECT 1").fetchone()[0] == 1          # the session is still usable
            assert conn.execute("SHOW wal_compression").fetchone()[0] == server
    finally:
        with connect(fresh_db, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert plain.stats.wal_compression == f"{server} (lz4 refused: InsufficientPrivilege)"

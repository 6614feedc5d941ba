"""Acceptance on a live database: the Week 0 flows beside the application writing to lots
(bench/live_writer.py: inserts, updates, deletes at ~150 writes/s, through the old names and,
once the new code is possible, the new ones). The flows complete on staging and production; a
gate made to fail in Day 1-2 and in Day 3-4 rolls back with its restore proof passing; and no
committed write of the application is lost, through both names while both exist."""
from __future__ import annotations

import pytest
from live_support import LiveWriter, all_committed_writes_present, wait_for

from runbook.flows.week0.day1_2 import standardize_fields
from runbook.flows.week0.day3_4 import integrity_and_pooling
from runbook.pg import connect
from runbook.plan import MIGRATION_014, MIGRATION_015
from runbook.settings import get_settings
from runbook.tasks.database import ledger

pytestmark = pytest.mark.usefixtures("prefect_server")
# the application's write log, for the restore proofs: every other row must be unchanged
WRITE_LOG = "SELECT 'public.lots', key::text FROM live_writer.log WHERE at >= %(since)s::timestamptz - interval '5 s'"


@pytest.fixture
def live(target, monkeypatch):
    monkeypatch.setenv("RESTORE_APP_WRITES_SQL", WRITE_LOG)
    get_settings.cache_clear()
    writers = {url: LiveWriter(url, rate=150).start() for url in (target.staging_url, target.database_url)}
    for w in writers.values():
        wait_for(w, 50)
    yield writers
    for w in writers.values():
        w.stop()
    get_settings.cache_clear()


def stop_and_check(writers: dict) -> dict:
    """Stop the writers; every committed write is in the table (0 lost)."""
    out = {}
    for url, w in writers.items():
        stats = w.stop()
        check = all_committed_writes_present(url)
        assert check.lost == [], (url, check.lost[:5])
        out[url] = (stats, check)
    return out


def assert_rolled_back_and_restored(state, writers: dict, slack_standin, gate: str, migration_id: str) -> None:
    """The run failed on `gate`, the alert names it and the migration rolled back, no restore
    check failed, and no committed write of the application was lost."""
    assert state.is_failed()
    stop_and_check(writers)
    alert = slack_standin.bodies()
    assert gate in alert and f"{migration_id}:apply" in alert
    assert "restore check failed" not in alert and "NOT restored" not in alert


def proofs_published(state, gate_name: str) -> list[bool]:
    """Whether each restore proof `gate_name` the failed run published passed (its artifact)."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    key = "gate-" + "".join(c if c.isalnum() else "-" for c in gate_name.lower()).strip("-")
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key[:100]]), flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    return [a.data.startswith(f"### ✅ {gate_name}") for a in arts]


def new_names_written(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT count(*) FROM live_writer.log WHERE names = 'new'").fetchone()[0]


def test_day1_2_and_day3_4_complete_beside_the_writer(target, live, slack_standin):
    for flow in (standardize_fields, integrity_and_pooling):
        for env in ("staging", "production"):
            assert flow(environment=env, require_approval=False).status == "completed", (flow.name, env)
    for url, w in live.items():
        wait_for(w, w.committed() + 100)
    results = stop_and_check(live)
    for url, (stats, check) in results.items():
        print(f"\nlive writer on {url.rsplit('/', 1)[-1]}: {stats.committed} writes, {stats.rate:.0f}/s")
        assert check.writes > 500 and new_names_written(url) > 0        # both codes wrote
        assert ledger.migration_state(url, MIGRATION_014)["status"] == "applied"
        assert ledger.migration_state(url, MIGRATION_015)["status"] == "applied"
    assert slack_standin.requests == []


def test_day1_2_gate_failure_rolls_back_with_its_restore_proof(target, live, slack_standin):
    """The deployment re-introduces an old name: the old-names gate fails after 014 and the
    code update; both are reverted while the app writes, and the proof holds."""
    hook = target.repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\ncase \"$PWD\" in */deploy/*) "
                    "printf 'LEGACY_FIELD = \"qty_open\"\\n' >> backend/app/services/common.py;; esac\n")
    hook.chmod(0o755)
    state = standardize_fields(environment="staging", return_state=True)
    hook.unlink()
    assert_rolled_back_and_restored(state, live, slack_standin, "code:old-names", MIGRATION_014)
    assert ledger.migration_state(target.staging_url, MIGRATION_014)["status"] == "reverted"
    # the staging rehearsal's proof (scratch copy) and the rollback's (the live database)
    assert proofs_published(state, "restored:014_standardize_quantity_fields") == [True, True]


def test_day3_4_gate_failure_rolls_back_with_its_restore_proof(target, live, slack_standin):
    """Drift on live (a hotfix column) fails the last gate: 015 (quarantine, FKs), 016, the FK
    indexes and both code updates are reverted while the app writes, and the proofs hold."""
    for env in ("staging",):
        assert standardize_fields(environment=env, require_approval=False).status == "completed"
    with connect(target.staging_url) as conn:
        conn.execute("ALTER TABLE audit_log ADD COLUMN hotfix_note text")
    state = integrity_and_pooling(environment="staging", return_state=True)
    assert_rolled_back_and_restored(state, live, slack_standin, "schema:rebuild-matches-live", MIGRATION_015)
    assert ledger.migration_state(target.staging_url, MIGRATION_015)["status"] == "reverted"
    assert proofs_published(state, "restored:015_add_fk_constraints") == [True, True]
    assert proofs_published(state, "restored:016_add_indexes") == [True, True]
    assert ledger.migration_state(target.staging_url, MIGRATION_014)["status"] == "applied"


def test_rollback_flows_beside_the_writer(target, live, slack_standin):
    """Day 1-2 completes on staging and production; on each, its code is rolled back
    (rollback-code), then 014 (rollback-migration) with its proof against the baseline taken
    before the apply — all while the app writes."""
    from runbook.flows.rollback import rollback_code, rollback_migration

    runs = {}
    for env in ("staging", "production"):
        out = standardize_fields(environment=env, require_approval=False, return_state=True)
        assert out.is_completed(), env
        runs[env] = str(out.state_details.flow_run_id)
    for env, url in (("production", target.database_url), ("staging", target.staging_url)):
        code = rollback_code(run=runs[env], environment=env)
        assert code["reverted"] and all(g["passed"] for g in code["gates"]), env
        report = rollback_migration(migration_id=MIGRATION_014, environment=env, revert_code=False)
        proof = next(g for g in report["gates"] if g["name"] == f"restored:{MIGRATION_014}")
        assert proof["passed"], (env, proof["sample"])
        assert proof["details"]["verified_against_write_log"] is True
        assert sum(proof["details"]["written_by_application_meanwhile"].values()) > 0
        assert ledger.migration_state(url, MIGRATION_014)["status"] == "reverted"
    stop_and_check(live)
    assert slack_standin.requests == []


def test_contract_flow_beside_the_new_code(target, slack_standin, monkeypatch):
    """After Day 1-2 and a green verification day, the contract flow drops the old columns while
    the new code (the only one left by then) keeps writing: 017 applied, 0 writes lost."""
    from runbook.flows.contract import contract_quantity_fields
    from runbook.flows.verification import verification
    from runbook.plan import MIGRATION_017

    monkeypatch.setenv("RESTORE_APP_WRITES_SQL", WRITE_LOG)
    get_settings.cache_clear()
    urls = {"staging": target.staging_url, "production": target.database_url}
    writers = {url: LiveWriter(url, rate=150).start() for url in urls.values()}
    for w in writers.values():
        wait_for(w, 50)
    for env in urls:
        assert standardize_fields(environment=env, require_approval=False).status == "completed"
        assert not verification(environment=env).failed
    stop_and_check(writers)                                          # the old code is retired here
    writers = {url: LiveWriter(url, rate=150, code="new").start() for url in urls.values()}
    try:
        for env, url in urls.items():
            wait_for(writers[url], 50)
            outcome = contract_quantity_fields(environment=env, min_green_days=1, require_approval=False)
            assert outcome.status == "completed" and f"{MIGRATION_017}:apply" in " ".join(outcome.applied)
            wait_for(writers[url], writers[url].committed() + 50)
    finally:
        stop_and_check(writers)
    for url in urls.values():
        assert ledger.migration_state(url, MIGRATION_017)["status"] == "applied"
    assert slack_standin.requests == []
    get_settings.cache_clear()


def test_day5_beside_the_writer(target, live, slack_standin):
    from runbook.flows.week0.day5 import security_fixes

    for flow in (standardize_fields, integrity_and_pooling, security_fixes):
        for env in ("staging", "production"):
            assert flow(environment=env, require_approval=False).status == "completed", (flow.name, env)
    # the authorization gate judged refused writes on its own rows while the app kept writing
    for url, (_stats, check) in stop_and_check(live).items():
        assert check.writes > 100, url
    assert slack_standin.requests == []

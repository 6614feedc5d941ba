"""Scratch databases carry the run id: staging and production databases that share a name
rehearse on one server at once without dropping each other's scratch copy."""
from __future__ import annotations

import uuid
from pathlib import Path

from runbook.context import RunContext
from runbook.pg import connect, drop_database, recreate_database


def ctx(environment: str, url: str) -> RunContext:
    return RunContext(flow_name="week0-day1-2", environment=environment, database_url=url,
                      rehearsal_server_url=url, repo=Path("."), workspace=Path("."), backup_dir=Path("."),
                      flow_run_id=str(uuid.uuid4()))


def test_two_environments_named_alike_rehearse_side_by_side(admin_url):
    # two environments whose databases have one name (here both on the test server)
    staging, production = ctx("staging", admin_url), ctx("production", admin_url)
    names = [staging.rehearsal_db, production.rehearsal_db]
    assert names[0] != names[1] and all(n.endswith("_postgres") and len(n) <= 63 for n in names)
    try:
        for name in names:   # both scratch copies live on the staging server at once
            recreate_database(admin_url, name)
        with connect(admin_url) as conn:
            found = {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)",
                                                [names]).fetchall()}
        assert found == set(names)
    finally:
        for name in names:
            drop_database(admin_url, name)

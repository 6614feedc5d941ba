"""Week 0 Day 1-2 end to end: real PostgreSQL, real Prefect server, real git, real API,
Slack stand-in."""
from __future__ import annotations

import pytest

from flows.week0.day1_2 import standardize_fields
from runbook.pg import connect
from tasks import checksums, git_ops

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_staging_then_production(target, slack_standin):
    before = checksums.table_checksums(target.database_url)
    out = standardize_fields(environment="staging")
    assert out.status == "completed"
    out = standardize_fields(environment="production", require_approval=False)
    assert "014_standardize_quantity_fields:apply" in out.applied
    with connect(target.database_url) as conn:
        n, mismatched = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE quantity_open IS DISTINCT FROM qty_open"
            " OR quantity_original IS DISTINCT FROM qty_original) FROM lots").fetchone()
    assert n == int(before["lots"].split(":")[0]) and mismatched == 0
    prod = target.deploy["production"]
    assert "quantity_open" in (prod / "backend/app/services/trade_execution.py").read_text()
    assert slack_standin.requests == []

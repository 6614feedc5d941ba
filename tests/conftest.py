"""Shared fixtures: a real PostgreSQL server (the machine's, via TEST_DATABASE_URL, or the
embedded pgserver) and throwaway databases on it."""
from __future__ import annotations

import os
import uuid

import pytest

from runbook.pg import EmbeddedPostgres, drop_database, recreate_database


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory) -> str:
    """URL of a maintenance database on a real server; tests create their databases from it."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), keep_running=False)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def fresh_db(admin_url):
    """A new empty database; dropped afterwards."""
    name = f"rbtest_{uuid.uuid4().hex[:10]}"
    url = recreate_database(admin_url, name)
    yield url
    drop_database(admin_url, name)

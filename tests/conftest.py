"""Shared fixtures: a real PostgreSQL server (the machine's, via TEST_DATABASE_URL, or the
embedded pgserver), throwaway databases, a real Prefect test server, the Slack stand-in, and
a complete DawsOS target (production + staging databases, git repo, workspace)."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql
from replica import replicated_pair  # noqa: F401  (the fixture, shared)
from slack_standin import slack_standin  # noqa: F401  (the fixture, shared)

from runbook.pg import EmbeddedPostgres, connect, drop_database, recreate_database, with_database

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
DEMO_ROWS = 2000
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def admin_url() -> str:
    """URL of a maintenance database on a real server; tests create their databases from it."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    # pgserver runs as its own user when we are root: a plain /tmp dir it can own
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="rb-pg-")), keep_running=False)
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


@pytest.fixture
def demo_db(admin_url, seeded_template):
    """A copy of the seeded real-structure demo database (DEMO_ROWS lots)."""
    name = f"rbreal_{uuid.uuid4().hex[:10]}"
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                      sql.Identifier(seeded_template)))
    yield with_database(admin_url, name)
    drop_database(admin_url, name)


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect API (temporary server + database) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def seeded_template(admin_url):
    """One seeded DawsOS database per session; targets are copied from it (fast)."""
    from runbook.demo.workspace import seed_template_database

    name = f"rbtpl_{uuid.uuid4().hex[:8]}"
    seed_template_database(admin_url, name, DEMO_ROWS)
    yield name
    drop_database(admin_url, name)


@dataclass
class Target:
    database_url: str
    staging_url: str
    repo: Path
    workspace: Path
    backup_dir: Path

    @property
    def deploy(self) -> dict[str, Path]:
        return {env: self.workspace / "deploy" / env for env in ("staging", "production")}


@pytest.fixture
def target(admin_url, seeded_template, tmp_path, monkeypatch, slack_standin) -> Target:  # noqa: F811
    """A complete DawsOS target the runbook is configured for (settings via env), with
    Slack pointed at the stand-in."""
    from psycopg import sql

    from runbook.demo.workspace import TEMPLATE, init_repo
    from runbook.pg import connect
    from runbook.settings import get_settings

    tag = uuid.uuid4().hex[:8]
    names = {"prod": f"rbprod_{tag}", "staging": f"rbstg_{tag}"}
    with connect(admin_url, autocommit=True) as conn:
        for name in names.values():
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(seeded_template)))
    workspace = tmp_path / "ws"
    repo = workspace / "repo"
    workspace.mkdir()
    init_repo(TEMPLATE, repo)
    t = Target(with_database(admin_url, names["prod"]), with_database(admin_url, names["staging"]),
               repo, workspace, workspace / "backups")
    env = {"DATABASE_URL": t.database_url, "STAGING_DATABASE_URL": t.staging_url,
           "TARGET_REPO": str(repo), "RUNBOOK_WORKSPACE": str(workspace), "BACKUP_DIR": str(t.backup_dir),
           "SLACK_WEBHOOK_URL": slack_standin.webhook_url()}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("TARGET_API_URL", "SLACK_BOT_TOKEN", "PREFECT_UI_URL"):
        monkeypatch.delenv(k, raising=False)
    get_settings.cache_clear()
    yield t
    get_settings.cache_clear()
    # a managed API or Redis a flow started (and a failed step left up) stops with its test
    from runbook.tasks.target.api_server import stop_leftover
    from runbook.tasks.target.redis_server import RedisServer
    for pid_file in (workspace / "deploy").glob("*.api.pid"):
        stop_leftover(pid_file)
    for pid_file in (workspace / "redis").glob("*/redis.pid"):
        RedisServer(pid_file.parent).stop_leftover()
    for name in names.values():
        drop_database(admin_url, name)


@pytest.fixture(scope="session")
def installed_python(tmp_path_factory) -> Path:
    """`pip install .` (not editable) of this checkout into a fresh venv that borrows this
    venv's dependencies: what a user of the package gets, package data and all, and nothing of
    the source tree (this venv's editable finder is not loaded there). Its python."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # one build at a time in this checkout (pytest-xdist workers share its build/ tree)
    with open(ROOT / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(ROOT / "build", ignore_errors=True)     # setuptools would reuse a stale build tree
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(ROOT)],
                       check=True, capture_output=True, timeout=600)
    return python


@pytest.fixture(scope="session")
def week0_template(admin_url, seeded_template):
    """The seeded database after Week 0's migration 014 (expand: old and new names side by
    side), applied with `runbook migrate apply`: the database Weeks 0-1's code runs on."""
    name = f"rbw0_{uuid.uuid4().hex[:8]}"
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                      sql.Identifier(seeded_template)))
    url = with_database(admin_url, name)
    runbook = str(Path(sys.executable).parent / "runbook")
    proc = subprocess.run([runbook, "migrate", "apply", "014", "--database-url", url],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    yield name
    drop_database(admin_url, name)


@pytest.fixture
def week3_target(target, admin_url, week0_template) -> Target:
    """A target as Weeks 0-1 leave it: both databases copies of the Week 0 database, the
    team's change-set branches built (plan/weeks0-1, plan/week3-…), and both environments
    deployed at plan/weeks0-1 (their API not started yet)."""
    from runbook.demo.change_sets import BASE_BRANCH, build_branches
    from runbook.tasks.code import git_ops

    for url in (target.database_url, target.staging_url):
        name = url.rsplit("/", 1)[1].split("?")[0]
        with connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                          sql.Identifier(week0_template)))
    build_branches(target.repo)
    for env, path in target.deploy.items():
        git_ops.worktree(target.repo, path, BASE_BRANCH)
    return target

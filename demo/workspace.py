"""The demo workspace: embedded PostgreSQL with a production and a staging database, seeded
alike, and the DawsOS backend repo copied from the template and git-initialised."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from runbook.demo.change_sets import build_branches
from runbook.demo.seed import seed
from runbook.errors import RunbookError
from runbook.pg import EmbeddedPostgres, connect, with_database
from runbook.tasks.code.git_ops import git
from runbook.tasks.database.schema_build import load_schema

TEMPLATE = Path(__file__).resolve().parent / "template"
PRODUCTION_DB = "dawsos"
STAGING_DB = "dawsos_staging"
# the seeded state both databases start from: a reused workspace is reset from it
SEED_DB = "dawsos_seed"


@dataclass
class Workspace:
    root: Path
    admin_url: str
    rows: int
    built_s: float = 0.0
    reused: bool = False
    server: EmbeddedPostgres | None = None

    def stop(self) -> None:
        """Stop the embedded PostgreSQL this workspace started."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def database_url(self) -> str:
        return with_database(self.admin_url, PRODUCTION_DB)

    @property
    def staging_url(self) -> str:
        return with_database(self.admin_url, STAGING_DB)

    def env(self) -> dict[str, str]:
        """Settings that point the runbook at this workspace."""
        return {"DATABASE_URL": self.database_url, "STAGING_DATABASE_URL": self.staging_url,
                "TARGET_REPO": str(self.repo), "BACKUP_DIR": str(self.root / "backups"),
                "RUNBOOK_WORKSPACE": str(self.root)}


def init_repo(template: Path, dest: Path) -> str:
    shutil.copytree(template, dest, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
    ident = ["-c", "user.name=DawsOS dev", "-c", "user.email=dev@dawsos.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*ident, "commit", "-q", "-m", "DawsOS backend before the refactor"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True)
    return subprocess.run(["git", "-C", str(dest), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def build_database(admin_url: str, name: str, repo: Path, rows: int, template_db: str | None = None) -> None:
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if template_db:   # an exact copy, far faster than seeding again
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template_db)))
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    load_schema(url, repo)
    seed(url, rows)


def seed_template_database(admin_url: str, name: str, rows: int) -> str:
    """A seeded database to copy from (CREATE DATABASE ... TEMPLATE): tests use one per session."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        init_repo(TEMPLATE, Path(tmp) / "repo")
        build_database(admin_url, name, Path(tmp) / "repo", rows)
    return with_database(admin_url, name)


def stop_workspace_server(root: Path) -> bool:
    """Stop the embedded PostgreSQL of the workspace at root, if one runs; True when it did."""
    server = EmbeddedPostgres(Path(root).resolve() / "pg", keep_running=False)
    running = (server.datadir / "postmaster.pid").exists()
    server.stop_if_running()
    return running


def remove_workspace(root: Path, keep: tuple[str, ...] = ()) -> None:
    """Stop its server and delete the workspace (except the entries named in keep, e.g. logs)."""
    root = Path(root).resolve()
    if not root.exists():
        return
    stop_workspace_server(root)
    for entry in root.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def reset_workspace(ws: Workspace) -> None:
    """Back to the seeded start: both databases copied from the seed database again, the
    deployed worktrees and the runbook's environment branches gone (the repo's own history is
    kept), backups and scratch files removed. A second demo then runs the plan from the start
    instead of over what the first one left (e.g. Day 1-2's parity after Day 3-4's quarantine)."""
    with connect(ws.admin_url, autocommit=True) as conn:
        has_seed = conn.execute("SELECT EXISTS (SELECT FROM pg_database WHERE datname = %s)",
                                (SEED_DB,)).fetchone()[0]
    if not has_seed:   # a workspace built before seed templates: seed one now
        build_database(ws.admin_url, SEED_DB, ws.repo, ws.rows)
    for name in (PRODUCTION_DB, STAGING_DB):
        build_database(ws.admin_url, name, ws.repo, ws.rows, template_db=SEED_DB)
    for sub in ("deploy", "tmp", "backups"):
        shutil.rmtree(ws.root / sub, ignore_errors=True)
    git(ws.repo, "worktree", "prune")
    branches = git(ws.repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/runbook/").split()
    if branches:
        git(ws.repo, "branch", "-q", "-D", *branches)


def open_workspace(root: Path, *, fresh: bool = False, rows: int = 10_000, keep_running: bool = True,
                   reset: bool = False) -> Workspace:
    """Build the workspace at root, or reuse it (reset to its seeded start when `reset`).
    keep_running=False: the embedded PostgreSQL stops when this process exits (or ws.stop())."""
    root = Path(root).resolve()
    marker = root / "workspace.json"
    if fresh:
        remove_workspace(root)
    started = time.perf_counter()
    server = EmbeddedPostgres(root / "pg", keep_running=keep_running)
    admin = server.start()
    if marker.exists():
        info = json.loads(marker.read_text())
        ws = Workspace(root, admin, info["rows"], reused=True, server=server)
        if reset:
            reset_workspace(ws)
        build_branches(ws.repo)     # the change sets as this version of the project ships them
        return ws
    if (root / "repo").exists():
        raise RunbookError(f"workspace {root} is incomplete (a build was interrupted); rerun with --fresh")
    init_repo(TEMPLATE, root / "repo")
    build_branches(root / "repo")   # the team's change sets (Weeks 3-4), as branches plan/...
    build_database(admin, SEED_DB, root / "repo", rows)
    for name in (PRODUCTION_DB, STAGING_DB):
        build_database(admin, name, root / "repo", rows, template_db=SEED_DB)
    ws = Workspace(root, admin, rows, built_s=time.perf_counter() - started, server=server)
    marker.write_text(json.dumps({"rows": rows, "built_s": round(ws.built_s, 2)}))
    return ws

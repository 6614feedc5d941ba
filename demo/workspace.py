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

from runbook.demo.seed import seed
from runbook.errors import RunbookError
from runbook.pg import EmbeddedPostgres, connect, with_database
from runbook.tasks.database.schema_build import load_schema

TEMPLATE = Path(__file__).resolve().parent / "template"
PRODUCTION_DB = "dawsos"
STAGING_DB = "dawsos_staging"


@dataclass
class Workspace:
    root: Path
    admin_url: str
    rows: int
    built_s: float = 0.0
    reused: bool = False

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


def open_workspace(root: Path, *, fresh: bool = False, rows: int = 10_000) -> Workspace:
    root = Path(root).resolve()
    marker = root / "workspace.json"
    if fresh and root.exists():
        EmbeddedPostgres(root / "pg").stop_if_running()
        shutil.rmtree(root)
    started = time.perf_counter()
    server = EmbeddedPostgres(root / "pg")
    admin = server.start()
    if marker.exists():
        info = json.loads(marker.read_text())
        return Workspace(root, admin, info["rows"], reused=True)
    if (root / "repo").exists():
        raise RunbookError(f"workspace {root} is incomplete (a build was interrupted); rerun with --fresh")
    init_repo(TEMPLATE, root / "repo")
    build_database(admin, PRODUCTION_DB, root / "repo", rows)
    build_database(admin, STAGING_DB, root / "repo", rows, template_db=PRODUCTION_DB)
    ws = Workspace(root, admin, rows, built_s=time.perf_counter() - started)
    marker.write_text(json.dumps({"rows": rows, "built_s": round(ws.built_s, 2)}))
    return ws

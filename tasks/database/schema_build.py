"""Build the DawsOS demo database: every backend/db/schema/*.sql (sorted by name), then
every backend/db/migrations/*.sql (sorted), one transaction per file."""
from __future__ import annotations

from pathlib import Path

import psycopg

from runbook.target import DAWSOS

SCHEMA_DIR = Path(DAWSOS.schema_dir)
MIGRATIONS_DIR = Path(DAWSOS.migrations_dir)


def sql_files(repo_dir: Path) -> list[Path]:
    """The files load_schema applies, in order."""
    repo_dir = Path(repo_dir)
    files = sorted((repo_dir / SCHEMA_DIR).glob("*.sql"), key=lambda p: p.name)
    files += sorted((repo_dir / MIGRATIONS_DIR).glob("*.sql"), key=lambda p: p.name)
    return files


def load_schema(conninfo: str, repo_dir: Path) -> list[str]:
    """Apply schema then migrations; returns the applied file names (schema first).

    Raises RuntimeError naming the file when one fails (that file is rolled back; the
    files before it stay applied)."""
    applied: list[str] = []
    files = sql_files(repo_dir)
    if not files:
        raise RuntimeError(f"no schema or migration files under {repo_dir}")
    with psycopg.connect(conninfo) as conn:
        for path in files:
            sql = path.read_text(encoding="utf-8")
            try:
                with conn.transaction():
                    conn.execute(sql)
            except psycopg.Error as exc:
                rel = path.relative_to(Path(repo_dir)).as_posix()
                raise RuntimeError(f"{rel}: {exc.__class__.__name__}: {exc}".strip()) from exc
            applied.append(path.name)
    return applied

"""Backups: pg_dump -Fc into BACKUP_DIR, sha256 recorded, proven readable, restorable."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runbook import failpoints
from runbook.errors import RunbookError
from runbook.pg import client_binary, connect, redact, server_major
from runbook.tasks.database import ledger


@dataclass
class Backup:
    path: Path
    sha256: str
    bytes: int
    entries: int


def _client_args(url: str) -> tuple[str, dict]:
    """Conninfo without the password (argv is visible to `ps`); the password goes in the env."""
    params = conninfo_to_dict(url)
    env = dict(os.environ)
    if params.get("password"):
        env["PGPASSWORD"] = str(params.pop("password"))
    return make_conninfo(**params), env


def _run(cmd: list[str], env: dict, what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunbookError(f"{what} failed: {redact(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else str(proc.returncode))}")
    return proc


def database_size(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def check_disk_room(url: str, backup_dir: Path, factor: float = 1.2) -> dict:
    """A custom-format dump is compressed; the database size with headroom is a safe bound."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    need = int(database_size(url) * factor)
    free = shutil.disk_usage(backup_dir).free
    if free < need:
        raise RunbookError(f"BACKUP_DIR {backup_dir}: {free // 2**20} MiB free, backup needs up to {need // 2**20} MiB")
    return {"free_bytes": free, "needed_bytes": need}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


PARTIAL = ".partial"


def partial_path(path: Path, flow_run_id: str | None) -> Path:
    return path.with_name(f"{path.name}.{(flow_run_id or 'norun')[:8]}{PARTIAL}")


def clear_partial_backups(backup_dir: Path, flow_run_id: str) -> list[Path]:
    """Remove the incomplete dumps a (killed) run left in backup_dir and below."""
    gone = sorted(Path(backup_dir).rglob(f"*.{flow_run_id[:8]}{PARTIAL}")) if Path(backup_dir).exists() else []
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def take_backup(url: str, backup_dir: Path, label: str, flow_run_id: str | None = None) -> Backup:
    major = server_major(url)
    conninfo, env = _client_args(url)
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = (backup_dir / f"{label}-{stamp}.dump").resolve()
    # written under a name that says "incomplete" (with the run, so the run that takes over
    # from a killed one clears it), then renamed into place
    partial = partial_path(path, flow_run_id)
    _run([client_binary("pg_dump", major), "-Fc", "--no-owner", "-f", str(partial), "-d", conninfo], env, "pg_dump")
    failpoints.reached("backup:dumped")
    partial.rename(path)
    listing = _run([client_binary("pg_restore", major), "--list", str(path)], env, "pg_restore --list")
    entries = sum(1 for line in listing.stdout.splitlines() if line and not line.startswith(";"))
    if entries == 0:
        raise RunbookError(f"backup {path} lists no entries")
    backup = Backup(path, sha256_file(path), path.stat().st_size, entries)
    ledger.ensure(url)
    ledger.record_backup(url, str(path), backup.sha256, backup.bytes, flow_run_id)
    return backup


def restore_into(backup: Backup, url: str) -> None:
    """Restore into an (empty) database, e.g. the staging rehearsal's scratch database."""
    if sha256_file(backup.path) != backup.sha256:
        raise RunbookError(f"backup {backup.path} does not match its recorded sha256; refusing to restore")
    conninfo, env = _client_args(url)
    _run([client_binary("pg_restore", server_major(url)), "--no-owner", "--exit-on-error",
          "-d", conninfo, str(backup.path)], env, "pg_restore")

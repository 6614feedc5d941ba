"""PostgreSQL plumbing: connecting with clear errors, the embedded server, scratch databases,
and the client binaries (pg_dump/pg_restore) that match a server's major version."""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from runbook.errors import RunbookError


def redact(url: str) -> str:
    """The URL with any password replaced, fit for logs and alerts."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def connect(url: str, *, setting: str = "DATABASE_URL", autocommit: bool = False,
            **kwargs) -> psycopg.Connection:
    """Connect or raise one line naming the setting and the (redacted) server."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunbookError(f"{setting}: cannot connect to {redact(url)}: {reason}") from None
    except psycopg.ProgrammingError as exc:
        raise RunbookError(f"{setting}: not a valid connection string ({exc})") from None


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    if "://" not in url:
        raise RunbookError(f"not a postgresql:// URL: {redact(url)}")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def with_application_name(url: str, name: str) -> str:
    """The URL with `application_name` set (kept when it already names one): the sessions of
    whoever connects with it are found in pg_stat_activity by that name, over TCP or a unix
    socket alike."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "application_name" for k, _ in query):
        return url
    return urlunsplit(parts._replace(query=urlencode([*query, ("application_name", name)])))


def database_name(url: str) -> str:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.info.dbname


def recreate_database(url: str, dbname: str) -> str:
    """Drop (forcing other sessions off) and create `dbname` on url's server; returns its URL."""
    with connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return with_database(url, dbname)


def drop_database(url: str, dbname: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def server_major(url: str) -> int:
    with connect(url) as conn:
        return conn.info.server_version // 10000


def client_binary(name: str, major: int) -> str:
    """pg_dump/pg_restore of the server's major version (a newer client refuses nothing,
    an older one refuses to dump a newer server)."""
    candidates: list[Path] = []
    try:
        import pgserver

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin" / name)
    except ImportError:  # pragma: no cover - pgserver is a dependency
        pass
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    best = None
    for path in candidates:
        if not path.exists():
            continue
        version = _binary_major(path)
        if version == major:
            return str(path)
        if version > major and best is None:
            best = str(path)
    found = best or shutil.which(name)
    if not found:
        raise RunbookError(f"no {name} for PostgreSQL {major} found (install postgresql-client-{major})")
    return found


def _binary_major(path: Path) -> int:
    import subprocess

    out = subprocess.run([str(path), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else 0


class EmbeddedPostgres:
    """The no-setup default: a pgserver instance whose data lives in the workspace."""

    def __init__(self, datadir: Path, keep_running: bool = True):
        self.datadir = Path(datadir).resolve()
        # the demo's server outlives the command (a later `runbook demo` reuses it)
        self.cleanup_mode = None if keep_running else "stop"

    def start(self) -> str:
        import pgserver

        self.datadir.mkdir(parents=True, exist_ok=True)
        try:
            self._server = pgserver.get_server(str(self.datadir), cleanup_mode=self.cleanup_mode)
        except Exception as exc:  # pgserver raises plain exceptions with long logs
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RunbookError(f"embedded PostgreSQL in {self.datadir} did not start: {first}") from None
        return self.url("postgres")

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@/{dbname}?host={self.datadir}"

    def stop_if_running(self) -> None:
        """Stop a server left running on this data directory (e.g. before deleting it)."""
        if (self.datadir / "postmaster.pid").exists():
            import pgserver

            pgserver.get_server(str(self.datadir), cleanup_mode="stop").cleanup()

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.cleanup()

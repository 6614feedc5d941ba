"""A real primary + streaming replica, built from the machine's PostgreSQL binaries in temporary
directories (own ports, own pg_hba allowing replication), for tests of what a replica's lag does."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class ReplicatedPair:
    primary_port: int
    replica_port: int

    def url(self, dbname: str = "postgres", replica: bool = False) -> str:
        port = self.replica_port if replica else self.primary_port
        return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"


@pytest.fixture
def replicated_pair():
    bindir = _bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries on this machine")
    root = Path(tempfile.mkdtemp(prefix="rb-repl-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    primary, replica = root / "primary", root / "replica"
    pport, rport = _free_port(), _free_port()
    run = lambda *a: subprocess.run(_as_postgres([str(bindir / a[0]), *a[1:]]), check=True,
                                    capture_output=True, text=True)
    run("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust")
    with open(primary / "postgresql.conf", "a") as f:
        f.write(f"port = {pport}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
                "wal_level = replica\nmax_wal_senders = 4\nfsync = off\n")
    with open(primary / "pg_hba.conf", "a") as f:
        f.write("host replication all 127.0.0.1/32 trust\n")
    started = []
    try:
        run("pg_ctl", "-D", str(primary), "-l", str(root / "primary.log"), "-w", "start")
        started.append(primary)
        run("pg_basebackup", "-h", "127.0.0.1", "-p", str(pport), "-U", "postgres", "-D", str(replica), "-R",
            "-X", "stream")
        with open(replica / "postgresql.conf", "a") as f:
            f.write(f"port = {rport}\nwal_receiver_status_interval = 1s\nhot_standby_feedback = on\n")
        run("pg_ctl", "-D", str(replica), "-l", str(root / "replica.log"), "-w", "start")
        started.append(replica)
        pair = ReplicatedPair(pport, rport)
        _wait_streaming(pair)
        yield pair
    finally:
        for datadir in reversed(started):
            subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"]),
                           check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _wait_streaming(pair: ReplicatedPair, timeout_s: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with psycopg.connect(pair.url(), autocommit=True) as conn:
            if conn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()[0]:
                return
        time.sleep(0.2)
    raise RuntimeError("the replica never started streaming")

"""Counting the SQL statements an API executes, black-box: a relay between the API and its
PostgreSQL that reads the client side of the wire protocol.

pg_stat_statements is not preloaded everywhere and pg_stat_* counters reach the views up to 10 s
late (PostgreSQL 15 flushes an idle backend's stats lazily), so the API is pointed at this relay
instead (its DATABASE_URL) and every statement is counted as it passes: a simple Query ('Q'),
or an extended-protocol batch that executes something (Bind/Execute... closed by Sync; a
prepare-only batch, Parse/Describe/Sync, executes nothing). Nothing else is read or kept: no
statement text, no parameter."""
from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
SETTLE_S = 0.05


class _Stream:
    """The client's side of one connection, parsed as it passes."""

    def __init__(self, counter: StatementCounter):
        self.counter = counter
        self.buffer = b""
        self.startup = True        # untyped messages until the StartupMessage
        self.executing = False     # an Execute since the last Sync

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.startup:
                if len(self.buffer) < 8:
                    return
                size, code = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < size:
                    return
                self.buffer = self.buffer[size:]
                if code not in (SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST):
                    self.startup = False
                    self.counter.connections += 1
                continue
            if len(self.buffer) < 5:
                return
            kind, size = self.buffer[:1], struct.unpack("!i", self.buffer[1:5])[0]
            if len(self.buffer) < 1 + size:
                return
            self.buffer = self.buffer[1 + size:]
            if kind == b"Q":
                self.counter.add()
            elif kind == b"E":
                self.executing = True
            elif kind == b"S" and self.executing:
                self.executing = False
                self.counter.add()


class StatementCounter:
    """A relay on a free 127.0.0.1 port to the database of `database_url`; `url` is the same
    database reached through it. Use as a context manager."""

    def __init__(self, database_url: str):
        self.upstream = urlsplit(database_url)
        self._query = parse_qsl(self.upstream.query, keep_blank_values=True)
        options = dict(self._query)
        # the server: host and port from the URL, or a unix socket directory (`?host=/dir`)
        self._host = options.get("host") or self.upstream.hostname or "127.0.0.1"
        self._port = int(options.get("port") or self.upstream.port or 5432)
        self.statements = 0
        self.connections = 0
        self.encrypted = False     # the server agreed to TLS: nothing can be read
        self._lock = threading.Lock()
        self._last_change = time.monotonic()
        counter = self

        class Relay(socketserver.BaseRequestHandler):
            def handle(self):
                server_side = counter._connect()
                stream = _Stream(counter)
                back = threading.Thread(target=counter._pipe_back, args=(server_side, self.request), daemon=True)
                back.start()
                try:
                    while data := self.request.recv(65536):
                        stream.feed(data)
                        server_side.sendall(data)
                except OSError:
                    pass
                finally:
                    server_side.close()
                    back.join(5)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Relay)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _connect(self) -> socket.socket:
        if self._host.startswith("/"):
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.connect(f"{self._host}/.s.PGSQL.{self._port}")
            return unix
        return socket.create_connection((self._host, self._port))

    def _pipe_back(self, server_side: socket.socket, client: socket.socket) -> None:
        first = True
        try:
            while data := server_side.recv(65536):
                if first and data[:1] == b"S" and len(data) == 1:
                    self.encrypted = True
                first = False
                client.sendall(data)
        except OSError:
            pass
        finally:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def add(self) -> None:
        with self._lock:
            self.statements += 1
            self._last_change = time.monotonic()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        netloc = self.upstream.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        query = urlencode([(k, v) for k, v in self._query if k not in ("host", "port", "hostaddr")])
        return urlunsplit(self.upstream._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host,
                                                 query=query))

    def settled(self) -> int:
        """The count once no statement has passed for SETTLE_S (a pool's reset after the
        response went out belongs to the run)."""
        while time.monotonic() - self._last_change < SETTLE_S:
            time.sleep(SETTLE_S / 2)
        return self.statements

    def __enter__(self) -> StatementCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

"""Throwaway PostgreSQL 15 and MariaDB servers on loopback, for tests and benchmarks.

Each server runs from a fresh temporary directory on a free 127.0.0.1 port and is stopped
(and its directory removed) when the `with` block ends, when the process exits, or on SIGTERM.
A missing server binary is an error telling the reader to run `make deps`: tests that need a
database never skip silently.

    with DatabaseServers.start() as servers:
        servers.pg_live.admin()          # a psycopg connection as the superuser
        servers.mysql_archive.address    # ("127.0.0.1", port)

Every server has one database (`live` or `archive`) and a password-authenticated login
`purger` / `purger-secret` that owns it (MariaDB: all privileges on it, no SUPER, so the
server's `read_only` applies to it). The PostgreSQL live server runs in `Asia/Seoul` and the
MariaDB live server at `+09:00`: a purge that assumes a UTC session fails there.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import psycopg
import pymysql

PG_BIN = Path(os.environ.get("DATAWARD_PG_BIN", "/usr/lib/postgresql/15/bin"))
MARIADBD = Path(os.environ.get("DATAWARD_MARIADBD", "/usr/sbin/mariadbd"))
MARIADB_INSTALL_DB = Path(
    os.environ.get("DATAWARD_MARIADB_INSTALL_DB", "/usr/bin/mariadb-install-db")
)

PURGER_USER = "purger"
PURGER_PASSWORD = "purger-secret"
START_TIMEOUT = 60.0

Engine = Literal["postgresql", "mysql"]


class DatabaseHarnessError(RuntimeError):
    """A test database could not be started; the message says what to install or look at."""


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise DatabaseHarnessError(
            f"{what} not found at {path}: run `make deps` (installs Debian's postgresql-15 and "
            "mariadb-server) before running the database tests"
        )


_HANDED_OUT: set[int] = set()
_PORT_LOCK = threading.Lock()


def free_port() -> int:
    """A free loopback port never handed out before by this process (servers start in parallel)."""
    with _PORT_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port: int = sock.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def _pdeathsig() -> Callable[[], None] | None:
    """A preexec_fn that SIGKILLs the child if this process dies without cleaning up."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return preexec


_RUNNING: set[DatabaseServer] = set()
_RUNNING_LOCK = threading.RLock()


def _stop_all() -> None:
    with _RUNNING_LOCK:
        servers = list(_RUNNING)
    for server in servers:
        server.stop()


atexit.register(_stop_all)


@dataclass(eq=False)
class DatabaseServer:
    """One running server: how to reach it, and how to stop it."""

    engine: Engine
    role: str  # "live" or "archive": also the name of its one database
    port: int
    directory: Path
    time_zone: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    command: list[str] = field(default_factory=list, repr=False)
    run_as: str | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    host = "127.0.0.1"

    @property
    def database(self) -> str:
        """The name of the server's one database."""
        return self.role

    @property
    def address(self) -> tuple[str, int]:
        """Host and port on loopback."""
        return (self.host, self.port)

    def store_database(self, *, port: int | None = None) -> dict[str, Any]:
        """The `spec.database` shape of a store pointing at this server."""
        return {
            "engine": self.engine,
            "host": self.host,
            "port": self.port if port is None else port,
            "name": self.database,
            "credentialsSecret": f"{self.role}-credentials",
            "tls": "disable",
        }

    def admin(self, *, autocommit: bool = True) -> Any:
        """A superuser connection to the server's database (psycopg or PyMySQL)."""
        if self.engine == "postgresql":
            return psycopg.connect(
                host=str(self.directory / "socket"),
                port=self.port,
                user="postgres",
                dbname=self.database,
                autocommit=autocommit,
            )
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user="root",
            password="",
            database=self.database,
            autocommit=autocommit,
        )

    def purger(self, *, autocommit: bool = True) -> Any:
        """A connection as the purge login (password authentication over TCP)."""
        if self.engine == "postgresql":
            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=PURGER_USER,
                password=PURGER_PASSWORD,
                dbname=self.database,
                autocommit=autocommit,
            )
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=PURGER_USER,
            password=PURGER_PASSWORD,
            database=self.database,
            autocommit=autocommit,
        )

    def execute(self, *statements: str) -> None:
        """Run statements as the superuser, each committed."""
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def query(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Rows of one query run as the superuser."""
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def set_read_only(self, read_only: bool) -> None:
        """Make the server refuse writes from the purge login (or accept them again)."""
        if self.engine == "postgresql":
            value = "on" if read_only else "off"
            self.execute(f"ALTER ROLE {PURGER_USER} SET default_transaction_read_only = {value}")
        else:
            self.execute(f"SET GLOBAL read_only = {1 if read_only else 0}")

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        process = self.process
        if process is not None and process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown; SIGTERM is MariaDB's normal one.
            process.send_signal(signal.SIGINT if self.engine == "postgresql" else signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _private_dir(prefix: str, owner: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(directory, owner, owner)
    return directory


def _run_as(owner: str) -> dict[str, Any]:
    """Popen arguments that drop to `owner` when running as root (initdb/postgres refuse root)."""
    return {"user": owner, "group": owner} if os.geteuid() == 0 else {}


def _wait_ready(server: DatabaseServer, probe: Callable[[], None]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise DatabaseHarnessError(
                f"{server.engine} ({server.role}) exited with {server.process.returncode}:\n"
                f"{server.log_tail()}"
            )
        try:
            probe()
            return
        except Exception as exc:
            last = exc
            time.sleep(0.2)
    server.stop()
    raise DatabaseHarnessError(
        f"{server.engine} ({server.role}) did not accept connections within {START_TIMEOUT}s "
        f"({last!r}):\n{server.log_tail()}"
    )


def start_postgres(role: str, *, time_zone: str = "UTC") -> DatabaseServer:
    """Start PostgreSQL 15 in a temporary directory with one database named `role`."""
    server = _prepare_postgres(role, time_zone)
    _launch(server)
    _finish(server)
    return server


def start_mariadb(role: str, *, time_zone: str = "+00:00") -> DatabaseServer:
    """Start MariaDB in a temporary directory with one database named `role`."""
    server = _prepare_mariadb(role, time_zone)
    _launch(server)
    _finish(server)
    return server


def _prepare_postgres(role: str, time_zone: str) -> DatabaseServer:
    """initdb and configure; the server is not running yet."""
    _require(PG_BIN / "postgres", "PostgreSQL 15 (postgres)")
    _require(PG_BIN / "initdb", "PostgreSQL 15 (initdb)")
    directory = _private_dir(f"dataward-pg-{role}-", "postgres")
    data, sockets = directory / "data", directory / "socket"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(sockets, "postgres", "postgres")
    init = subprocess.run(
        [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
         "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        capture_output=True, check=False, **_run_as("postgres"),
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise DatabaseHarnessError(f"initdb failed:\n{init.stderr.decode(errors='replace')}")
    port = free_port()
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"listen_addresses = '127.0.0.1'\nport = {port}\n"
            f"unix_socket_directories = '{sockets}'\ntimezone = '{time_zone}'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 40\nshared_buffers = 128MB\n"
        )
    server = DatabaseServer(
        "postgresql", role, port, directory, time_zone, log_path=directory / "server.log"
    )
    server.command = [str(PG_BIN / "postgres"), "-D", str(data)]
    server.run_as = "postgres"
    return server


def _prepare_mariadb(role: str, time_zone: str) -> DatabaseServer:
    """mariadb-install-db; the server is not running yet."""
    _require(MARIADBD, "MariaDB server (mariadbd)")
    _require(MARIADB_INSTALL_DB, "MariaDB (mariadb-install-db)")
    directory = _private_dir(f"dataward-mariadb-{role}-", "mysql")
    data = directory / "data"
    log_path = directory / "server.log"
    user = ["--user=mysql"] if os.geteuid() == 0 else []
    # A temp directory of its own: two servers initialised at once in the shared /tmp
    # collide on MariaDB's temporary table names ("Unknown table 'mysql.tmp_user_sys'").
    tmp = directory / "tmp"
    tmp.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "mysql", "mysql")
    init = subprocess.run(
        [str(MARIADB_INSTALL_DB), "--no-defaults", *user, f"--datadir={data}", f"--tmpdir={tmp}",
         "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
        capture_output=True, check=False,
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise DatabaseHarnessError(
            f"mariadb-install-db failed:\n{init.stdout.decode(errors='replace')}"
            f"{init.stderr.decode(errors='replace')}"
        )
    port = free_port()
    server = DatabaseServer("mysql", role, port, directory, time_zone, log_path=log_path)
    server.command = [
        str(MARIADBD), "--no-defaults", *user, f"--datadir={data}", f"--tmpdir={tmp}",
        f"--socket={directory / 'mysqld.sock'}", f"--port={port}", "--bind-address=127.0.0.1",
        f"--pid-file={directory / 'mysqld.pid'}", f"--log-error={log_path}",
        f"--default-time-zone={time_zone}", "--skip-name-resolve", "--skip-log-bin",
        "--innodb-buffer-pool-size=256M", "--innodb-flush-log-at-trx-commit=0",
        "--innodb-log-file-size=256M", "--max-connections=60",
    ]  # fmt: skip
    return server


def _launch(server: DatabaseServer) -> None:
    """Start the server process.

    Call this from the main thread: the parent-death signal fires when the *thread* that
    started the child exits, so a worker thread would take the server down with it.
    """
    assert server.log_path is not None
    with open(server.log_path, "ab") as log:
        server.process = subprocess.Popen(
            server.command,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_pdeathsig(),
            **(_run_as(server.run_as) if server.run_as else {}),
        )  # fmt: skip
    with _RUNNING_LOCK:
        _RUNNING.add(server)


def _finish(server: DatabaseServer) -> None:
    """Wait until the server accepts TCP connections, then create its database and login."""
    if server.engine == "postgresql":
        sockets = str(server.directory / "socket")

        def probe() -> None:
            psycopg.connect(
                host=sockets, port=server.port, user="postgres", dbname="postgres",
                connect_timeout=2,
            ).close()  # fmt: skip
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()

        _wait_ready(server, probe)
        with psycopg.connect(
            host=sockets, port=server.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE ROLE {PURGER_USER} LOGIN PASSWORD '{PURGER_PASSWORD}'")
            conn.execute(f"CREATE DATABASE {server.role} OWNER {PURGER_USER}")
        server.execute(f"ALTER SCHEMA public OWNER TO {PURGER_USER}")
        if server.role == "archive":
            create_claims_table(server)
        return

    def probe_mysql() -> None:
        pymysql.connect(
            host="127.0.0.1", port=server.port, user="root", password="", connect_timeout=2
        ).close()

    _wait_ready(server, probe_mysql)
    conn = pymysql.connect(
        host="127.0.0.1", port=server.port, user="root", password="", autocommit=True
    )
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {server.role}")
            cur.execute(f"CREATE USER '{PURGER_USER}'@'%' IDENTIFIED BY '{PURGER_PASSWORD}'")
            cur.execute(f"GRANT ALL PRIVILEGES ON {server.role}.* TO '{PURGER_USER}'@'%'")
    finally:
        conn.close()
    if server.role == "archive":
        create_claims_table(server)


def create_claims_table(server: DatabaseServer, schema: str | None = None) -> None:
    """The registry of archive tables' owners (`dataward.purge.claims`), created as the
    administrator creates it (the engine never does), owned by (PostgreSQL) or reachable
    to the purge login."""
    from dataward.purge.claims import CLAIMS_TABLE, claims_table_ddl
    from dataward.purge.sql import MYSQL, POSTGRES

    dialect = POSTGRES if server.engine == "postgresql" else MYSQL
    statements = [claims_table_ddl(dialect, schema).rstrip(";")]
    if server.engine == "postgresql":
        name = f"{schema}.{CLAIMS_TABLE}" if schema else CLAIMS_TABLE
        statements.append(f"ALTER TABLE {name} OWNER TO {PURGER_USER}")
    server.execute(*statements)


@dataclass
class DatabaseServers:
    """A live and an archive server of each engine."""

    pg_live: DatabaseServer
    pg_archive: DatabaseServer
    mysql_live: DatabaseServer
    mysql_archive: DatabaseServer

    @classmethod
    def start(
        cls,
        *,
        pg_live_time_zone: str = "Asia/Seoul",
        mysql_live_time_zone: str = "+09:00",
    ) -> DatabaseServers:
        """Start all four servers in parallel; stop the ones that started if any fails."""
        jobs: list[tuple[Callable[..., DatabaseServer], str, str]] = [
            (_prepare_postgres, "live", pg_live_time_zone),
            (_prepare_postgres, "archive", "UTC"),
            (_prepare_mariadb, "live", mysql_live_time_zone),
            (_prepare_mariadb, "archive", "+00:00"),
        ]
        prepared: list[DatabaseServer] = []
        try:
            # initdb and install-db are the slow part: run them side by side.
            with ThreadPoolExecutor(len(jobs)) as pool:
                futures = [pool.submit(fn, role, tz) for fn, role, tz in jobs]
                for future in futures:
                    error = future.exception()
                    if error is None:
                        prepared.append(future.result())
                errors = [f.exception() for f in futures if f.exception() is not None]
                if errors:
                    raise errors[0]  # type: ignore[misc]
                for server in prepared:
                    _launch(server)
                for future in [pool.submit(_finish, server) for server in prepared]:
                    future.result()
        except BaseException:
            for server in prepared:
                server.stop()
            raise
        return cls(*prepared)

    def all(self) -> list[DatabaseServer]:
        """Every server."""
        return [self.pg_live, self.pg_archive, self.mysql_live, self.mysql_archive]

    def pair(self, engine: Engine) -> tuple[DatabaseServer, DatabaseServer]:
        """The live and archive servers of one engine."""
        if engine == "postgresql":
            return self.pg_live, self.pg_archive
        return self.mysql_live, self.mysql_archive

    def stop(self) -> None:
        """Stop every server."""
        for server in self.all():
            server.stop()

    def __enter__(self) -> DatabaseServers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

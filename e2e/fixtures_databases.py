"""Real PostgreSQL and MariaDB servers for end-to-end tests: live and archive, on loopback.

The servers come from the database harness of the purge tests (tests/databases.py): Debian's
PostgreSQL 15, each in a temporary directory on a free 127.0.0.1 port, stopped at the end of
the session. The live server runs in Asia/Seoul, so a purge that assumed a UTC session would
cut in the wrong place.

The purge login gets a password made up for this session, a canary: a test can then prove
that the password a purge Job read from its Secret shows up in no result and no status.

The fixtures are registered once in e2e/conftest.py; request them as `postgres` and
`mariadb`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.databases import PURGER_USER, DatabaseServer, start_mariadb, start_postgres


@dataclass(frozen=True)
class Postgres:
    """A live and an archive PostgreSQL server, and the purge login's password on both."""

    live: DatabaseServer
    archive: DatabaseServer
    username: str
    password: str

    def credentials_secret(self, namespace: str, name: str) -> dict[str, Any]:
        """The credentials Secret a platform team would create for the purge login."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "stringData": {"username": self.username, "password": self.password},
        }


@contextlib.contextmanager
def _servers(
    start: Callable[..., DatabaseServer], zones: tuple[str, str], set_password: str
) -> Iterator[tuple[DatabaseServer, DatabaseServer, str]]:
    """A live and an archive server (in `zones`), the purge login's canary password set on
    both by `set_password` (a statement with {user} and {password}); stopped at the end."""
    password = f"canary-{uuid.uuid4().hex}"
    started: list[DatabaseServer] = []
    try:
        started.append(start("live", time_zone=zones[0]))
        started.append(start("archive", time_zone=zones[1]))
        for server in started:
            server.execute(set_password.format(user=PURGER_USER, password=password))
        yield started[0], started[1], password
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session", name="postgres")
def postgres_fixture() -> Iterator[Postgres]:
    """PostgreSQL live (Asia/Seoul) and archive (UTC) servers for the session (never skipped)."""
    with _servers(start_postgres, ("Asia/Seoul", "UTC"),
                  "ALTER ROLE {user} PASSWORD '{password}'") as (live, archive, password):
        yield Postgres(live, archive, PURGER_USER, password)


@dataclass(frozen=True)
class MariaDB(Postgres):
    """A live and an archive MariaDB server, and the purge login's password on both."""


@pytest.fixture(scope="session", name="mariadb")
def mariadb_fixture() -> Iterator[MariaDB]:
    """MariaDB live (+09:00) and archive (UTC) servers for the session (never skipped)."""
    statement = "ALTER USER '{user}'@'%' IDENTIFIED BY '{password}'"
    with _servers(start_mariadb, ("+09:00", "+00:00"), statement) as (live, archive, password):
        yield MariaDB(live, archive, PURGER_USER, password)

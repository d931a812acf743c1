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

import uuid
from collections.abc import Iterator
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


@pytest.fixture(scope="session", name="postgres")
def postgres_fixture() -> Iterator[Postgres]:
    """PostgreSQL live (Asia/Seoul) and archive (UTC) servers for the session (never skipped)."""
    password = f"canary-{uuid.uuid4().hex}"
    started: list[DatabaseServer] = []
    try:
        started.append(start_postgres("live", time_zone="Asia/Seoul"))
        started.append(start_postgres("archive", time_zone="UTC"))
        for server in started:
            server.execute(f"ALTER ROLE {PURGER_USER} PASSWORD '{password}'")
        yield Postgres(started[0], started[1], PURGER_USER, password)
    finally:
        for server in started:
            server.stop()


@dataclass(frozen=True)
class MariaDB(Postgres):
    """A live and an archive MariaDB server, and the purge login's password on both."""


@pytest.fixture(scope="session", name="mariadb")
def mariadb_fixture() -> Iterator[MariaDB]:
    """MariaDB live (+09:00) and archive (UTC) servers for the session (never skipped)."""
    password = f"canary-{uuid.uuid4().hex}"
    started: list[DatabaseServer] = []
    try:
        started.append(start_mariadb("live", time_zone="+09:00"))
        started.append(start_mariadb("archive", time_zone="+00:00"))
        for server in started:
            server.execute(f"ALTER USER '{PURGER_USER}'@'%' IDENTIFIED BY '{password}'")
        yield MariaDB(started[0], started[1], PURGER_USER, password)
    finally:
        for server in started:
            server.stop()

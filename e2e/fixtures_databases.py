"""Real PostgreSQL servers for end-to-end purges: a live and an archive database on loopback.

The servers come from the database harness of the purge tests (tests/databases.py): Debian's
PostgreSQL 15, each in a temporary directory on a free 127.0.0.1 port, stopped at the end of
the session. The live server runs in Asia/Seoul, so a purge that assumed a UTC session would
cut in the wrong place.

The purge login gets a password made up for this session, a canary: a test can then prove
that the password a purge Job read from its Secret shows up in no result and no status.

Import the fixture into a test module (`from e2e.fixtures_databases import postgres_fixture`)
and request it as `postgres`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.databases import PURGER_USER, DatabaseServer, start_postgres


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

"""A fresh evidence database per test, on the shared PostgreSQL and MariaDB servers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pymysql
import pytest

from dataward.model.store import Database
from dataward.purge.credentials import Credentials
from tests.databases import PURGER_PASSWORD, PURGER_USER, DatabaseServer, DatabaseServers

_NAMES = itertools.count(1)


@dataclass
class EvidenceDatabase:
    """An empty database owned by the test login, and raw SQL on it (for tampering)."""

    server: DatabaseServer
    name: str

    @property
    def engine(self) -> str:
        return self.server.engine

    @property
    def database(self) -> Database:
        return Database(self.server.engine, self.server.host, self.server.port, self.name,
                        "evidence", "disable")  # fmt: skip

    @property
    def url(self) -> str:
        scheme = "postgresql" if self.engine == "postgresql" else "mysql"
        return f"{scheme}://{self.server.host}:{self.server.port}/{self.name}?tls=disable"

    credentials = Credentials(PURGER_USER, PURGER_PASSWORD)

    def connect(self, user: str = PURGER_USER, password: str = PURGER_PASSWORD) -> Any:
        """An autocommit connection to this database."""
        if self.engine == "postgresql":
            return psycopg.connect(
                host=self.server.host, port=self.server.port, user=user, password=password,
                dbname=self.name, autocommit=True,
            )  # fmt: skip
        return pymysql.connect(
            host=self.server.host, port=self.server.port, user=user, password=password,
            database=self.name, autocommit=True,
        )  # fmt: skip

    def sql(self, statement: str, params: Any = None) -> int:
        """Run one statement as the owner (as anyone with write access could); rows affected."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return int(cur.rowcount)
        finally:
            conn.close()

    def rows(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Rows of one query as the owner."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return list(cur.fetchall())
        finally:
            conn.close()


@pytest.fixture(params=["postgresql", "mysql"])
def evidence_db(
    request: pytest.FixtureRequest, servers: DatabaseServers
) -> Iterator[EvidenceDatabase]:
    """An empty database on the live server of each engine (non-UTC zones, on purpose)."""
    server = servers.pair(request.param)[0]
    name = f"evidence_{next(_NAMES)}"
    if server.engine == "postgresql":
        server.execute(f"CREATE DATABASE {name} OWNER {PURGER_USER}")
    else:
        server.execute(f"CREATE DATABASE {name}",
                       f"GRANT ALL PRIVILEGES ON {name}.* TO '{PURGER_USER}'@'%'")  # fmt: skip
    yield EvidenceDatabase(server, name)
    if server.engine == "postgresql":
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        server.execute(f"DROP DATABASE IF EXISTS {name}")

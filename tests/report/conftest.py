"""A fresh evidence database on the shared PostgreSQL server, for the report's db tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.databases import PURGER_USER, DatabaseServers
from tests.evidence.conftest import EvidenceDatabase

_NAMES = itertools.count(1)


@pytest.fixture
def evidence_pg(servers: DatabaseServers) -> Iterator[EvidenceDatabase]:
    """An empty PostgreSQL database owned by the test login."""
    server = servers.pair("postgresql")[0]
    name = f"report_evidence_{next(_NAMES)}"
    server.execute(f"CREATE DATABASE {name} OWNER {PURGER_USER}")
    yield EvidenceDatabase(server, name)
    server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

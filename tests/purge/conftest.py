"""Fixtures for the purge tests: real PostgreSQL and MariaDB servers for the session.

The servers start once (about 6 s) and stop at the end, also when tests fail. A missing
server binary makes the fixture fail with a message to run `make deps`: never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import DatabaseServers


@pytest.fixture(scope="session")
def servers() -> Iterator[DatabaseServers]:
    """A live and an archive server of each engine for the whole session (never skipped)."""
    started = DatabaseServers.start()
    try:
        yield started
    finally:
        started.stop()

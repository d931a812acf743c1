"""Test settings shared by every test, and the database servers the `db` tests share."""

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.databases import DatabaseServers

# The machine is shared with compilers and databases during `make test`: a per-example
# deadline would turn load into flaky failures, and timings belong in bench/, not in tests.
settings.register_profile("dataward", deadline=None, print_blob=True)
settings.load_profile("dataward")


@pytest.fixture(scope="session")
def servers() -> Iterator[DatabaseServers]:
    """A live and an archive server of each engine for the whole session (never skipped).

    The servers start once (about 6 s) and stop at the end, also when tests fail. A missing
    server binary makes the fixture fail with a message to run `make deps`: never a skip.
    Shared by the purge and the evidence tests, so one session starts one set.
    """
    started = DatabaseServers.start()
    try:
        yield started
    finally:
        started.stop()

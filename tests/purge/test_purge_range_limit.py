"""PostgreSQL's timestamp-range batches never pass their size, without a server.

A range batch's DELETE is bounded by a trigger chosen from the index beforehand (or, when
fewer than `limit` rows were left, by the cutoff alone); rows committed between that choice
and the DELETE (a bulk load of old rows, a backdated insert) fall inside the range. A batch
that deleted more than it may is rolled back and taken by the keyset statement instead,
which takes exactly `limit` rows: a run never passes maxRowsPerRun, statutory or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataward.purge.batches import PostgresBatches
from dataward.purge.sql import POSTGRES, TableName, TableStatements

CUTOFF = datetime(2025, 1, 1, tzinfo=UTC)
UPPER = CUTOFF - timedelta(days=30)  # the range's bound, as the index gave it
LIMIT = 100


class _Session:
    """The range bound's answer (None: no row, fewer than `limit` expired rows were left)
    and how many rows the range's DELETE then took; records what it was asked."""

    role = "live"

    def __init__(self, bound: tuple[Any, ...] | None, deleted: int) -> None:
        self.bound = bound
        self.deleted = deleted
        self.calls: list[str] = []

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.calls.append("query")
        return [self.bound] if self.bound is not None else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.calls.append("execute")
        return self.deleted

    def copy_out(self, sql: str, params: Sequence[Any] = ()) -> tuple[bytes, int]:
        self.calls.append("copy_out")
        return b"row\n" * self.deleted, self.deleted

    def rollback(self) -> None:
        self.calls.append("rollback")


def _batches(session: _Session) -> PostgresBatches:
    statements = TableStatements(POSTGRES, TableName(None, "t"), "ts", ("id",))
    return PostgresBatches(session, statements, CUTOFF)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bound", "deleted"),
    [(None, 5_000), (None, LIMIT), ((UPPER, 1), 5_000), ((UPPER, 1), LIMIT + 1)],
)
def test_a_statutory_range_that_took_more_than_its_batch_is_rolled_back(
    bound: tuple[Any, ...] | None, deleted: int
) -> None:
    """Fewer than 100 rows were left when the bound was read (or the 100th row's trigger
    bounded the range), then a bulk load of old rows committed: the COPY reports 5,000
    rows deleted. Nothing of that goes to the archive or is committed; `take` does it."""
    session = _Session(bound, deleted)
    taken = _batches(session).take_range(None, LIMIT, ["id", "ts"])
    assert taken is None, taken
    assert session.calls[-2:] == ["copy_out", "rollback"]


@pytest.mark.parametrize(
    ("bound", "deleted", "picked"),
    [(None, 0, 0), (None, LIMIT - 1, LIMIT - 1), ((UPPER, 1), LIMIT, LIMIT)],
)
def test_a_statutory_range_within_its_batch_is_taken(
    bound: tuple[Any, ...] | None, deleted: int, picked: int
) -> None:
    session = _Session(bound, deleted)
    taken = _batches(session).take_range(None, LIMIT, ["id", "ts"])
    assert taken is not None and "rollback" not in session.calls
    assert (taken.picked, taken.deleted) == (picked, deleted)
    assert taken.copied == b"row\n" * deleted


@pytest.mark.parametrize(
    ("bound", "deleted"),
    [(None, 5_000), (None, LIMIT), ((UPPER, 1), 5_000), ((UPPER, 1), LIMIT + 1)],
)
def test_a_plain_range_that_took_more_than_its_batch_is_rolled_back(
    bound: tuple[Any, ...] | None, deleted: int
) -> None:
    """The same rule for the non-statutory range DELETE."""
    session = _Session(bound, deleted)
    assert _batches(session)._delete_range(None, LIMIT) is None
    assert session.calls[-2:] == ["execute", "rollback"]

"""A PostgreSQL trigger of `-infinity` names no instant: it is never deleted, and the run says
which column; `infinity` is simply never expired.

`-infinity <= cutoff` is true, so such a row sorted first among the expired rows and its
batch deleted it as "expired" (or psycopg, which cannot load an infinite date into Python,
failed the run reading the oldest trigger back). It is refused like a MariaDB zero date
(`ColumnRefused`, table and column named, never the value) before any batch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import run_purge, store_doc, unique
from tests.purge.tables import create_table, insert_rows

pytestmark = pytest.mark.db
YEAR = datetime.now(UTC).year - 2  # past retention, within the statute
NEG, POS = 99, 98
KINDS = ["timestamptz", "timestamp", "date"]


def ids(server: DatabaseServer, table: str) -> set[int]:
    return {int(i) for (i,) in server.query(f"SELECT id FROM {table}")}


def _infinite(server: DatabaseServer, table: str, row_id: int, value: str) -> None:
    server.execute(f"INSERT INTO {table} VALUES ({row_id}, '{value}', 'row-{row_id}')")


def _live(server: DatabaseServer, kind: str, *infinite: tuple[int, str]) -> str:
    """Expired rows 1-8, a fresh row 50, a NULL row 51, and the `(id, value)` rows given."""
    table = unique("inf")
    create_table(server, table, kind)
    rows: list[tuple[int, datetime | None]] = [
        (i, datetime(YEAR, 2, i, tzinfo=UTC)) for i in range(1, 9)
    ]
    rows += [(50, datetime.now(UTC) + timedelta(days=2)), (51, None)]
    insert_rows(server, table, kind, rows)
    for row_id, value in infinite:
        _infinite(server, table, row_id, value)
    return table


def _refused(result: Any, table: str, role: str = "live") -> str:
    assert (result.result, result.reason) == ("Failed", "ColumnRefused"), result.message
    message: str = result.message
    assert f"the {role} table {table}" in message and "'ts'" in message, message
    assert "-infinity" in message and "NULL" in message, message
    return message


@pytest.mark.parametrize("batch_size", [1, 3, 100])
@pytest.mark.parametrize("kind", KINDS)
def test_a_minus_infinity_trigger_is_refused_and_nothing_is_deleted(
    servers: DatabaseServers, kind: str, batch_size: int
) -> None:
    live = servers.pg_live
    table = _live(live, kind, (NEG, "-infinity"), (POS, "infinity"))
    before = ids(live, table)
    message = _refused(run_purge(store_doc(live, table, batchSize=batch_size), live), table)
    assert "nothing was deleted" in message, message
    assert ids(live, table) == before


@pytest.mark.parametrize("kind", KINDS)
def test_a_statutory_run_copies_and_deletes_no_minus_infinity_trigger(
    servers: DatabaseServers, kind: str
) -> None:
    live, archive = servers.pair("postgresql")
    table = _live(live, kind, (NEG, "-infinity"))
    create_table(archive, table, kind)
    before = ids(live, table)
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=3)
    _refused(run_purge(doc, live, archive), table)
    assert ids(live, table) == before
    assert ids(archive, table) == set()


def test_a_dry_run_is_refused_the_same_way(servers: DatabaseServers) -> None:
    live = servers.pg_live
    table = _live(live, "timestamptz", (NEG, "-infinity"))
    result = run_purge(store_doc(live, table, dryRun=True), live)
    assert result.dry_run
    _refused(result, table)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("statutory", [False, True])
@pytest.mark.parametrize("dry", [False, True])
def test_an_infinity_trigger_is_never_expired_and_crashes_nothing(
    servers: DatabaseServers, kind: str, statutory: bool, dry: bool
) -> None:
    live, archive = servers.pair("postgresql")
    table = _live(live, kind, (POS, "infinity"))
    if statutory:
        create_table(archive, table, kind)
        _infinite(archive, table, POS, "infinity")
        doc = store_doc(
            live, table, category="contracts", archive=archive, batchSize=3, dryRun=dry
        )
        result = run_purge(doc, live, archive)
    else:
        result = run_purge(store_doc(live, table, batchSize=3, dryRun=dry), live)
    assert result.result == "Succeeded", result.message
    assert ids(live, table) == ({*range(1, 9)} if dry else set()) | {50, 51, POS}
    if statutory:
        assert ids(archive, table) == ({POS} if dry else {*range(1, 9), POS})


@pytest.mark.parametrize("kind", KINDS)
def test_a_minus_infinity_trigger_in_the_archive_is_never_destroyed(
    servers: DatabaseServers, kind: str
) -> None:
    """An archived row whose statute trigger is -infinity: no statute's end, never 'past'."""
    live, archive = servers.pair("postgresql")
    table = _live(live, kind)
    create_table(archive, table, kind)
    _infinite(archive, table, NEG, "-infinity")
    before = ids(live, table)
    result = run_purge(store_doc(live, table, category="contracts", archive=archive), live, archive)
    _refused(result, table, role="archive")
    assert ids(live, table) == before and ids(archive, table) == {NEG}


def _at_first_batch(server: DatabaseServer, table: str) -> Callable[[str], None]:
    """A fault hook writing a -infinity trigger after the run's count, before its first
    batch."""
    batches: list[str] = []

    def fault(point: str) -> None:
        if point == "before-select":
            batches.append(point)
            if len(batches) == 1:
                _infinite(server, table, NEG, "-infinity")

    return fault


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("statutory", [False, True])
@pytest.mark.parametrize("max_rows", [5, 100000])
def test_a_minus_infinity_trigger_written_during_the_run_is_never_deleted(
    servers: DatabaseServers, kind: str, statutory: bool, max_rows: int
) -> None:
    """Written after the run's count, before its first batch: it sorts before every expired
    row, so that batch picked it first and deleted it (statutory: copied it). Now no batch
    takes it, and the count at the run's end refuses it."""
    live, archive = servers.pair("postgresql")
    table = _live(live, kind)
    fault = _at_first_batch(live, table)
    if statutory:
        create_table(archive, table, kind)
        doc = store_doc(
            live, table, category="contracts", archive=archive, batchSize=3,
            maxRowsPerRun=max_rows,
        )  # fmt: skip
        result = run_purge(doc, live, archive, fault=fault)
        assert NEG not in ids(archive, table), result.message
    else:
        doc = store_doc(live, table, batchSize=3, maxRowsPerRun=max_rows)
        result = run_purge(doc, live, fault=fault)
    assert NEG in ids(live, table), result.message
    _refused(result, table)

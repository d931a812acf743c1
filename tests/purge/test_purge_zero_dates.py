"""A MariaDB trigger that names no instant is never deleted; the run says which column.

MariaDB stores a zero date (`0000-00-00`) or one with a zero month or day (`2024-00-10`)
when the writing session's sql_mode lacks NO_ZERO_DATE / NO_ZERO_IN_DATE (10.11's default
lacks both), and PyMySQL returns such a value as text. Before: the oldest expired trigger
being one made every run fail `Internal` (a TypeError reading it as an instant), and one that
was not the oldest sorted among the expired rows (a zero date before every real one, a zero
month before January) and was deleted. Now the run refuses it (`ColumnRefused`, the table and
column named, never the value) before a batch, on plain, statutory and dry runs alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from dataward.purge.sql import TableStatements
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import run_purge, store_doc, unique
from tests.purge.tables import create_table, insert_rows
from tests.purge.test_children import (
    Row,
    children_doc,
    create_children_table,
    insert_children,
    kids_policy,
)

pytestmark = pytest.mark.db
KIND = "datetime6"
YEAR = datetime.now(UTC).year - 2  # every row below is past retention, within the statute
ZEROS = {"oldest": "0000-00-00 00:00:00", "among": f"{YEAR}-00-10 00:00:00"}
ZERO_ID = 99


def ids(server: DatabaseServer, table: str) -> set[int]:
    return {int(i) for (i,) in server.query(f"SELECT id FROM {table}")}


def _live(server: DatabaseServer, zero: str | None, kind: str = KIND) -> str:
    """Expired rows 1-3 in the year before YEAR (older than any zero month of YEAR), 4-8 in
    February of YEAR, a fresh row 50, a NULL row 51 and, given `zero`, row 99 with it."""
    table = unique("zero")
    create_table(server, table, kind)
    old = datetime(YEAR - 1, 6, 1, tzinfo=UTC)
    rows: list[tuple[int, datetime | None]] = [(i, old + timedelta(days=i)) for i in (1, 2, 3)]
    rows += [(i, datetime(YEAR, 2, i, tzinfo=UTC)) for i in range(4, 9)]
    rows += [(50, datetime.now(UTC) + timedelta(days=1)), (51, None)]
    insert_rows(server, table, kind, rows)
    if zero is not None:
        _zero_row(server, table, zero)
    return table


def _zero_row(server: DatabaseServer, table: str, zero: str, row_id: int = ZERO_ID) -> None:
    server.execute(
        "SET SESSION sql_mode = ''",
        f"INSERT INTO {table} VALUES ({row_id}, '{zero}', 'row-{row_id}')",
    )


def _zero_at_second_batch(
    server: DatabaseServer, table: str, zero: str, row_id: int = ZERO_ID
) -> Callable[[str], None]:
    """A fault hook writing a zero trigger (`row_id`) just before the run's second batch."""
    batches: list[str] = []

    def fault(point: str) -> None:
        if point == "before-select":
            batches.append(point)
            if len(batches) == 2:
                _zero_row(server, table, zero, row_id=row_id)

    return fault


def _refused(result: Any, table: str, role: str = "live") -> str:
    assert (result.result, result.reason) == ("Failed", "ColumnRefused"), result.message
    message: str = result.message
    assert f"the {role} table {table}" in message and "'ts'" in message, message
    assert "NO_ZERO_DATE" in message and "NO_ZERO_IN_DATE" in message, message
    assert "NULL" in message, message
    assert "0000-00-00" not in message and "-00-" not in message, message
    return message


@pytest.mark.parametrize("batch_size", [1, 3, 100])
@pytest.mark.parametrize("where", ["oldest", "among"])
def test_a_zero_trigger_is_refused_and_nothing_is_deleted(
    servers: DatabaseServers, where: str, batch_size: int
) -> None:
    live = servers.mysql_live
    table = _live(live, ZEROS[where])
    before = ids(live, table)
    result = run_purge(store_doc(live, table, batchSize=batch_size), live)
    message = _refused(result, table)
    assert "nothing was deleted" in message, message
    assert ids(live, table) == before


@pytest.mark.parametrize(
    ("kind", "zero"),
    [("date", "0000-00-00"), ("date", f"{YEAR}-01-00"), ("timestamp6", "0000-00-00 00:00:00")],
)
def test_date_and_timestamp_triggers_are_refused_the_same_way(
    servers: DatabaseServers, kind: str, zero: str
) -> None:
    live = servers.mysql_live
    table = _live(live, zero, kind)
    before = ids(live, table)
    _refused(run_purge(store_doc(live, table), live), table)
    assert ids(live, table) == before


@pytest.mark.parametrize("batch_size", [1, 3, 100])
@pytest.mark.parametrize("where", ["oldest", "among"])
def test_a_statutory_run_copies_and_deletes_no_zero_trigger(
    servers: DatabaseServers, where: str, batch_size: int
) -> None:
    live, archive = servers.pair("mysql")
    table = _live(live, ZEROS[where])
    create_table(archive, table, KIND)
    before = ids(live, table)
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=batch_size)
    _refused(run_purge(doc, live, archive), table)
    assert ids(live, table) == before
    assert ids(archive, table) == set()


@pytest.mark.parametrize("where", ["oldest", "among"])
def test_a_dry_run_is_refused_the_same_way(servers: DatabaseServers, where: str) -> None:
    live = servers.mysql_live
    table = _live(live, ZEROS[where])
    result = run_purge(store_doc(live, table, dryRun=True), live)
    assert result.dry_run
    _refused(result, table)


def test_a_zero_trigger_in_the_archive_is_never_destroyed(servers: DatabaseServers) -> None:
    """An archived row past the statute whose trigger is a zero date: no statute's end."""
    live, archive = servers.pair("mysql")
    table = _live(live, None)
    create_table(archive, table, KIND)
    _zero_row(archive, table, ZEROS["oldest"])
    before = ids(live, table)
    result = run_purge(store_doc(live, table, category="contracts", archive=archive), live, archive)
    _refused(result, table, role="archive")
    assert ids(live, table) == before and ids(archive, table) == {ZERO_ID}


def test_a_zero_trigger_written_during_the_run_stops_it_before_its_batch(
    servers: DatabaseServers,
) -> None:
    """A zero month written after the run's count, sorting after the rows already deleted:
    the batch that reaches it is refused before its DELETE; the batches committed before it
    stay, and the message says how many rows they deleted. (maxRowsPerRun below the expired
    rows: no key sweep, which never reads a trigger back.)"""
    live = servers.mysql_live
    table = _live(live, None)
    written: list[bool] = []

    def fault(point: str) -> None:
        if point == "after-select" and not written:
            written.append(True)
            _zero_row(live, table, ZEROS["among"])

    doc = store_doc(live, table, batchSize=1, maxRowsPerRun=6)
    message = _refused(run_purge(doc, live, fault=fault), table)
    assert "3 rows were deleted before" in message, message
    assert ids(live, table) == {4, 5, 6, 7, 8, 50, 51, ZERO_ID}


def test_valid_triggers_with_a_zero_date_elsewhere_are_purged(servers: DatabaseServers) -> None:
    """A guard: a zero date in another column is no trigger; the run deletes as before."""
    live = servers.mysql_live
    table = _live(live, None)
    live.execute(
        f"ALTER TABLE {table} ADD COLUMN born DATE NULL",
        "SET SESSION sql_mode = ''",
        f"UPDATE {table} SET born = '0000-00-00' WHERE id IN (1, 5)",
    )
    result = run_purge(store_doc(live, table), live)
    assert result.result == "Succeeded", result.message
    assert ids(live, table) == {50, 51}


@pytest.mark.parametrize("batch_size", [1, 100])
def test_a_zero_trigger_a_childrens_rule_would_take_is_refused(
    servers: DatabaseServers, batch_size: int
) -> None:
    """A children's table: the retention (10y) reaches no row, the consent grace does; a zero
    month among the children's rows without consent is refused by that pass too."""
    live = servers.mysql_live
    table = unique("zerokids")
    create_children_table(live, table, "instant", "timestamp")
    born = date(YEAR - 4, 5, 1)
    rows: list[Row] = [(i, datetime(YEAR - 1, 6, i, tzinfo=UTC), born, None, None) for i in (1, 2)]
    rows += [(i, datetime(YEAR, 2, i, tzinfo=UTC), born, None, None) for i in (3, 4)]
    insert_children(live, table, "instant", rows)
    live.execute(
        "SET SESSION sql_mode = ''",
        f"INSERT INTO {table} VALUES ({ZERO_ID}, '{ZEROS['among']}', '{born}', NULL, NULL, 'z')",
    )
    doc = children_doc(
        live, table, {"birthDateColumn": "birth", "consentColumn": "consent"}, batchSize=batch_size
    )
    _refused(run_purge(doc, live, policy_doc=kids_policy()), table)
    assert ids(live, table) == {1, 2, 3, 4, ZERO_ID}


def test_a_zero_trigger_written_inside_a_statutory_batch_is_neither_copied_nor_deleted(
    servers: DatabaseServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zero day written before the second batch, inside its range (not its boundary): the
    rows that batch locks and reads are refused before any is copied or deleted. (Literal
    copies turned off, so the batch reads its rows back: a batch copied as server-written
    literals never does, and only the count at the start guards it.)"""
    monkeypatch.setattr(TableStatements, "lock_literals", lambda *_a, **_k: None)
    live, archive = servers.pair("mysql")
    table = _live(live, None)
    create_table(archive, table, KIND)
    fault = _zero_at_second_batch(live, table, f"{YEAR}-02-00 00:00:00")

    doc = store_doc(
        live, table, category="contracts", archive=archive, batchSize=3, maxRowsPerRun=6
    )
    message = _refused(run_purge(doc, live, archive, fault=fault), table)
    assert "3 rows were deleted before" in message, message
    assert ids(live, table) == {4, 5, 6, 7, 8, 50, 51, ZERO_ID}
    assert ids(archive, table) == {1, 2, 3}


@pytest.mark.parametrize("statutory", [False, True])
def test_a_zero_trigger_written_inside_a_key_sweep_range_is_never_deleted(
    servers: DatabaseServers, statutory: bool
) -> None:
    """A zero day written, after the run's count, between two keys of a key-sweep batch
    (neither its boundary nor a row it reads back): the batch's DELETE of its key range
    compared it as the earliest day of its month, "expired", and deleted it (statutory, on
    the live server's archive database: copied there by INSERT ... SELECT, then deleted)."""
    live, archive = servers.pair("mysql")
    table = unique("zsweep")
    create_table(live, table, KIND)
    old = datetime(YEAR, 2, 1, tzinfo=UTC)
    insert_rows(live, table, KIND, [(i, old + timedelta(days=i // 10)) for i in range(10, 90, 10)])
    fault = _zero_at_second_batch(live, table, f"{YEAR}-02-00 00:00:00", row_id=45)

    if statutory:
        create_table(archive, table, KIND)
        doc = store_doc(live, table, category="contracts", archive=archive, batchSize=3)
        result = run_purge(doc, live, archive, fault=fault)
    else:
        doc = store_doc(live, table, batchSize=3)
        result = run_purge(doc, live, fault=fault)
    assert 45 in ids(live, table), result.message
    if statutory:
        assert 45 not in ids(archive, table)
    # The count at the run's end refuses it (before: Succeeded, left to the next run).
    _refused(result, table)


@pytest.mark.parametrize("statutory", [False, True])
def test_a_zero_trigger_written_inside_a_time_ordered_batch_is_never_deleted(
    servers: DatabaseServers, statutory: bool
) -> None:
    """The batches in trigger order (no key sweep: maxRowsPerRun below the expired rows): a
    zero day written during the run sorting between a batch's first and last trigger, which
    its DELETE (or its copy as server-written literals) took as expired."""
    live, archive = servers.pair("mysql")
    table = unique("zorder")
    create_table(live, table, KIND)
    start = datetime(YEAR, 2, 25, tzinfo=UTC)
    rows = [(i, start + timedelta(days=i // 10)) for i in range(10, 90, 10)]
    insert_rows(live, table, KIND, rows)
    fault = _zero_at_second_batch(live, table, f"{YEAR}-03-00 00:00:00", row_id=45)

    if statutory:
        create_table(archive, table, KIND)
        doc = store_doc(
            live, table, category="contracts", archive=archive, batchSize=3, maxRowsPerRun=7
        )
        result = run_purge(doc, live, archive, fault=fault)
        assert 45 not in ids(archive, table), result.message
    else:
        result = run_purge(store_doc(live, table, batchSize=3, maxRowsPerRun=7), live, fault=fault)
    assert 45 in ids(live, table), result.message
    _refused(result, table)

"""Subject requests and triggers that name no instant, on real PostgreSQL 15 and MariaDB.

- PostgreSQL's `-infinity` in the trigger names no instant: like a MariaDB zero date, a
  request whose answer depends on it (an access, an erasure under a statute) is refused
  (`ColumnRefused`, table and column named, never the value). Before: psycopg could not read
  it into Python and the request failed `DatabaseError` ("SQLSTATE unknown").
- PostgreSQL's `infinity` in the trigger names an instant that never comes: her row's period
  never starts, as for a trigger that has not happened (NULL): under a statute it stays in
  the live store and is counted so; without one it is erased. In any other column either
  value is exported as the server shows it. Before: `DatabaseError` for every request.
- An erasure without a statute erases her rows whatever their triggers hold (a MariaDB zero
  date, -infinity): no statute keeps them, so the trigger decides nothing. Before: refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.subjects.support import create_table, ids, run, subject_store

pytestmark = pytest.mark.db

RECENT = (datetime.now(UTC) - timedelta(days=60)).strftime("%Y-%m-%d %H:%M:%S")
PG_TYPES = ["timestamptz", "timestamp", "date"]


def _store(
    live: DatabaseServer, archive: DatabaseServer | None, ts_type: str, trigger: str
) -> tuple[dict[str, Any], str]:
    """people (id, ts, born, email): row 1 hers with `trigger`, row 2 hers two months past
    its trigger (archived under a statute), row 3 someone else's. `archive`: the contracts
    category (a 5-year statute) and an empty archive table; else support (no statute)."""
    category = "contracts" if archive is not None else "support"
    doc, people, _notes, _audit = subject_store(live, archive, category=category)
    born = "date" if live.engine == "postgresql" else "date NULL"
    columns = f"id bigint PRIMARY KEY, ts {ts_type} NULL, born {born}, email varchar(200)"
    for server in (live,) if archive is None else (live, archive):
        create_table(server, people, columns)
    doc["spec"]["records"] = doc["spec"]["records"][:1]
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "email", "column": "email"}]
    zero = "SET SESSION sql_mode = ''" if live.engine == "mysql" else "SELECT 1"
    live.execute(
        zero,
        f"INSERT INTO {people} VALUES (1, '{trigger}', NULL, 'kim@x'), "
        f"(2, '{RECENT}', NULL, 'kim@x'), (3, '{trigger}', NULL, 'lee@x')",
    )
    return doc, people


def _refused(outcome: Any, people: str, value: str) -> None:
    result = outcome.result
    assert (result.outcome, result.reason) == ("Failed", "ColumnRefused"), result.message
    assert people in result.message and "'ts'" in result.message, result.message
    assert "kim@x" not in result.message, result.message
    if not value.endswith("infinity"):  # (PostgreSQL's infinities are named as kinds)
        assert value not in result.message, result.message
    assert outcome.document is None


@pytest.mark.parametrize("ts_type", PG_TYPES)
@pytest.mark.parametrize(("request_type", "statutory"), [("access", False), ("access", True),
                                                         ("erasure", True)])  # fmt: skip
def test_minus_infinity_in_the_trigger_is_refused_where_it_decides(
    servers: DatabaseServers, ts_type: str, request_type: str, statutory: bool
) -> None:
    live, archive = servers.pair("postgresql")
    doc, people = _store(live, archive if statutory else None, ts_type, "-infinity")
    outcome = run(doc, live, archive if statutory else None, request_type, {"email": "kim@x"})
    _refused(outcome, people, "-infinity")
    assert ids(live, people) == {1, 2, 3}
    if statutory:
        assert ids(archive, people) == set()


@pytest.mark.parametrize(
    ("engine", "ts_type", "trigger"),
    [("postgresql", t, "-infinity") for t in PG_TYPES]
    + [("mysql", "datetime", "0000-00-00 00:00:00"), ("mysql", "date", "2024-03-00")],
)
def test_an_erasure_without_a_statute_erases_whatever_the_trigger_holds(
    servers: DatabaseServers, engine: str, ts_type: str, trigger: str
) -> None:
    live = servers.pg_live if engine == "postgresql" else servers.mysql_live
    doc, people = _store(live, None, ts_type, trigger)
    dry = run(doc, live, None, "erasure", {"email": "kim@x"}, dry_run=True)
    assert dry.result.outcome == "Succeeded", dry.result.message
    assert [t.rows_deleted for t in dry.result.tables] == [2]
    outcome = run(doc, live, None, "erasure", {"email": "kim@x"})
    assert outcome.result.outcome == "Succeeded", outcome.result.message
    assert ids(live, people) == {3}


@pytest.mark.parametrize(("ts_type", "trigger"), [("datetime", "0000-00-00 00:00:00"),
                                                  ("date", "2024-03-00")])  # fmt: skip
def test_a_zero_trigger_is_still_refused_under_a_statute(
    servers: DatabaseServers, ts_type: str, trigger: str
) -> None:
    live, archive = servers.pair("mysql")
    doc, people = _store(live, archive, ts_type, trigger)
    _refused(run(doc, live, archive, "erasure", {"email": "kim@x"}), people, trigger)
    assert ids(live, people) == {1, 2, 3} and ids(archive, people) == set()


@pytest.mark.parametrize("ts_type", PG_TYPES)
@pytest.mark.parametrize("statutory", [False, True])
def test_infinity_in_the_trigger_is_a_period_that_never_starts(
    servers: DatabaseServers, ts_type: str, statutory: bool
) -> None:
    live, archive = servers.pair("postgresql")
    doc, people = _store(live, archive if statutory else None, ts_type, "infinity")
    arch = archive if statutory else None
    access = run(doc, live, arch, "access", {"email": "kim@x"})
    assert access.result.outcome == "Succeeded", access.result.message
    assert access.document is not None
    rows = {r["values"]["id"]: r["values"]["ts"] for r in json.loads(access.document)["rows"]}
    assert set(rows) == {1, 2} and rows[1] == "infinity", rows
    dry = run(doc, live, arch, "erasure", {"email": "kim@x"}, dry_run=True)
    assert dry.result.outcome == "Succeeded", dry.result.message
    (table,) = dry.result.tables
    if statutory:
        assert (table.rows_deleted, table.rows_archived, table.rows_kept_live) == (1, 1, 1)
    else:
        assert (table.rows_deleted, table.rows_kept_live) == (2, 0)
    erasure = run(doc, live, arch, "erasure", {"email": "kim@x"})
    assert erasure.result.outcome == "Succeeded", erasure.result.message
    (table,) = erasure.result.tables
    if statutory:
        assert ids(live, people) == {1, 3} and ids(archive, people) == {2}
        assert (table.rows_deleted, table.rows_archived, table.rows_kept_live) == (1, 1, 1)
    else:
        assert ids(live, people) == {3}


def test_infinities_outside_the_trigger_are_exported_as_the_server_shows_them(
    servers: DatabaseServers,
) -> None:
    live = servers.pg_live
    doc, people = _store(live, None, "timestamptz", RECENT)
    live.execute(f"UPDATE {people} SET born = '-infinity' WHERE id = 1",
                 f"UPDATE {people} SET born = 'infinity' WHERE id = 2")  # fmt: skip
    access = run(doc, live, None, "access", {"email": "kim@x"})
    assert access.result.outcome == "Succeeded", access.result.message
    assert access.document is not None
    born = {r["values"]["id"]: r["values"]["born"] for r in json.loads(access.document)["rows"]}
    assert born == {1: "-infinity", 2: "infinity"}


def test_minus_infinity_in_the_archive_is_never_destroyed(servers: DatabaseServers) -> None:
    """Her archived row whose statute trigger is -infinity: no statute's end to pass."""
    live, archive = servers.pair("postgresql")
    doc, people = _store(live, archive, "timestamptz", RECENT)
    archive.execute(f"INSERT INTO {people} VALUES (7, '-infinity', NULL, 'kim@x')")
    _refused(run(doc, live, archive, "erasure", {"email": "kim@x"}), people, "-infinity")
    assert ids(live, people) == {1, 2, 3} and ids(archive, people) == {7}


@pytest.mark.parametrize(("engine", "ts_type", "trigger"), [
    ("postgresql", "timestamptz", "-infinity"), ("postgresql", "date", "infinity"),
    ("mysql", "datetime", "0000-00-00 00:00:00"), ("mysql", "date", "2024-03-00"),
])  # fmt: skip
def test_without_a_statute_her_archived_rows_go_whatever_their_triggers_hold(
    servers: DatabaseServers, engine: str, ts_type: str, trigger: str
) -> None:
    """A category without a statute (no longer) whose archive still holds her rows: the
    erasure destroys them all, found by key and trigger as read."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people = _store(live, None, ts_type, RECENT)
    create_table(archive, people, f"id bigint PRIMARY KEY, ts {ts_type} NULL, born date NULL, "
                                  "email varchar(200)")  # fmt: skip
    doc["spec"]["archive"] = {"database": archive.store_database()}
    zero = "SET SESSION sql_mode = ''" if engine == "mysql" else "SELECT 1"
    archive.execute(zero, f"INSERT INTO {people} VALUES (7, '{trigger}', NULL, 'kim@x'), "
                          f"(8, '{trigger}', NULL, 'lee@x')")  # fmt: skip
    outcome = run(doc, live, archive, "erasure", {"email": "kim@x"})
    assert outcome.result.outcome == "Succeeded", outcome.result.message
    assert ids(live, people) == {3} and ids(archive, people) == {8}
    assert [t.archive_rows_destroyed for t in outcome.result.tables] == [1]

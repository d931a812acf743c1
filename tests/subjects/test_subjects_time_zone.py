"""records[].timeZone in data-subject requests on real PostgreSQL and MariaDB.

An erasure decides per row whether the statute still keeps it (archive) or not (destroy), and
destroys archived rows past it. With a naive trigger column read as UTC, a New York row whose
statute ends in 3 hours looked 2 hours past it and was destroyed; a Seoul row 3 hours past it
looked 6 hours within it and was archived.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest

from dataward.model.durations import cutoff_for, parse_duration
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import store_doc, unique
from tests.subjects.support import EMAIL, NEIGHBOURS, create_table, ids, run

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]
STATUTE = parse_duration("5y")  # the `contracts` category
NAIVE = {"postgresql": "timestamp", "mysql": "DATETIME(6)"}


def wall(instant: datetime, zone: str) -> datetime:
    """The instant as the zone's wall clock, as a naive column holds it."""
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None, microsecond=0)


def statute_ends_at(at: datetime) -> datetime:
    """A trigger whose statute ends at `at` or later, and not before."""
    return cutoff_for(at, STATUTE)


def create(server: DatabaseServer, table: str, ts: str | None = None) -> None:
    """`(id, ts, email, payload)`, ts a naive column unless `ts` names another type."""
    ts = ts or NAIVE[server.engine]
    create_table(server, table, f"id bigint PRIMARY KEY, ts {ts}, email varchar(200), "
                                "payload varchar(200)")  # fmt: skip


def insert(server: DatabaseServer, table: str, rows: list[tuple[int, datetime, str]]) -> None:
    """Rows `(id, naive wall clock, email)`, written as they are."""
    conn = server.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} (id, ts, email, payload) VALUES (%s, %s, %s, 'p')", rows
            )
        conn.commit()
    finally:
        conn.close()


def zoned_doc(
    live: DatabaseServer, archive: DatabaseServer, table: str, zone: str
) -> dict[str, Any]:
    """A `contracts` store of `table`, its subject found by email, its triggers in `zone`."""
    doc = store_doc(live, table, category="contracts", archive=archive)
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "email", "column": "email"}]
    doc["spec"]["records"][0]["timeZone"] = zone
    return doc


def zoned_store(
    live: DatabaseServer, archive: DatabaseServer, zone: str
) -> tuple[dict[str, Any], str]:
    table = unique("tzsub")
    for server in (live, archive):
        create(server, table)
    return zoned_doc(live, archive, table, zone), table


class AroundTheStatute(NamedTuple):
    """A zoned store on an engine's pair, and the zone's wall clocks of a trigger whose
    statute ends 3 hours after `now` (`within`) and of one whose statute ended 3 hours
    before it (`past`)."""

    live: DatabaseServer
    archive: DatabaseServer
    doc: dict[str, Any]
    table: str
    now: datetime
    within: datetime
    past: datetime


def around_the_statute(servers: DatabaseServers, engine: str, zone: str) -> AroundTheStatute:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, table = zoned_store(live, archive, zone)
    now = datetime.now(UTC)
    return AroundTheStatute(
        live, archive, doc, table, now,
        within=wall(statute_ends_at(now + timedelta(hours=3)), zone),
        past=wall(statute_ends_at(now - timedelta(hours=3)), zone),
    )  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_new_york_rows_within_the_statute_are_kept_not_destroyed(
    servers: DatabaseServers, engine: str
) -> None:
    """Red on the old code: rows 1 and 10 (statute ends in 3 hours) were destroyed."""
    live, archive, doc, table, now, within, past = around_the_statute(
        servers, engine, "America/New_York"
    )
    insert(live, table, [(1, within, EMAIL), (2, past, EMAIL), (3, within, NEIGHBOURS[0])])
    insert(archive, table, [(10, within, EMAIL), (11, past, EMAIL)])

    dry = run(doc, live, archive, "erasure", {"email": EMAIL}, dry_run=True).result
    assert dry.outcome == "Succeeded", dry.message
    counted = dry.tables[0]
    assert (counted.rows_deleted, counted.rows_archived) == (2, 1)
    assert counted.archive_rows_destroyed == 1

    result = run(doc, live, archive, "erasure", {"email": EMAIL}).result

    assert result.outcome == "Succeeded", result.message
    table_result = result.tables[0]
    assert (table_result.rows_deleted, table_result.rows_archived) == (2, 1)
    assert table_result.archive_rows_destroyed == 1
    assert ids(live, table) == {3}
    assert ids(archive, table) == {1, 10}
    # The statute's end is reported as the real instant, not 5 hours earlier.
    assert table_result.kept_until is not None
    assert now + timedelta(hours=2) < table_result.kept_until < now + timedelta(hours=28)


@pytest.mark.parametrize("engine", ENGINES)
def test_seoul_rows_past_the_statute_are_not_archived(
    servers: DatabaseServers, engine: str
) -> None:
    """Red on the old code: row 2, 3 hours past its statute, was archived for 6 more hours."""
    live, archive, doc, table, _, within, past = around_the_statute(servers, engine, "Asia/Seoul")
    insert(live, table, [(1, within, EMAIL), (2, past, EMAIL)])

    result = run(doc, live, archive, "erasure", {"email": EMAIL}).result

    assert result.outcome == "Succeeded", result.message
    assert (result.tables[0].rows_deleted, result.tables[0].rows_archived) == (2, 1)
    assert ids(live, table) == set()
    assert ids(archive, table) == {1}


@pytest.mark.parametrize("engine", ENGINES)
def test_access_reports_the_trigger_as_the_zones_instant(
    servers: DatabaseServers, engine: str
) -> None:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    zone = "Asia/Seoul"
    doc, table = zoned_store(live, archive, zone)
    at = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
    insert(live, table, [(1, wall(at, zone), EMAIL)])

    outcome = run(doc, live, archive, "access", {"email": EMAIL})

    assert outcome.result.outcome == "Succeeded", outcome.result.message
    assert outcome.document is not None
    (row,) = json.loads(outcome.document)["rows"]
    assert row["triggeredAt"] == "2024-06-01T03:00:00Z"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_zoned_trigger_archived_as_an_instant_is_refused_before_any_erasure(
    servers: DatabaseServers, engine: str
) -> None:
    """The archive would write the wall clock as a UTC instant and destroy the copy on the
    wrong day: the erasure fails with ArchiveTableInvalid and deletes nothing."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    zone = "Asia/Seoul"
    table = unique("tzsub")
    create(live, table)
    instant_type = "timestamptz" if engine == "postgresql" else "TIMESTAMP(6) NULL DEFAULT NULL"
    create(archive, table, instant_type)
    doc = zoned_doc(live, archive, table, zone)
    insert(live, table, [(1, wall(datetime.now(UTC) - timedelta(days=30), zone), EMAIL)])

    result = run(doc, live, archive, "erasure", {"email": EMAIL}).result

    assert result.outcome == "Failed" and result.reason == "ArchiveTableInvalid", result.message
    assert ids(live, table) == {1} and ids(archive, table) == set()

"""records[].timeZone on real PostgreSQL and MariaDB: a naive trigger column holds the wall
clock of the application's zone, and no row goes before its own expiry.

Without timeZone a wall clock is read as UTC: in a zone behind UTC (New York) that deletes rows
hours before they expire; in one ahead (Seoul) it keeps expired rows hours too long. A date is
the whole day in the zone. Instant columns (timestamptz, MySQL TIMESTAMP) ignore timeZone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dataward.model.durations import cutoff_for, parse_duration
from tests.databases import DatabaseServer, DatabaseServers
from tests.expiry import zone_expired
from tests.purge.support import run_purge, store_doc, unique
from tests.purge.tables import create_table, insert_rows

pytestmark = pytest.mark.db
YEAR = parse_duration("1y")  # the `support` category
NAIVE = [
    ("postgresql", "timestamp"),
    ("postgresql", "timestamp0"),
    ("mysql", "datetime6"),
    ("mysql", "datetime"),
]
INSTANT = [("postgresql", "timestamptz"), ("mysql", "timestamp6")]
SEOUL, NEW_YORK = ZoneInfo("Asia/Seoul"), ZoneInfo("America/New_York")


def zoned_doc(live: DatabaseServer, table: str, zone: str | None, **kw: Any) -> dict[str, Any]:
    doc = store_doc(live, table, **kw)
    if zone is not None:
        doc["spec"]["records"][0]["timeZone"] = zone
    return doc


def trigger_expiring_at(at: datetime) -> datetime:
    """A trigger (UTC) of a `support` row that expires at `at` or later, and not before."""
    return cutoff_for(at, YEAR)


def wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The instant as the zone's wall clock, written into a naive column as is."""
    return instant.astimezone(zone).replace(tzinfo=None, microsecond=0)


def insert_naive(server: DatabaseServer, table: str, rows: list[tuple[int, Any]]) -> None:
    """Rows `(id, value)` whose naive datetime or date goes in as written, no conversion."""
    conn = server.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} (id, ts, payload) VALUES (%s, %s, 'p')", rows)
        conn.commit()
    finally:
        conn.close()


def ids(server: DatabaseServer, table: str) -> set[int]:
    return {int(i) for (i,) in server.query(f"SELECT id FROM {table}")}


def _table(servers: DatabaseServers, engine: str, kind: str) -> tuple[DatabaseServer, str]:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("tz")
    create_table(live, table, kind)
    return live, table


def _expiring_and_expired(
    servers: DatabaseServers, engine: str, kind: str, zone: ZoneInfo
) -> tuple[DatabaseServer, str]:
    """A table of two rows in `zone`'s wall clock: 1 expires in 3 hours, 2 expired 3 hours ago."""
    live, table = _table(servers, engine, kind)
    now = datetime.now(UTC)
    soon = trigger_expiring_at(now + timedelta(hours=3))
    gone = trigger_expiring_at(now - timedelta(hours=3))
    insert_naive(live, table, [(1, wall(soon, zone)), (2, wall(gone, zone))])
    return live, table


@pytest.mark.parametrize(("engine", "kind"), NAIVE)
def test_new_york_wall_clock_row_is_not_deleted_before_it_expires(
    servers: DatabaseServers, engine: str, kind: str
) -> None:
    """Red on the old code: 3 hours before expiry, read as UTC, the row looked 2 hours over."""
    live, table = _expiring_and_expired(servers, engine, kind, NEW_YORK)

    result = run_purge(zoned_doc(live, table, "America/New_York"), live)

    assert result.result == "Succeeded", result.message
    assert ids(live, table) == {1}
    assert result.rows_deleted == 1


@pytest.mark.parametrize(("engine", "kind"), NAIVE)
def test_seoul_wall_clock_rows_go_when_they_expire_not_nine_hours_later(
    servers: DatabaseServers, engine: str, kind: str
) -> None:
    """Red on the old code: a row 3 hours past expiry, read as UTC, looked 6 hours young."""
    live, table = _expiring_and_expired(servers, engine, kind, SEOUL)

    dry = run_purge(zoned_doc(live, table, "Asia/Seoul", dryRun=True), live)
    assert dry.result == "Succeeded" and dry.rows_deleted == 1
    result = run_purge(zoned_doc(live, table, "Asia/Seoul"), live)

    assert result.result == "Succeeded", result.message
    assert ids(live, table) == {1}
    assert result.rows_deleted == 1


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_without_time_zone_wall_clock_is_utc_as_before(
    servers: DatabaseServers, engine: str
) -> None:
    kind = "timestamp" if engine == "postgresql" else "datetime6"
    live, table = _expiring_and_expired(servers, engine, kind, ZoneInfo("UTC"))

    result = run_purge(zoned_doc(live, table, None), live)

    assert result.result == "Succeeded", result.message
    assert ids(live, table) == {1}


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_date_goes_only_once_its_whole_day_has_ended_in_the_zone(
    servers: DatabaseServers, engine: str
) -> None:
    """Red on the old code: a date was midnight UTC, so New York's day still under way went
    at the start of its UTC day."""
    live, table = _table(servers, engine, "date")
    now = datetime.now(UTC)
    cutoff = cutoff_for(now, YEAR)
    # The zone's day in progress two hours after the cutoff: it has not ended by the purge.
    new_york_today = (cutoff + timedelta(hours=2)).astimezone(NEW_YORK).date()
    insert_naive(live, table, [(1, new_york_today), (2, new_york_today - timedelta(days=2))])

    result = run_purge(zoned_doc(live, table, "America/New_York"), live)

    assert result.result == "Succeeded", result.message
    assert ids(live, table) == {1}

    seoul = unique("tzd")
    create_table(live, seoul, "date")
    # Seoul's day in progress two hours after the cutoff stays; the day in progress 26 hours
    # before it ended at least two hours before it, and goes.
    seoul_today = (cutoff + timedelta(hours=2)).astimezone(SEOUL).date()
    seoul_ended = (cutoff - timedelta(hours=26)).astimezone(SEOUL).date()
    insert_naive(live, seoul, [(1, seoul_today), (2, seoul_ended)])

    result = run_purge(zoned_doc(live, seoul, "Asia/Seoul"), live)

    assert result.result == "Succeeded", result.message
    assert ids(live, seoul) == {1}


@pytest.mark.parametrize(("engine", "kind"), INSTANT)
def test_instant_columns_ignore_the_time_zone(
    servers: DatabaseServers, engine: str, kind: str
) -> None:
    """A TIMESTAMP (MySQL) or timestamptz holds an instant: read in New York, the expired row
    would look 5 hours younger and stay."""
    live, table = _table(servers, engine, kind)
    now = datetime.now(UTC)
    soon = trigger_expiring_at(now + timedelta(hours=3))
    gone = trigger_expiring_at(now - timedelta(hours=3))
    insert_rows(live, table, kind, [(1, soon), (2, gone)])

    result = run_purge(zoned_doc(live, table, "America/New_York"), live)

    assert result.result == "Succeeded", result.message
    assert ids(live, table) == {1}


@pytest.mark.parametrize(
    ("engine", "live_kind", "archive_kind"),
    [
        ("postgresql", "timestamp", "timestamptz"),
        ("postgresql", "timestamptz", "timestamp"),
        ("postgresql", "date", "timestamp"),
        ("mysql", "datetime6", "timestamp6"),
        ("mysql", "timestamp6", "timestamp6"),
    ],
)
def test_a_zoned_trigger_archived_as_another_kind_is_refused(
    servers: DatabaseServers, engine: str, live_kind: str, archive_kind: str
) -> None:
    """The archive would hold a different instant (a wall clock written in UTC, or a day turned
    into its midnight) and destroy rows before their statute ends: nothing is deleted."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("tza")
    create_table(live, table, live_kind)
    create_table(archive, table, archive_kind)
    old = datetime(2020, 1, 15, tzinfo=UTC)
    value: Any = old.date() if live_kind == "date" else wall(old, SEOUL)
    if live_kind in ("timestamptz", "timestamp6"):
        insert_rows(live, table, live_kind, [(1, old)])
    else:
        insert_naive(live, table, [(1, value)])
    doc = zoned_doc(live, table, "Asia/Seoul", category="contracts", archive=archive)

    result = run_purge(doc, live, archive)

    assert result.result == "Failed"
    assert result.reason == "ArchiveTableInvalid", result.message
    assert "timeZone" in result.message and "Asia/Seoul" in result.message
    assert ids(live, table) == {1} and ids(archive, table) == set()


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_zoned_statutory_rows_are_archived_and_kept_until_the_statute_ends(
    servers: DatabaseServers, engine: str
) -> None:
    """Live and archive both hold New York wall clock: an archived row whose statute ends in
    3 hours stays (read as UTC it looked 2 hours past it); one past it goes."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    kind = "timestamp" if engine == "postgresql" else "datetime6"
    table = unique("tzs")
    create_table(live, table, kind)
    create_table(archive, table, kind)
    now = datetime.now(UTC)
    statute = parse_duration("5y")
    insert_naive(
        archive,
        table,
        [
            (1, wall(cutoff_for(now + timedelta(hours=3), statute), NEW_YORK)),
            (2, wall(cutoff_for(now - timedelta(hours=3), statute), NEW_YORK)),
        ],
    )
    expired = cutoff_for(now - timedelta(hours=3), parse_duration("1mo"))
    insert_naive(live, table, [(3, wall(expired, NEW_YORK))])
    doc = zoned_doc(live, table, "America/New_York", category="contracts", archive=archive)

    result = run_purge(doc, live, archive)

    assert result.result == "Succeeded", result.message
    assert ids(live, table) == set()
    assert ids(archive, table) == {1, 3}


@pytest.mark.parametrize(("engine", "kind"), [NAIVE[0], NAIVE[2]])
def test_a_zoned_tables_result_names_the_bound_it_was_cut_at(
    servers: DatabaseServers, engine: str, kind: str
) -> None:
    """The run's `cutoff` is UTC's calendar; a Seoul wall-clock table is cut at its own
    bound, which its result and the message give: a Seoul wall clock whose row has expired
    by the oracle at the run's instant, and a day later one that has not. Red on the old
    code: the result named no bound but the run's."""
    live, table = _expiring_and_expired(servers, engine, kind, SEOUL)

    result = run_purge(zoned_doc(live, table, "Asia/Seoul"), live)

    assert result.result == "Succeeded", result.message
    (entry,) = result.to_dict()["tables"]
    assert entry["timeZone"] == "Asia/Seoul"
    bound = datetime.fromisoformat(entry["zoneCutoff"])
    assert bound.tzinfo is None and result.server_time is not None
    assert zone_expired(bound, YEAR, result.server_time, SEOUL)
    assert not zone_expired(bound + timedelta(days=1), YEAR, result.server_time, SEOUL)
    assert f"{table} {entry['zoneCutoff']} Asia/Seoul" in result.message

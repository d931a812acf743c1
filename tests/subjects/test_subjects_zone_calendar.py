"""records[].timeZone in data-subject requests: the statute and the retention of a wall-clock
or date trigger count on the zone's own calendar, as the purge's do
(tests/purge/test_zone_calendar.py). Before, a request added months and years to the
trigger's UTC instant: a New York row of 2024-02-28 22:00 under a 5-year statute was deleted
without its archive copy (and its archived copy destroyed) on 2029-02-28 UTC, a day before
its statute ends in New York. Expected values come from tests/expiry.py's zone oracle.
Unit tests: in-memory sessions that tell their server's time.
"""

from __future__ import annotations

import calendar
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dataward.model.durations import parse_duration
from dataward.model.policy import parse_policy
from dataward.model.store import RecordSet, SubjectColumn
from dataward.purge.claims import CLAIMS_TABLE
from dataward.purge.sql import Column, TableName
from dataward.subjects.engine import Located, Outcome, RequestOptions, run_request
from dataward.subjects.identifiers import parse_identifiers
from dataward.subjects.plan import TablePlan, lifecycle_of, row_fate
from tests.expiry import zone_expiry
from tests.purge.support import POLICY
from tests.subjects.test_subjects_clock_skew import EMAIL, FakeSession, contract_store

TICK = timedelta(microseconds=1)
END_OF_DAY = timedelta(days=1) - TICK
ZONES = ["America/New_York", "Europe/Berlin", "Asia/Seoul", "Australia/Lord_Howe"]
STATUTE = parse_duration("5y")  # the `contracts` category's statute
RETENTION = parse_duration("1mo")  # and its retention
NAIVE = (
    Column("id", "bigint", None),
    Column("ts", "timestamp without time zone", 6),
    Column("email", "character varying", None),
)


def located(zone: ZoneInfo) -> Located:
    """A live table whose naive trigger column is read in `zone` (as `locate` finds it)."""
    records = RecordSet(table="people", timestamp_column="ts", key_columns=("id",),
                        subject_columns=(SubjectColumn("email", "email"),))  # fmt: skip
    return Located(plan=TablePlan(records, records.subject_columns),
                   table=TableName(None, "people"), columns=("id", "ts", "email"),
                   predicate="TRUE", params=(), ts_position=1, key_positions=(0,),
                   zone=zone)  # fmt: skip


def day_end(day: date) -> datetime:
    return datetime(day.year, day.month, day.day) + END_OF_DAY


def month_end_walls() -> list[datetime]:
    """Wall clocks of the last two days of every month of 2024 (leap February) and the first
    day of the next, at hours where the zones are a calendar day from UTC."""
    walls = []
    for month in range(1, 13):
        last = calendar.monthrange(2024, month)[1]
        days = [date(2024, month, last - 1), date(2024, month, last)]
        days.append(days[-1] + timedelta(days=1))
        for day in days:
            for hour, minute in ((0, 0), (2, 30), (5, 0), (12, 0), (19, 0), (23, 30)):
                walls.append(datetime(day.year, day.month, day.day, hour, minute))
    return walls


@pytest.mark.parametrize("name", ZONES)
def test_statute_and_retention_end_on_the_zones_calendar(name: str) -> None:
    """keptUntil and expiresAt are the oracle's, and the statute keeps the row (archived, not
    deleted or destroyed) until that instant and not a microsecond after: wall clocks and
    dates (a whole day, read at its end) around every 2024 month end."""
    zone = ZoneInfo(name)
    life = lifecycle_of(contract_store(), parse_policy(POLICY))
    table = located(zone)
    wrong: list[tuple[Any, str]] = []
    values: list[datetime | date] = [*month_end_walls()]
    values += sorted({w.date() for w in month_end_walls()})
    for value in values:
        # A date is the whole day: its trigger is the day's last wall clock.
        wall = value if isinstance(value, datetime) else day_end(value)
        until = zone_expiry(wall, STATUTE, zone)
        trigger = table.trigger(value)
        if life.kept_until(trigger) != until:
            wrong.append((value, f"keptUntil {life.kept_until(trigger)}, not {until}"))
        if life.expires_at(trigger) != zone_expiry(wall, RETENTION, zone):
            wrong.append((value, f"expiresAt {life.expires_at(trigger)}"))
        if row_fate(trigger, life, until - TICK) != "archive":
            wrong.append((value, "not archived a microsecond before its statute ends"))
        if row_fate(trigger, life, until) != "delete":
            wrong.append((value, "archived after its statute ended"))
    assert wrong == [], f"{len(wrong)} wrong in {name}, first {wrong[:3]}"


class ZonedSession(FakeSession):
    """The skew tests' table with `ts timestamp without time zone`, and its whole rows."""

    def columns(self, table: TableName) -> tuple[Column, ...]:
        return super().columns(table) if table.name == CLAIMS_TABLE else NAIVE

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        if sql.startswith('SELECT "id", "ts", "email" FROM'):
            return [(i, ts, EMAIL) for i, ts in self.rows.items()]
        return super().query(sql, params)


def zoned_store(zone: str) -> Any:
    """The skew tests' store (`contract_store`), its triggers read in `zone`."""
    return contract_store(zone)


def request(
    zone: str, kind: str, now: datetime, live: FakeSession, archive: FakeSession, dry_run: bool
) -> Outcome:
    return run_request(
        zoned_store(zone), parse_policy(POLICY), parse_identifiers({"email": EMAIL}),
        kind,  # type: ignore[arg-type]
        connect_live=lambda: live, connect_archive=lambda: archive, job_clock=lambda: now,
        options=RequestOptions(dry_run=dry_run),
    )  # fmt: skip


# 2024-02-28 22:00 EST is 2024-02-29T03:00Z: five years on, the UTC calendar clamps it to
# 2029-02-28T03:00Z (22:00 EST on February 27); New York's statute ends 2029-02-28 22:00 EST.
NEW_YORK_EVENING = datetime(2024, 2, 28, 22, 0)
NEW_YORK_ENDS = datetime(2029, 3, 1, 3, 0, tzinfo=UTC)
OVER = datetime(2024, 1, 15, 12, 0)  # its statute ended weeks before


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_erasure_keeps_a_new_york_row_until_its_statute_ends_in_new_york(
    dry_run: bool,
) -> None:
    """At 2029-02-28T12:00Z the row's statute runs for 15 more hours: the live row is
    archived, its archived copy kept, and the person told the New York instant. Red on the
    old code: both were destroyed, keptUntil none (nothing kept)."""
    zone = ZoneInfo("America/New_York")
    assert zone_expiry(NEW_YORK_EVENING, STATUTE, zone) == NEW_YORK_ENDS
    now = datetime(2029, 2, 28, 12, 0, tzinfo=UTC)
    live = ZonedSession("live", now, {1: NEW_YORK_EVENING, 2: OVER})
    archive = ZonedSession("archive", now, {11: NEW_YORK_EVENING, 12: OVER})
    result = request("America/New_York", "erasure", now, live, archive, dry_run).result
    assert result.outcome == "Succeeded", result.message
    (table,) = result.tables
    assert (table.rows_deleted, table.rows_archived, table.archive_rows_destroyed) == (2, 1, 1)
    assert table.rows_kept == 2 and table.kept_until == NEW_YORK_ENDS
    if not dry_run:
        assert live.rows == {}
        assert archive.rows == {1: NEW_YORK_EVENING, 11: NEW_YORK_EVENING}


def test_access_reports_the_seoul_calendars_expiry_and_statute() -> None:
    """2025-03-01 05:00 in Seoul (2025-02-28T20:00Z): a month on is 2025-04-01 05:00 Seoul,
    not 2025-03-28T20:00Z; five years on, 2030-03-01 05:00 Seoul. Red on the old code:
    expiresAt was three days early."""
    zone = ZoneInfo("Asia/Seoul")
    wall = datetime(2025, 3, 1, 5, 0)
    now = datetime(2025, 3, 10, tzinfo=UTC)
    live = ZonedSession("live", now, {1: wall})
    archive = ZonedSession("archive", now, {11: wall})
    outcome = request("Asia/Seoul", "access", now, live, archive, False)
    assert outcome.result.outcome == "Succeeded", outcome.result.message
    assert outcome.document is not None
    rows = json.loads(outcome.document)["rows"]
    assert [r["location"] for r in rows] == ["live", "archive"]
    for row in rows:
        assert row["triggeredAt"] == "2025-02-28T20:00:00Z"
        assert row["expiresAt"] == "2025-03-31T20:00:00Z"
        assert row["keptUntil"] == "2030-02-28T20:00:00Z"
    assert zone_expiry(wall, RETENTION, zone) == datetime(2025, 3, 31, 20, tzinfo=UTC)
    assert zone_expiry(wall, STATUTE, zone) == datetime(2030, 2, 28, 20, tzinfo=UTC)

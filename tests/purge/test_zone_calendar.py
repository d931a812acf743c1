"""records[].timeZone: a wall-clock or date trigger's months and years are the zone's own.

A row of Seoul wall clock `2025-03-01 05:00` with a retention of 1mo expires on April 1 in
Seoul, not a month after its UTC instant (February 28): the purge binds, for a naive trigger
column with a zone, the greatest wall clock every value up to which has expired on the zone's
calendar (the sum read as its latest instant there). Brute force against `tests.expiry`'s
zone oracle, over month ends, leap days and clock changes: no row early.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest

from dataward.model.durations import Duration, parse_duration
from dataward.purge.sql import bind_cutoff
from tests.expiry import (
    expiry,
    latest_instants_up_to,
    latest_reading,
    zone_expired,
    zone_expiry,
)

TICK = timedelta(microseconds=1)
END_OF_DAY = timedelta(days=1) - TICK
ZONES = ["America/New_York", "Europe/Berlin", "Asia/Seoul", "Australia/Lord_Howe"]
PERIODS = [parse_duration(p) for p in ("1d", "1w", "1mo", "2mo", "13mo", "1y", "4y")]
# A row that expired is late by less than a day (a month-end row clamped onto the day it
# lands on waits for that day's end, as without a zone) plus a clock change.
MOST_LATE = timedelta(days=1, hours=1)


def bound_at(now: datetime, period: Duration, kind: str, zone: ZoneInfo) -> datetime | date:
    """What the purge binds for a naive trigger column (microseconds) in `zone` at `now`."""
    return bind_cutoff(now, period, kind, None, zone)  # type: ignore[arg-type]


@lru_cache(maxsize=64)
def _changes(zone: ZoneInfo, year: int) -> list[datetime]:
    """The zone's clock changes in `year` (UTC, to the minute)."""
    found = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    step = timedelta(minutes=30)
    while at.year == year:
        if (at + step).astimezone(zone).utcoffset() != at.astimezone(zone).utcoffset():
            low = at
            while (low + timedelta(minutes=1)).astimezone(zone).utcoffset() == at.astimezone(
                zone
            ).utcoffset():
                low += timedelta(minutes=1)
            found.append(low + timedelta(minutes=1))
        at += step
    return found


def _nows(zone: ZoneInfo) -> list[datetime]:
    """Instants around the zone's month ends (leap Februaries among them) and clock changes."""
    nows = []
    for year in (2024, 2025):
        for month in range(1, 13):
            first_next = date(year + month // 12, month % 12 + 1, 1)
            last = first_next - timedelta(days=1)
            for wall in (
                datetime.combine(last, datetime.min.time()),
                datetime.combine(last, datetime.min.time()) + timedelta(hours=5),
                datetime.combine(last, datetime.min.time()) + timedelta(hours=23, minutes=30),
                datetime.combine(last, datetime.min.time()) + END_OF_DAY,
                datetime.combine(first_next, datetime.min.time()) + timedelta(minutes=30),
            ):
                nows.append(latest_reading(wall, zone))
        for change in _changes(zone, year):
            for minutes in (-90, -31, -1, 0, 1, 29, 31, 61, 90):
                nows.append(change + timedelta(minutes=minutes))
    return nows


def _gap_ends(zone: ZoneInfo, now: datetime) -> list[datetime]:
    """Wall clocks near `now` that end a skipped hour (or half hour): the value just before one
    reads later than the one at it, so rows expiring there are the ones a bound could miss."""
    ends = []
    for change in _changes(zone, now.year) + _changes(zone, now.year - 1):
        if abs(change - now) > timedelta(days=3):
            continue
        before = (change - TICK).astimezone(zone).utcoffset()
        after = change.astimezone(zone).utcoffset()
        assert before is not None and after is not None
        if after > before:
            ends.append((change + after).replace(tzinfo=None))
    return ends


def _expiring_at(wall: datetime, period: Duration, up_to: datetime) -> list[datetime]:
    """Wall-clock triggers at or before `up_to` whose expiry is the wall clock `wall`."""
    if period.unit in ("d", "w"):
        days = period.amount * (7 if period.unit == "w" else 1)
        found = [wall - timedelta(days=days)]
    else:
        months = period.amount * (12 if period.unit == "y" else 1)
        start = wall - timedelta(days=31 * months + 31)
        found = []
        day = start.replace(hour=wall.hour, minute=wall.minute, second=wall.second,
                            microsecond=wall.microsecond)  # fmt: skip
        while day <= wall:
            if expiry(day, period) == wall:
                found.append(day)
            day += timedelta(days=1)
    return [t for t in found if t <= up_to]


def _lateness(bound: datetime, period: Duration, now: datetime, zone: ZoneInfo) -> timedelta:
    """How long ago the longest-expired row after the bound expired (kept: late): the next
    microsecond, and each of the next four days at its start, the bound's time and its end."""
    day = bound.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [bound + TICK]
    for k in range(5):
        start = day + timedelta(days=k)
        rows += [start, start.replace(hour=bound.hour, minute=bound.minute), start + END_OF_DAY]
    return max(now - zone_expiry(t, period, zone) for t in rows if t > bound)


@pytest.mark.parametrize("name", ZONES)
def test_no_wall_clock_row_goes_before_its_zone_calendar_expiry(name: str) -> None:
    """Every row at or before the bound has expired on the zone's calendar: the bound itself,
    each day's last microsecond of its month (the ragged month ends) and the triggers that
    expire just before a skipped hour ends. Lateness: the row just after the bound."""
    zone = ZoneInfo(name)
    early: list[tuple[datetime, str, datetime]] = []
    late = timedelta(0)
    for now in _nows(zone):
        for period in PERIODS:
            bound = bound_at(now, period, "wallclock", zone)
            assert isinstance(bound, datetime) and bound.tzinfo is None
            rows = [bound, *latest_instants_up_to(bound)]
            for end in _gap_ends(zone, now):
                rows += _expiring_at(end - TICK, period, bound)
                rows += _expiring_at(end, period, bound)
            early += [(now, str(period), t) for t in rows if not zone_expired(t, period, now, zone)]
            late = max(late, _lateness(bound, period, now, zone))
    assert early == [], f"{len(early)} rows early in {name}, first {early[:3]}"
    assert late < MOST_LATE, late
    print(f"{name}: wall clock, largest lateness {late}")


@pytest.mark.parametrize("name", ZONES)
def test_no_date_row_goes_before_its_whole_day_has_expired_on_the_zone_calendar(
    name: str,
) -> None:
    """A date is the whole day: every day at or before the bound has, at its last microsecond,
    expired on the zone's calendar. Lateness: the day after the bound."""
    zone = ZoneInfo(name)
    early: list[tuple[datetime, str, date]] = []
    late = timedelta(0)
    for now in _nows(zone):
        for period in PERIODS:
            bound = bound_at(now, period, "date", zone)
            assert type(bound) is date
            for back in range(0, 64):
                day = bound - timedelta(days=back)
                last = datetime.combine(day, datetime.min.time()) + END_OF_DAY
                if not zone_expired(last, period, now, zone):
                    early.append((now, str(period), day))
            ends = [datetime.combine(bound, datetime.min.time()) + END_OF_DAY + timedelta(days=k)
                    for k in range(1, 5)]  # fmt: skip
            late = max(late, *(now - zone_expiry(end, period, zone) for end in ends))
    assert early == [], f"{len(early)} days early in {name}, first {early[:3]}"
    assert late < MOST_LATE, late
    print(f"{name}: date, largest lateness {late}")


def test_seoul_month_counts_from_the_seoul_wall_clock() -> None:
    """The reviewer's case: 2025-03-01 05:00 Seoul + 1mo is 2025-04-01 05:00 Seoul; at
    2025-03-29T00:00Z (09:00 in Seoul) it has not expired (the old bound was 03-01 08:59)."""
    seoul, month = ZoneInfo("Asia/Seoul"), parse_duration("1mo")
    now = datetime(2025, 3, 29, tzinfo=UTC)
    bound = bound_at(now, month, "wallclock", seoul)
    assert isinstance(bound, datetime)
    assert not datetime(2025, 3, 1, 5) <= bound
    assert bound == datetime(2025, 2, 28, 23, 59, 59, 999999)  # all of February has expired
    # It goes at 2025-04-01 05:00 Seoul (2025-03-31T20:00Z), not a microsecond before.
    at = datetime(2025, 3, 31, 20, tzinfo=UTC)
    before = bound_at(at - TICK, month, "wallclock", seoul)
    assert isinstance(before, datetime) and before < datetime(2025, 3, 1, 5)
    assert bound_at(at, month, "wallclock", seoul) == datetime(2025, 3, 1, 5)


def test_new_york_date_goes_once_its_month_has_passed_on_the_new_york_calendar() -> None:
    """2025-01-30 (the whole day) + 1mo ends with 2025-02-28 in New York (clamped), at
    2025-03-01T05:00Z; the old bound took it at 2025-02-28 18:59 EST."""
    new_york, month = ZoneInfo("America/New_York"), parse_duration("1mo")
    evening = datetime(2025, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)  # 18:59 EST
    assert bound_at(evening, month, "date", new_york) < date(2025, 1, 28)
    end = datetime(2025, 3, 1, 5, tzinfo=UTC) - TICK  # February 28's last microsecond, EST
    assert bound_at(end - TICK, month, "date", new_york) < date(2025, 1, 28)
    assert bound_at(end, month, "date", new_york) == date(2025, 1, 31)


def test_instants_and_columns_without_a_zone_keep_the_utc_calendar() -> None:
    """The same month-end instant: without timeZone (and for instants, which ignore it) the
    month is UTC's, as before: 2025-03-29T00:00Z - 1mo is 2025-02-28T23:59:59.999999Z."""
    month, seoul = parse_duration("1mo"), ZoneInfo("Asia/Seoul")
    now = datetime(2025, 3, 29, tzinfo=UTC)
    last_of_february = datetime(2025, 2, 28, 23, 59, 59, 999999)
    assert bind_cutoff(now, month, "wallclock", None) == last_of_february
    assert bind_cutoff(now, month, "instant", None, seoul) == last_of_february.replace(tzinfo=UTC)
    assert bind_cutoff(now, month, "date", None) == date(2025, 2, 28)
    now = datetime(2025, 3, 28, 20, tzinfo=UTC)
    assert bind_cutoff(now, month, "instant", 0, seoul) == datetime(2025, 2, 28, 20, tzinfo=UTC)

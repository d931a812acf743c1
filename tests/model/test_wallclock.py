"""Naive wall-clock values and dates in a zone against a UTC cutoff: never early, at most a
clock change late. The oracle is zoneinfo itself (both folds of a wall clock), not the
module's own transition table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.model.errors import ModelError
from dataward.model.wallclock import (
    birth_offsets,
    birthday_shifts,
    date_instant,
    day_start,
    parse_zone,
    safe_instant,
    wallclock_bound,
    whole_days_to,
)

TICK = timedelta(microseconds=1)
ZONES = [
    "Asia/Seoul",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Europe/London",
    "America/Sao_Paulo",
    "UTC",
]
# The largest clock change of these zones: an hour (Lord Howe's is half an hour).
MAX_CHANGE = timedelta(hours=1)

zones = st.sampled_from(ZONES).map(ZoneInfo)
# Instants over years with several DST rules, often right at a change (whole hours and halves).
instants = st.datetimes(
    min_value=datetime(2005, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
near_changes = st.builds(
    lambda day, minutes, micro: (
        datetime.combine(day, datetime.min.time(), UTC)
        + timedelta(minutes=minutes, microseconds=micro)
    ),
    st.dates(min_value=date(2005, 1, 1), max_value=date(2035, 12, 31)),
    st.integers(0, 24 * 60 - 1),
    st.sampled_from([0, 1, 999_999]),
)
cutoffs = st.one_of(instants, near_changes)


def _changes(name: str) -> list[datetime]:
    """The zone's offset changes 2010-2030, found by scanning zoneinfo by day, then by minute."""
    zone, found = ZoneInfo(name), []
    day = datetime(2010, 1, 1, tzinfo=UTC)
    while day.year < 2031:
        nxt = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            minute = day
            while minute.astimezone(zone).utcoffset() == day.astimezone(zone).utcoffset():
                minute += timedelta(minutes=1)
            found.append(minute)
        day = nxt
    return found


# Seoul and UTC have had no change since 1988: the other zones' changes.
CHANGES = {name: found for name in ZONES if (found := _changes(name))}


@st.composite
def at_changes(draw: st.DrawFn) -> tuple[datetime, ZoneInfo]:
    """A zone and an instant within three hours of one of its clock changes."""
    name = draw(st.sampled_from(sorted(CHANGES)))
    change = draw(st.sampled_from(CHANGES[name]))
    minutes = draw(st.integers(-180, 180))
    micro = draw(st.sampled_from([0, 1, -1, 999_999]))
    return change + timedelta(minutes=minutes, microseconds=micro), ZoneInfo(name)


cases = st.one_of(st.tuples(cutoffs, zones), at_changes())


def readings(value: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every instant a naive wall clock can mean in `zone` (zoneinfo's two folds)."""
    return [value.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]


def latest(value: datetime, zone: ZoneInfo) -> datetime:
    return max(readings(value, zone))


@settings(max_examples=400)
@given(cases, st.integers(0, 3 * 24 * 3600 * 10**6), st.integers(0, 4 * 3600))
def test_no_value_at_or_before_the_bound_is_early(
    case: tuple[datetime, ZoneInfo], back: int, seconds: int
) -> None:
    cutoff, zone = case
    bound = wallclock_bound(cutoff, zone)
    assert bound.tzinfo is None
    for value in (bound, bound - timedelta(microseconds=back), bound - timedelta(seconds=seconds)):
        assert latest(value, zone) <= cutoff, (value, zone)


@settings(max_examples=400)
@given(cases)
def test_the_bound_is_tight_and_late_by_at_most_a_clock_change(
    case: tuple[datetime, ZoneInfo],
) -> None:
    cutoff, zone = case
    bound = wallclock_bound(cutoff, zone)
    # The first value left is not yet safe: the bound is the greatest safe one.
    assert safe_instant(bound + TICK, zone) > cutoff
    assert safe_instant(bound, zone) <= cutoff
    # A value left behind waits at most a clock change past its latest reading.
    for value in (bound + TICK, bound + timedelta(minutes=30), bound + timedelta(hours=1)):
        assert latest(value, zone) <= safe_instant(value, zone) <= latest(value, zone) + MAX_CHANGE


def test_a_bound_past_a_skipped_hour_takes_the_hour_after_it() -> None:
    """New York, 2010-03-14: 02:00-02:59 local never happened (read as EST, 07:00-07:59 UTC)
    and 03:00-03:59 EDT is 07:00-07:59 UTC too. At a cutoff of 07:59:59.999999 UTC every wall
    clock up to 03:59:59.999999 has expired on every reading: the bound is there, not an hour
    short of it (hypothesis found this; the bound stopped at the end of the skipped hour)."""
    zone = ZoneInfo("America/New_York")
    cutoff = datetime(2010, 3, 14, 7, 59, 59, 999_999, tzinfo=UTC)
    bound = wallclock_bound(cutoff, zone)
    assert bound == datetime(2010, 3, 14, 3, 59, 59, 999_999)
    assert latest(bound, zone) <= cutoff < latest(bound + TICK, zone)


@settings(max_examples=400)
@given(cases, st.integers(-2 * 24 * 3600, 2 * 24 * 3600))
def test_bound_and_instant_agree(case: tuple[datetime, ZoneInfo], seconds: int) -> None:
    """`v <= bound(c)` exactly when `safe_instant(v) <= c`: the purge (SQL, bound) and the
    data-subject engine (Python, instants) take the same rows."""
    cutoff, zone = case
    bound = wallclock_bound(cutoff, zone)
    value = bound + timedelta(seconds=seconds)
    assert (value <= bound) == (safe_instant(value, zone) <= cutoff)


@settings(max_examples=300)
@given(cases)
def test_a_date_goes_only_when_its_whole_day_in_the_zone_has(
    case: tuple[datetime, ZoneInfo],
) -> None:
    cutoff, zone = case
    day = whole_days_to(wallclock_bound(cutoff, zone))
    last = datetime.combine(day + timedelta(days=1), datetime.min.time()) - TICK
    assert latest(last, zone) <= cutoff
    assert date_instant(day, zone) <= cutoff
    assert date_instant(day + timedelta(days=1), zone) > cutoff
    # Late by at most a day plus a clock change: the next day is not over yet.
    next_last = last + timedelta(days=1)
    assert latest(next_last, zone) > cutoff - MAX_CHANGE


def test_seoul_is_nine_hours_ahead() -> None:
    seoul = ZoneInfo("Asia/Seoul")
    cutoff = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
    assert wallclock_bound(cutoff, seoul) == datetime(2025, 6, 1, 9, 0)
    # 2025-05-31 ends in Seoul at 2025-05-31T15:00Z, before the cutoff; June 1 has not ended.
    assert whole_days_to(wallclock_bound(cutoff, seoul)) == date(2025, 5, 31)
    assert date_instant(date(2025, 5, 31), seoul) == datetime(
        2025, 5, 31, 14, 59, 59, 999999, tzinfo=UTC
    )
    # Seoul's day D ends 9 hours before D's end in UTC: the day of the cutoff has not ended.
    before, at = datetime(2025, 6, 1, 14, 59, tzinfo=UTC), datetime(2025, 6, 1, 15, tzinfo=UTC)
    assert whole_days_to(wallclock_bound(before, seoul)) == date(2025, 5, 31)
    assert whole_days_to(wallclock_bound(at, seoul)) == date(2025, 6, 1)


def test_new_york_repeated_hour_takes_the_later_reading() -> None:
    new_york = ZoneInfo("America/New_York")
    # 2025-11-02 01:30 EDT (05:30Z) is the first 01:30; the second is 06:30Z (EST).
    cutoff = datetime(2025, 11, 2, 5, 30, tzinfo=UTC)
    assert wallclock_bound(cutoff, new_york) == datetime(2025, 11, 2, 0, 59, 59, 999999)
    # Once the second 01:30 has passed, 01:30 goes.
    assert wallclock_bound(datetime(2025, 11, 2, 6, 30, tzinfo=UTC), new_york) == datetime(
        2025, 11, 2, 1, 30
    )


def test_new_york_skipped_hour_is_read_on_its_later_side() -> None:
    new_york = ZoneInfo("America/New_York")
    # 2025-03-09 02:00-03:00 does not exist; 02:45 read with EST is 07:45Z, the later reading.
    cutoff = datetime(2025, 3, 9, 7, 30, tzinfo=UTC)  # 03:30 EDT
    assert wallclock_bound(cutoff, new_york) == datetime(2025, 3, 9, 2, 30)
    assert safe_instant(datetime(2025, 3, 9, 3, 0), new_york) == datetime(
        2025, 3, 9, 7, 59, 59, 999999, tzinfo=UTC
    )


def test_lord_howe_half_hour_change() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    # 2025-04-06 02:00 (+11) becomes 01:30 (+10:30): 01:30-02:00 repeats.
    first = datetime(2025, 4, 5, 14, 45, tzinfo=UTC)  # 01:45 at +11, the first 01:45
    assert wallclock_bound(first, lord_howe) == datetime(2025, 4, 6, 1, 29, 59, 999999)


def test_values_at_the_ends_of_the_calendar_read_without_overflow() -> None:
    """A database may hold 0001-01-01 or 9999-12-31 (placeholders): the first has expired on
    any reading, the last never will."""
    seoul = ZoneInfo("Asia/Seoul")
    assert safe_instant(datetime(1, 1, 1), seoul) == datetime.min.replace(tzinfo=UTC)
    assert safe_instant(datetime(9999, 12, 31, 23, 59), seoul) == datetime.max.replace(tzinfo=UTC)
    assert date_instant(date(9999, 12, 31), seoul) == datetime.max.replace(tzinfo=UTC)
    assert date_instant(date(1, 1, 1), seoul) <= datetime(1900, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "name", ["Asia/Seoul", "America/New_York", "UTC", "Etc/UTC", "Pacific/Chatham", "US/Eastern"]
)
def test_parse_zone_accepts_iana_names(name: str) -> None:
    assert parse_zone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus", "", "+09:00", "KST9", "/etc/localtime", "../../etc/passwd", 9, None,
        # Files of the zone directory that are no IANA zone: `localtime` is the machine's own
        # zone (the purge pod's, a laptop's), `posixrules` the default POSIX rules, `Factory`
        # a placeholder; `posix/` and `right/` are copies of the database under other rules.
        "localtime", "posixrules", "Factory", "posix/Asia/Seoul", "right/Asia/Seoul",
    ],
)  # fmt: skip
def test_parse_zone_refuses_what_is_no_zone(name: object) -> None:
    with pytest.raises(ModelError) as raised:
        parse_zone(name, "spec.records[0].timeZone")
    assert raised.value.path == "spec.records[0].timeZone"


# Changes unlike the zones above: two hours (Troll), a whole day skipped (Apia, Kiritimati),
# double summer time (London, 1941), at midnight (Havana), at 2:45 (Chatham), half an hour
# (Lord Howe), and an offset of seconds (Amsterdam, 1937: +00:19:32 to +00:20). Cutoffs go
# back a century (a retention of up to 100 years), so old changes count too.
UNUSUAL_CHANGES = [
    ("Antarctica/Troll", datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
    ("Antarctica/Troll", datetime(2024, 10, 27, 1, 0, tzinfo=UTC)),
    ("Pacific/Apia", datetime(2011, 12, 30, 10, 0, tzinfo=UTC)),
    ("Pacific/Kiritimati", datetime(1994, 12, 31, 10, 0, tzinfo=UTC)),
    ("Europe/London", datetime(1941, 5, 4, 1, 0, tzinfo=UTC)),
    ("Europe/London", datetime(1941, 8, 10, 1, 0, tzinfo=UTC)),
    ("America/Havana", datetime(2024, 3, 10, 5, 0, tzinfo=UTC)),
    ("America/Havana", datetime(2024, 11, 3, 5, 0, tzinfo=UTC)),
    ("Pacific/Chatham", datetime(2024, 4, 6, 14, 0, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2024, 4, 6, 15, 0, tzinfo=UTC)),
    ("Europe/Amsterdam", datetime(1937, 6, 30, 22, 0, tzinfo=UTC)),
]


@pytest.mark.parametrize(("name", "near"), UNUSUAL_CHANGES)
def test_never_early_nor_loose_at_every_minute_around_an_unusual_change(
    name: str, near: datetime
) -> None:
    """Every cutoff a minute apart (and a microsecond either side) over six hours around the
    change: no wall clock at or before the bound means, on either fold, an instant after the
    cutoff, and the bound's next microsecond does. The oracle: zoneinfo by minute over the
    two days before, keeping the latest reading so far (readings rise with the wall clock
    between changes, which fall on whole minutes except in the Amsterdam case's seconds)."""
    zone = ZoneInfo(name)
    assert (near - timedelta(hours=2)).astimezone(zone).utcoffset() != (
        near + timedelta(hours=2)
    ).astimezone(zone).utcoffset(), "no change near this instant"
    start = (near - timedelta(days=2)).replace(tzinfo=None)
    so_far: dict[datetime, datetime] = {}
    worst = latest(start, zone)
    value = start
    while value <= start + timedelta(days=4):
        worst = max(worst, latest(value - TICK, zone), latest(value, zone))
        so_far[value] = worst
        value += timedelta(minutes=1)
    for minutes in range(-180, 181):
        at = near + timedelta(minutes=minutes)
        for cutoff in (at - TICK, at, at + TICK, at + timedelta(seconds=31)):
            bound = wallclock_bound(cutoff, zone)
            minute = bound.replace(second=0, microsecond=0)
            seconds = [
                minute + timedelta(seconds=s)
                for s in range(60)
                if s and minute + timedelta(seconds=s) <= bound
            ]
            highest = max(
                [so_far[minute], latest(bound, zone)] + [latest(s - TICK, zone) for s in seconds]
            )
            assert highest <= cutoff, (name, cutoff, bound)
            assert max(highest, latest(bound + TICK, zone)) > cutoff, (name, cutoff, bound)
# Birthdays: when a day begins. Zones whose clocks change at or across midnight, and others.
DAY_ZONES = [
    "America/St_Johns",  # until 2011: back from 00:01 to 23:01, across midnight
    "America/Santiago",  # forward at 24:00 (midnight skipped), back at 24:00 to 23:00
    "America/Havana",  # forward at 00:00, back at 01:00 to 00:00
    "Asia/Beirut",  # forward at 00:00
    "Asia/Seoul",
    "Europe/Berlin",
    "Australia/Lord_Howe",
]


def first_instant_of(day: date, zone: ZoneInfo) -> datetime:
    """The oracle: the first minute (changes fall on whole minutes here) whose wall date is
    `day`, found by walking minute by minute."""
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) - timedelta(hours=15)
    while at.astimezone(zone).date() < day:
        at += timedelta(minutes=1)
    return at


def existing_readings(value: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every instant a naive wall clock can mean in `zone` (zoneinfo's two folds, kept only
    when they read back)."""
    out = []
    for fold in (0, 1):
        at = value.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if at.astimezone(zone).replace(tzinfo=None) == value:
            out.append(at)
    return out


def piece(pieces: tuple[tuple[date, timedelta], ...], day: date) -> timedelta:
    return [shift for start, shift in pieces if start <= day][-1]


@pytest.mark.parametrize("name", DAY_ZONES)
def test_a_day_begins_at_its_first_instant_and_a_wall_clock_before_it_is_before_on_every_reading(
    name: str,
) -> None:
    zone = ZoneInfo(name)
    last = date(2026, 12, 31)
    instants = birthday_shifts(zone, last, False)
    walls = birthday_shifts(zone, last, True)
    midnight = datetime.min.time()
    day = date(2005, 1, 1)
    checked = 0
    while day <= last:
        # Days near a change of the zone's offset (and some others).
        noon = datetime.combine(day, midnight, tzinfo=UTC)
        if _near_change(zone, noon) or day.day == 15:
            start = first_instant_of(day, zone)
            assert day_start(day, zone) == start
            begins = datetime.combine(day, midnight) - piece(instants, day)
            assert begins.replace(tzinfo=UTC) == start, day
            bound = datetime.combine(day, midnight) - piece(walls, day)
            # Wall clocks before the bound are before the birthday on every reading; the bound
            # itself is not (it may be after): the rule is tight on values that exist.
            for minutes in range(-150, 90):
                value = datetime.combine(day, midnight) + timedelta(minutes=minutes)
                read = existing_readings(value, zone)
                if value < bound:
                    assert all(r < start for r in read), (day, value)
                elif read:
                    assert any(r >= start for r in read), (day, value)
            checked += 1
        day += timedelta(days=1)
    assert checked > 100


def _near_change(zone: ZoneInfo, at: datetime) -> bool:
    offsets = {(at + timedelta(hours=h)).astimezone(zone).utcoffset() for h in range(-48, 49, 6)}
    return len(offsets) > 1


def test_a_seoul_birthday_begins_at_15_00_utc_the_day_before() -> None:
    seoul = ZoneInfo("Asia/Seoul")
    assert day_start(date(2025, 5, 1), seoul) == datetime(2025, 4, 30, 15, 0, tzinfo=UTC)
    assert piece(birthday_shifts(seoul, date(2026, 1, 1), False), date(2025, 5, 1)) == timedelta(
        hours=9
    )


def test_an_instant_of_birth_is_read_on_its_day_and_never_a_later_one() -> None:
    for name in DAY_ZONES:
        zone = ZoneInfo(name)
        pieces = birth_offsets(zone, date(2026, 12, 31))
        at = datetime(2005, 1, 1, tzinfo=UTC)
        while at < datetime(2026, 12, 31, tzinfo=UTC):
            read = (at + piece(pieces, at.date())).date()
            true = at.astimezone(zone).date()
            assert read <= true, (name, at)
            if not _near_change(zone, at):
                assert read == true, (name, at)
            at += timedelta(hours=7, minutes=13)

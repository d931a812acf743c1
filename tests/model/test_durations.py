"""Durations: parsing, calendar arithmetic and the exact purge cutoff."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataward.model.durations import Duration, add_months, cutoff_for, parse_duration
from dataward.model.errors import ModelError
from tests.expiry import ONE_MICROSECOND, expiry, latest_instants_up_to


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0d", Duration(0, "d")),
        ("30d", Duration(30, "d")),
        ("2w", Duration(2, "w")),
        ("6mo", Duration(6, "mo")),
        ("5y", Duration(5, "y")),
        ("100y", Duration(100, "y")),
    ],
)
def test_parse_accepts_the_api_forms(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected
    assert str(parse_duration(text)) == text


@pytest.mark.parametrize(
    "text", ["-1d", "1.5d", "P30D", "30 d", "1D", "", "d", "01d", "30", "1m", "101y", "99999999d"]
)
def test_parse_rejects_malformed_and_says_what_to_write(text: str) -> None:
    with pytest.raises(ModelError) as raised:
        parse_duration(text, "spec.retention")
    assert raised.value.path == "spec.retention"
    assert "d, w, mo or y" in raised.value.message or "100 years" in raised.value.message


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ModelError):
        parse_duration(30)


@pytest.mark.parametrize(
    ("start", "duration", "end"),
    [
        (datetime(2024, 1, 31), "1mo", datetime(2024, 2, 29)),
        (datetime(2023, 1, 31), "1mo", datetime(2023, 2, 28)),
        (datetime(2024, 2, 29), "1y", datetime(2025, 2, 28)),
        (datetime(2024, 2, 29), "4y", datetime(2028, 2, 29)),
        (datetime(2024, 3, 31), "1mo", datetime(2024, 4, 30)),
        (datetime(2024, 12, 15), "1mo", datetime(2025, 1, 15)),
        (datetime(2024, 1, 1), "2w", datetime(2024, 1, 15)),
        (datetime(2024, 1, 1), "0d", datetime(2024, 1, 1)),
    ],
)
def test_calendar_arithmetic(start: datetime, duration: str, end: datetime) -> None:
    assert parse_duration(duration).add_to(start) == end


def test_cutoff_on_the_api_md_example() -> None:
    now = datetime(2025, 3, 31, 12, tzinfo=UTC)
    cutoff = cutoff_for(now, parse_duration("1mo"))
    assert cutoff == datetime(2025, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)
    # now - 1mo would keep half a day of expired February records.
    assert cutoff > add_months(now, -1)


def test_cutoff_on_a_last_day_never_reaches_into_the_longer_month() -> None:
    """API.md's example: on Feb 28 00:00 with 1mo a row of Jan 30 12:00 has not expired."""
    now = datetime(2025, 2, 28, 0, tzinfo=UTC)
    cutoff = cutoff_for(now, parse_duration("1mo"))
    assert cutoff == datetime(2025, 1, 28, 0, tzinfo=UTC)
    assert cutoff < datetime(2025, 1, 30, 12, tzinfo=UTC)


def test_cutoff_at_the_last_instant_of_a_short_month_takes_the_whole_longer_month() -> None:
    now = datetime(2025, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)
    assert cutoff_for(now, parse_duration("1mo")) == datetime(
        2025, 1, 31, 23, 59, 59, 999999, tzinfo=UTC
    )


def test_cutoff_of_a_year_from_a_leap_day() -> None:
    """Feb 29 2024 + 1y lands on Feb 28 2025 at the same time of day."""
    now = datetime(2025, 2, 28, 6, tzinfo=UTC)
    assert cutoff_for(now, parse_duration("1y")) == datetime(2024, 2, 28, 6, tzinfo=UTC)


def test_cutoff_for_days_is_plain_subtraction() -> None:
    now = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
    assert cutoff_for(now, parse_duration("1d")) == datetime(2025, 2, 28, tzinfo=UTC)
    assert cutoff_for(now, parse_duration("0d")) == now


durations = st.builds(
    Duration,
    amount=st.integers(min_value=0, max_value=400),
    unit=st.sampled_from(["d", "w", "mo", "y"]),
)
instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def _assert_safe_and_greatest(now: datetime, period: Duration) -> None:
    cutoff = cutoff_for(now, period)
    for row in latest_instants_up_to(cutoff):
        assert expiry(row, period) <= now, f"row {row} deleted before it expired at {now}"
    # One microsecond later is a row that has not expired: nothing more could be deleted.
    assert expiry(cutoff + ONE_MICROSECOND, period) > now


@given(now=instants, period=durations)
def test_cutoff_is_the_greatest_safe_instant(now: datetime, period: Duration) -> None:
    """API.md: every row at or before the cutoff has expired, and none could be added."""
    _assert_safe_and_greatest(now, period)


def _month_end_nows() -> list[datetime]:
    """Every hour of the last three and first two days of each month of 2023-2025."""
    nows = []
    for year in (2023, 2024, 2025):
        for month in range(1, 13):
            last = calendar.monthrange(year, month)[1]
            first_next = datetime(year, month, last, tzinfo=UTC) + timedelta(days=1)
            start = datetime(year, month, last - 2, tzinfo=UTC)
            hour = start
            while hour < first_next + timedelta(days=2):
                nows.append(hour)
                hour += timedelta(hours=1)
    return nows


@pytest.mark.parametrize("period", ["1mo", "2mo", "3mo", "6mo", "11mo", "1y", "4y", "7d", "2w"])
def test_cutoff_is_never_early_around_month_ends_and_leap_days(period: str) -> None:
    """The issue's scan: many nows around month ends, leap days and year ends; zero early."""
    duration = parse_duration(period)
    for now in _month_end_nows():
        _assert_safe_and_greatest(now, duration)
        _assert_safe_and_greatest(now - ONE_MICROSECOND, duration)


@given(row=instants, period=durations)
def test_a_row_is_at_most_a_day_late(row: datetime, period: Duration) -> None:
    """The largest lateness the safe cutoff allows (README): under one day past expiry."""
    now = expiry(row, period) + timedelta(days=1) - ONE_MICROSECOND
    assert cutoff_for(now, period) >= row


@given(start=instants, period=durations)
def test_add_to_never_goes_backwards_and_respects_day_bounds(
    start: datetime, period: Duration
) -> None:
    end = period.add_to(start)
    shortest, longest = period.day_bounds()
    span = (end - start).days
    assert shortest <= span <= longest


@given(a=durations, b=durations, start=instants)
def test_is_at_most_is_sound(a: Duration, b: Duration, start: datetime) -> None:
    """If a is at most b, a never ends after b, whatever the start."""
    if a.is_at_most(b):
        assert a.add_to(start) <= b.add_to(start)


@pytest.mark.parametrize(
    ("short", "long", "expected"),
    [
        ("180d", "6mo", True),
        ("185d", "6mo", False),
        ("12mo", "1y", True),
        ("13mo", "1y", False),
        ("52w", "1y", True),
        ("365d", "1y", True),
        ("366d", "1y", False),
        ("1y", "365d", False),
        ("0d", "0d", True),
        ("1d", "0d", False),
    ],
)
def test_is_at_most_examples(short: str, long: str, expected: bool) -> None:
    assert parse_duration(short).is_at_most(parse_duration(long)) is expected


def test_describe_in_words() -> None:
    assert parse_duration("1y").describe() == "1 year"
    assert parse_duration("6mo").describe() == "6 months"

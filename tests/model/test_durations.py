"""Durations: parsing, calendar arithmetic and the exact purge cutoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataward.model.durations import Duration, add_months, cutoff_for, parse_duration
from dataward.model.errors import ModelError

ONE_MICROSECOND = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0d", Duration(0, "d")), ("30d", Duration(30, "d")), ("2w", Duration(2, "w")),
     ("6mo", Duration(6, "mo")), ("5y", Duration(5, "y")), ("100y", Duration(100, "y"))],
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


def test_cutoff_on_a_last_day_reaches_the_end_of_a_longer_month() -> None:
    now = datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert cutoff_for(now, parse_duration("1mo")) == datetime(2025, 1, 31, 12, tzinfo=UTC)


def test_cutoff_for_days_is_plain_subtraction() -> None:
    now = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
    assert cutoff_for(now, parse_duration("1d")) == datetime(2025, 2, 28, tzinfo=UTC)
    assert cutoff_for(now, parse_duration("0d")) == now


durations = st.builds(
    Duration,
    amount=st.integers(min_value=0, max_value=400),
    unit=st.sampled_from(["d", "w", "mo", "y"]),
)
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 12, 31)
).map(lambda d: d.replace(tzinfo=UTC))


@given(now=instants, period=durations)
def test_cutoff_is_the_greatest_expired_instant(now: datetime, period: Duration) -> None:
    """The definition of API.md: c + period <= now, and one microsecond later it is not."""
    cutoff = cutoff_for(now, period)
    assert period.add_to(cutoff) <= now
    assert period.add_to(cutoff + ONE_MICROSECOND) > now


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
    [("180d", "6mo", True), ("185d", "6mo", False), ("12mo", "1y", True), ("13mo", "1y", False),
     ("52w", "1y", True), ("365d", "1y", True), ("366d", "1y", False), ("1y", "365d", False),
     ("0d", "0d", True), ("1d", "0d", False)],
)
def test_is_at_most_examples(short: str, long: str, expected: bool) -> None:
    assert parse_duration(short).is_at_most(parse_duration(long)) is expected


def test_describe_in_words() -> None:
    assert parse_duration("1y").describe() == "1 year"
    assert parse_duration("6mo").describe() == "6 months"

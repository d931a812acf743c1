"""Cron schedules: when a schedule last fired, against a brute force over every minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.model.cron import parse_cron
from dataward.model.errors import ModelError


def _brute_force(schedule: str, instant: datetime) -> datetime | None:
    """Walk back minute by minute, testing each field the way cron(8) describes it."""
    minute, hour, day, month, weekday = schedule.split()

    def allowed(field: str, value: int, low: int, high: int) -> bool:
        for part in field.split(","):
            spec, _, step = part.partition("/")
            first, _, last = spec.partition("-")
            start = low if spec == "*" else int(first)
            end = high if spec == "*" or (step and not last) else int(last or first)
            if start <= value <= end and (value - start) % int(step or 1) == 0:
                return True
        return False

    at = instant.replace(second=0, microsecond=0)
    for _ in range(60 * 24 * 400):
        dom = allowed(day, at.day, 1, 31)
        dow = allowed(weekday, at.isoweekday() % 7, 0, 7) or (
            at.isoweekday() == 7 and allowed(weekday, 7, 0, 7)
        )
        both = not day.startswith("*") and not weekday.startswith("*")
        days_ok = (dom or dow) if both else (dom and dow)
        if (
            allowed(minute, at.minute, 0, 59)
            and allowed(hour, at.hour, 0, 23)
            and allowed(month, at.month, 1, 12)
            and days_ok
        ):
            return at
        at -= timedelta(minutes=1)
    return None


SCHEDULES = [
    "17 3 * * *", "*/15 * * * *", "0 0 1 * *", "30 2 * * 1-5", "0 12 29 2 *",
    "5,35 */6 * * 0", "0 0 13 * 5", "0 4 * 1,7 *", "59 23 31 * *", "0 0 * * 7",
]  # fmt: skip


@settings(max_examples=40)
@given(
    schedule=st.sampled_from(SCHEDULES),
    instant=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31)),
)
def test_last_fire_matches_a_minute_by_minute_search(schedule: str, instant: datetime) -> None:
    instant = instant.replace(tzinfo=UTC)
    found = parse_cron(schedule).last_fire_at_or_before(instant)
    expected = _brute_force(schedule, instant)  # searches 400 days back
    if expected is None:
        assert found is not None and found < instant - timedelta(days=400)
    else:
        assert found == expected


def test_names_are_months_and_days() -> None:
    cron = parse_cron("0 9 * JAN mon")
    assert cron.last_fire_at_or_before(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(
        2026, 1, 26, 9, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "text", ["* * * *", "60 * * * *", "* 24 * * *", "5-1 * * * *", "x * * * *"]
)
def test_malformed_schedules_are_refused(text: str) -> None:
    with pytest.raises(ModelError):
        parse_cron(text)


def test_a_remembered_schedule_is_the_parse_of_that_very_text_and_errors_are_raised_again() -> None:
    # parse_cron remembers the last 256 schedules (issue 11): a schedule changed in any field
    # is parsed as written, and a schedule that is not one raises every time it is asked.
    at = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    daily = parse_cron("17 3 * * *")
    assert parse_cron("17 3 * * *") is daily
    assert daily.last_fire_at_or_before(at) == datetime(2026, 3, 10, 3, 17, tzinfo=UTC)
    changed = parse_cron("17 4 * * *")
    assert changed.last_fire_at_or_before(at) == datetime(2026, 3, 10, 4, 17, tzinfo=UTC)
    for _ in range(2):
        with pytest.raises(ModelError, match="five fields"):
            parse_cron("17 3 * *")
    with pytest.raises(ModelError) as raised:
        parse_cron("61 3 * * *", "spec.other")
    assert raised.value.path == "spec.other"
    assert parse_cron.cache_info().maxsize == 256

"""Durations of the API (`<n>d`, `<n>w`, `<n>mo`, `<n>y`) with calendar arithmetic.

Months and years are calendar units: adding a month keeps the day of the month and clamps it
to the month's last day (2024-01-31 + 1mo = 2024-02-29; 2024-02-29 + 1y = 2025-02-28).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal

from dataward.model.errors import ModelError

Unit = Literal["d", "w", "mo", "y"]

# The same bounds as the CRD pattern: a duration longer than a century is a typo, not a policy.
_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,4})(d|w|mo|y)$")
_LIMITS: dict[str, int] = {"d": 36500, "w": 5200, "mo": 1200, "y": 100}
_UNIT_WORDS: dict[str, tuple[str, str]] = {
    "d": ("day", "days"),
    "w": ("week", "weeks"),
    "mo": ("month", "months"),
    "y": ("year", "years"),
}
_LAST_MICROSECOND = time(23, 59, 59, 999999)


@dataclass(frozen=True, order=False, slots=True)
class Duration:
    """A retention or rotation period: a count of days, weeks, calendar months or years."""

    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def describe(self) -> str:
        """Say the duration in words, for messages a person reads."""
        one, many = _UNIT_WORDS[self.unit]
        return f"{self.amount} {one if self.amount == 1 else many}"

    @property
    def is_calendar(self) -> bool:
        """True for months and years, whose length in days depends on where they start."""
        return self.unit in ("mo", "y")

    @property
    def months(self) -> int:
        """The length in calendar months (only for month and year durations)."""
        if self.unit == "mo":
            return self.amount
        if self.unit == "y":
            return 12 * self.amount
        raise ValueError(f"{self} is not a calendar duration")

    @property
    def days(self) -> int:
        """The length in days (only for day and week durations)."""
        if self.unit == "d":
            return self.amount
        if self.unit == "w":
            return 7 * self.amount
        raise ValueError(f"{self} is a calendar duration; its length in days varies")

    def add_to(self, instant: datetime) -> datetime:
        """Return `instant + self` with calendar arithmetic for months and years."""
        if not self.is_calendar:
            return instant + timedelta(days=self.days)
        return add_months(instant, self.months)

    def day_bounds(self) -> tuple[int, int]:
        """The fewest and the most days this duration can span, over every start date."""
        if not self.is_calendar:
            return self.days, self.days
        return _month_span_bounds(self.months)

    def is_at_most(self, other: Duration) -> bool:
        """True when `self` never ends later than `other` from any start instant."""
        if self.is_calendar == other.is_calendar:
            if self.is_calendar:
                return self.months <= other.months
            return self.days <= other.days
        return self.day_bounds()[1] <= other.day_bounds()[0]


def parse_duration(text: object, path: str = "duration") -> Duration:
    """Parse `<n>d|w|mo|y`; raise ModelError naming `path` and the accepted forms otherwise."""
    if not isinstance(text, str):
        raise ModelError(path, f"must be a string such as 30d, 6mo or 5y, not {text!r}")
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ModelError(
            path,
            f"{text!r} is not a duration: write a whole number followed by d, w, mo or y "
            "(for example 30d, 2w, 6mo, 5y; 0d is allowed)",
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount > _LIMITS[unit]:
        raise ModelError(path, f"{text!r} is longer than 100 years; at most {_LIMITS[unit]}{unit}")
    return Duration(amount, unit)  # type: ignore[arg-type]


def add_months(instant: datetime, months: int) -> datetime:
    """Add calendar months, clamping the day to the target month's length."""
    index = instant.year * 12 + (instant.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(instant.day, calendar.monthrange(year, month)[1])
    return instant.replace(year=year, month=month, day=day)


def cutoff_for(now: datetime, period: Duration) -> datetime:
    """The safe cutoff: the greatest instant `c` such that every row at or before it has expired.

    A row expires at `trigger + period` (API.md). For days and weeks that is monotone, and
    the cutoff is `now - period`. For months it is not: clamping maps Jan 29-31 all onto
    Feb 28, so on 2025-02-28T00:00 with 1mo a row of Jan 31 00:00 has expired but one of
    Jan 30 12:00 has not. Rows of the target month up to now's day and time of day expire in
    order; a later day clamps onto now's day only when now's day is the last of its month,
    and then its rows expire by now only once now is that day's last microsecond. So:

    - now's day is past the target month's end: the whole target month has expired;
    - now is the last microsecond of its month: likewise (every clamped day has landed);
    - otherwise: the same day and time of day in the target month (2025-02-28T00:00 gives
      2025-01-28T00:00, never Jan 31).

    A row is therefore deleted less than one day after it expired (the ragged month-end
    rows wait for the end of the day they land on), never before.
    """
    if not period.is_calendar:
        return now - timedelta(days=period.days)
    index = now.year * 12 + (now.month - 1) - period.months
    year, month = divmod(index, 12)
    month += 1
    target_days = calendar.monthrange(year, month)[1]
    now_is_last_instant = (
        now.day == calendar.monthrange(now.year, now.month)[1]
        and now.timetz().replace(tzinfo=None) == _LAST_MICROSECOND
    )
    if now.day > target_days or now_is_last_instant:
        return datetime.combine(
            date(year, month, target_days), _LAST_MICROSECOND, tzinfo=now.tzinfo
        )
    return now.replace(year=year, month=month, day=now.day)


_CYCLE_START, _CYCLE_MONTHS = 2000 * 12, 400 * 12


def _month_table(extra: int) -> tuple[list[int], list[int]]:
    """Ordinal of each month's first day and each month's length, from 2000 on."""
    firsts, lengths = [], []
    for index in range(_CYCLE_START, _CYCLE_START + _CYCLE_MONTHS + extra + 1):
        year, month = divmod(index, 12)
        firsts.append(date(year, month + 1, 1).toordinal())
        lengths.append(calendar.monthrange(year, month + 1)[1])
    return firsts, lengths


@lru_cache(maxsize=256)
def _month_span_bounds(months: int) -> tuple[int, int]:
    """Fewest and most days `months` calendar months span, over a whole 400-year cycle."""
    if months == 0:
        return 0, 0
    firsts, lengths = _month_table(months)
    shortest, longest = 10**9, 0
    # Within a month only days 1 and 29-31 can differ (clamping); 400 years repeat exactly.
    for start in range(_CYCLE_MONTHS):
        end = start + months
        for day in (1, 29, 30, 31):
            if day > lengths[start]:
                continue
            span = firsts[end] + min(day, lengths[end]) - firsts[start] - day
            shortest, longest = min(shortest, span), max(longest, span)
    return shortest, longest

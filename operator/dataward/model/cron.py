"""Five-field cron schedules (the CRD's grammar): when a schedule last fired before an instant.

Fields: minute, hour, day of month, month (1-12 or JAN-DEC), day of week (0-7 or SUN-SAT,
0 and 7 both Sunday); each `*`, a number, a range `a-b` or a list, optionally with a step
`/n`. As in Kubernetes' CronJob controller (and Vixie cron), when both day fields are
restricted a day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from dataward.model.errors import ModelError

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Far enough back for any schedule that fires at all (Feb 29 on a given weekday: 28 years).
_SEARCH_DAYS = 366 * 29


@dataclass(frozen=True)
class Cron:
    """A parsed schedule: the allowed values of each field."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: date) -> bool:
        """True when the schedule fires at some time of `day`."""
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = day.isoweekday() % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def last_fire_at_or_before(self, instant: datetime) -> datetime | None:
        """The latest time at or before `instant` (wall clock of its zone) the schedule fires."""
        day = instant.date()
        for back in range(_SEARCH_DAYS):
            if self.matches_day(day):
                limit = instant.timetz().replace(tzinfo=None) if back == 0 else time.max
                times = [
                    time(h, m)
                    for h in self.hours
                    for m in self.minutes
                    if time(h, m) <= limit
                ]
                if times:
                    return datetime.combine(day, max(times), tzinfo=instant.tzinfo)
            day -= timedelta(days=1)
        return None


@lru_cache(maxsize=256)
def parse_cron(text: str, path: str = "spec.purge.schedule") -> Cron:
    """Parse a five-field schedule; raise ModelError naming `path` when it is not one.
    Remembered for the last schedules parsed (a Cron is immutable; stores mostly share a few
    schedules, and every pass reads each store's CronJob's: issue 11); an error is not."""
    fields = text.split()
    if len(fields) != 5:
        raise ModelError(path, f"{text!r} does not have five fields")
    minute, hour, day, month, weekday = fields
    weekdays = _field(weekday, 0, 7, _DAYS, path)
    cron = Cron(
        minutes=_field(minute, 0, 59, (), path),
        hours=_field(hour, 0, 23, (), path),
        days=_field(day, 1, 31, (), path),
        months=_field(month, 1, 12, _MONTHS, path, first_name=1),
        weekdays=frozenset(value % 7 for value in weekdays),
        days_restricted=not day.startswith("*"),
        weekdays_restricted=not weekday.startswith("*"),
    )
    # The CRD's pattern admits each field alone; a day that no month has (30 2: February
    # 30th) is a CronJob that never starts a purge, under a PurgeScheduled that said True.
    if cron.last_fire_at_or_before(_LAST_SEARCHED) is None:
        raise ModelError(
            path,
            f"{text!r} never runs: none of its months has that day of the month (such as the "
            "30th of February, or the 31st of April); pick a day its months have",
        )
    return cron


# A wall clock the never-runs search starts from: the 29 years before it hold every leap
# day and every weekday of each date (none of them is a non-leap century year such as 2100).
_LAST_SEARCHED = datetime(2099, 12, 31, 23, 59)


def _field(
    text: str, low: int, high: int, names: tuple[str, ...], path: str, first_name: int = 0
) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            start, end = low, high
        else:
            first, _, last = spec.partition("-")
            start = _value(first, names, path, first_name)
            end = _value(last, names, path, first_name) if last else (high if step_text else start)
        if not (low <= start <= high and low <= end <= high) or start > end or step < 1:
            raise ModelError(path, f"field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: tuple[str, ...], path: str, first_name: int) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + first_name
    if not text.isdigit():
        raise ModelError(path, f"{text!r} is not a number or a name")
    return int(text)

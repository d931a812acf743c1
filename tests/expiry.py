"""The API's per-row expiry, written apart from the code under test (never cutoff_for).

A row expires at `trigger + period` (months and years calendar-wise, the day clamped to the
target month's length). A purge may delete a row only when it and every earlier instant have
expired: that is what "the safe cutoff" (API.md) promises, checked here by brute force.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dataward.model.durations import Duration

ONE_MICROSECOND = timedelta(microseconds=1)
_END_OF_DAY = timedelta(hours=23, minutes=59, seconds=59, microseconds=999999)


def expiry(trigger: datetime, period: Duration) -> datetime:
    """When a row whose trigger happened at `trigger` expires."""
    if period.unit in ("d", "w"):
        return trigger + timedelta(days=period.amount * (7 if period.unit == "w" else 1))
    months = period.amount * (12 if period.unit == "y" else 1)
    year, month = trigger.year, trigger.month
    for _ in range(months):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return trigger.replace(
        year=year, month=month, day=min(trigger.day, calendar.monthrange(year, month)[1])
    )


def is_expired(trigger: datetime, period: Duration, now: datetime) -> bool:
    """The row's own retention has ended at `now`."""
    return expiry(trigger, period) <= now


def latest_instants_up_to(instant: datetime) -> list[datetime]:
    """Instants at or before `instant` among which is the one that expires last.

    Within one day expiry grows with the time of day, and a row of an earlier month expires in
    an earlier month than any row of `instant`'s month; so checking these checks every row.
    """
    month_start = instant.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    candidates = [instant, month_start - ONE_MICROSECOND]
    day = month_start
    while day.date() < instant.date():
        candidates.append(day + _END_OF_DAY)
        day += timedelta(days=1)
    return candidates


def is_safely_expired(trigger: datetime, period: Duration, now: datetime) -> bool:
    """The row and every instant before it have expired: a `ts <= c` purge may take it."""
    return all(is_expired(t, period, now) for t in latest_instants_up_to(trigger))


# Wall clocks of a zone (records[].timeZone): the period is added on the zone's own calendar,
# and the sum is read as the latest instant it can mean there. Written from zoneinfo alone.
_MOST_WEST, _MOST_EAST = timedelta(hours=-12), timedelta(hours=14)


def latest_reading(wall: datetime, zone: ZoneInfo) -> datetime:
    """The latest instant (UTC) a naive wall clock of `zone` means: the second of a repeated
    hour; in a skipped hour, which it never means, the reading with the offset before the
    change (the later of the two). The zone's offsets are sampled every 30 minutes over every
    instant the wall clock could be (offsets lie within -12h..+14h)."""
    as_utc = wall.replace(tzinfo=UTC)
    offsets = set()
    at = as_utc - _MOST_EAST - timedelta(hours=1)
    while at <= as_utc - _MOST_WEST + timedelta(hours=1):
        offsets.add(at.astimezone(zone).utcoffset())
        at += timedelta(minutes=30)
    readings = [as_utc - o for o in offsets if o is not None]
    valid = [r for r in readings if r.astimezone(zone).replace(tzinfo=None) == wall]
    return max(valid or readings)


def zone_expiry(trigger: datetime, period: Duration, zone: ZoneInfo) -> datetime:
    """When a row whose trigger is the wall clock `trigger` of `zone` expires (UTC): the
    period added on the zone's calendar, at the latest instant that wall clock means."""
    return latest_reading(expiry(trigger, period), zone)


def zone_expired(trigger: datetime, period: Duration, now: datetime, zone: ZoneInfo) -> bool:
    """The wall-clock row's own retention has ended at `now` (a UTC instant). Any reading of
    a wall clock is at most 12 hours after it as UTC: a row that far behind is not computed."""
    due = expiry(trigger, period)
    if due.replace(tzinfo=UTC) - _MOST_WEST <= now:
        return True
    return latest_reading(due, zone) <= now

"""Time-bucketed keys for crypto-shredding: which bucket a record falls in, and when it expires.

A category with `keyBuckets: month` (or `year`) gets one key per calendar month (year) of its
records' trigger time, in UTC. A bucket is named `YYYY-MM` (`YYYY`) and spans
`[start, end)`. It may be shredded (its key destroyed) only when every instant in it has
expired: the bucket's last instant (`end` minus one microsecond) is at or before the safe
cutoff (`cutoff_for`) of the retention, and, for a statutory category, of the statutory
period too (the archive keeps those records that long). Destroying at `start + retention`
would destroy the key of records that are still within retention.

A store whose tables name `records[].timeZone` has those rows purged by the zone's calendar
(purge/sql.py `bind_cutoff`): a month after 05:00 on March 1 in Seoul, which is in the UTC
bucket of February, is 05:00 on April 1 in Seoul, three days after February's end plus a
month. Such a bucket also waits, in each of the store's zones, until the last day any of its
instants falls on there has wholly expired (a date column's rule, the later of the two for a
wall-clock column too), so its key outlives every row the purge still keeps (`Lifetime`).

Pure functions only: the reconciler decides with these and does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dataward.model.durations import Duration, cutoff_for
from dataward.model.policy import KEY_BUCKETS, KeyBuckets
from dataward.model.wallclock import latest_wallclock, zone_day_cutoff, zone_expiry

Granularity = KeyBuckets
GRANULARITIES = KEY_BUCKETS

_BUCKET = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2]))?$")
_MICROSECOND = timedelta(microseconds=1)
# The most bucket keys the operator keeps ready at once (ten years of months): older buckets of
# a longer retention get no key, and `Cipher.encrypt` refuses a record whose bucket has none.
MAX_LIVE_BUCKETS = 120
_ZONE_MARGIN = timedelta(days=3)
_NEVER = datetime.max.replace(tzinfo=UTC)


class BucketError(ValueError):
    """A bucket name or trigger time that cannot be used; the message names the problem."""


def bucket_of(trigger: datetime, granularity: Granularity) -> str:
    """The bucket of a record whose trigger is `trigger` (an aware datetime; UTC buckets)."""
    if trigger.tzinfo is None or trigger.utcoffset() is None:
        raise BucketError("the trigger time must carry a time zone (buckets are in UTC)")
    utc = trigger.astimezone(UTC)
    if granularity == "year":
        return f"{utc.year:04d}"
    return f"{utc.year:04d}-{utc.month:02d}"


def granularity_of(bucket: str) -> Granularity:
    """`month` for `YYYY-MM`, `year` for `YYYY`; BucketError for anything else."""
    match = _BUCKET.fullmatch(bucket) if isinstance(bucket, str) else None
    if match is None or int(match.group(1)) < 1:
        raise BucketError("a bucket is named YYYY-MM (a month) or YYYY (a year)")
    if match.group(1) == "9999" and match.group(2) in (None, "12"):
        # Its end, the first instant after it, is past the calendar's: it has none to expire at.
        raise BucketError("a bucket must end before the year 10000")
    return "month" if match.group(2) else "year"


def bucket_bounds(bucket: str) -> tuple[datetime, datetime]:
    """The bucket's first instant and the first instant after it (UTC)."""
    granularity = granularity_of(bucket)
    year = int(bucket[:4])
    if granularity == "year":
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    month = int(bucket[5:7])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def next_bucket(bucket: str) -> str:
    """The bucket right after `bucket`, of the same granularity."""
    return bucket_of(bucket_bounds(bucket)[1], granularity_of(bucket))


@dataclass(frozen=True)
class Lifetime:
    """What a bucket's records must outlive: the retention (the purge's own), the statutory
    period of a statutory category (the archive keeps its records that long), and the zones
    whose calendars the store's tables count them on (`records[].timeZone`; UTC's always)."""

    retention: Duration
    statutory: Duration | None = None
    zones: tuple[ZoneInfo, ...] = ()

    @property
    def periods(self) -> tuple[Duration, ...]:
        return (self.retention,) if self.statutory is None else (self.retention, self.statutory)


def _last_days(bucket: str, zones: Iterable[ZoneInfo]) -> list[tuple[ZoneInfo, date]]:
    """For each zone, the last day there that any instant of `bucket` falls on."""
    last = bucket_bounds(bucket)[1] - _MICROSECOND
    return [(zone, latest_wallclock(last, zone).date()) for zone in zones]


def bucket_expired(bucket: str, now: datetime, life: Lifetime) -> bool:
    """True when every record of `bucket` has expired at `now` under every period, on UTC's
    calendar and on each zone's."""
    last = bucket_bounds(bucket)[1] - _MICROSECOND
    days = _last_days(bucket, life.zones)
    return all(
        last <= cutoff_for(now, period)
        and all(day <= zone_day_cutoff(now, period, zone) for zone, day in days)
        for period in life.periods
    )


def expires_at(bucket: str, life: Lifetime) -> datetime:
    """The first instant at which `bucket_expired` holds: its last record's latest expiry."""
    last = bucket_bounds(bucket)[1] - _MICROSECOND
    days = _last_days(bucket, life.zones)
    try:
        return max(
            max([period.add_to(last)] + [zone_expiry(day, period, zone) for zone, day in days])
            for period in life.periods
        )
    except (OverflowError, ValueError):  # past the calendar's end: never (`bucket_expired`)
        return _NEVER


@dataclass(frozen=True)
class BucketPlan:
    """What to do with a ring's bucket keys now."""

    create: tuple[str, ...] = ()  # buckets that need a key
    due: tuple[str, ...] = ()  # buckets whose every record has expired: their keys go
    next_due: datetime | None = None  # when the next kept bucket expires


def plan_buckets(
    now: datetime,
    granularity: Granularity | None,
    life: Lifetime,
    existing: Iterable[str],
    shredded: Iterable[str],
) -> BucketPlan:
    """Which bucket keys to create and which to destroy at `now`.

    Created: every bucket that still holds live records (not expired) from the oldest one
    within retention up to the bucket after now's, so a record written now, one back-filled
    with an older trigger, and one written just after the turn of the bucket all find a key
    (an application must never find no key for a record it writes). At most
    `MAX_LIVE_BUCKETS` (the newest). A shredded bucket never gets a key again. None: the
    category asks for no buckets, so none are created (existing ones still expire).
    """
    have, gone = set(existing), set(shredded)
    due = tuple(sorted(b for b in have if bucket_expired(b, now, life)))
    create: list[str] = []
    if granularity is not None:
        wanted: list[str] = []
        bucket = next_bucket(bucket_of(now, granularity))
        # A zone's calendar keeps a bucket up to a day and 14 hours past UTC's cutoff.
        earliest = min(cutoff_for(now, p) for p in life.periods) - _ZONE_MARGIN
        oldest = bucket_of(earliest, granularity)
        while len(wanted) < MAX_LIVE_BUCKETS:
            if not bucket_expired(bucket, now, life):
                wanted.append(bucket)
            if bucket <= oldest:
                break
            bucket = _previous_bucket(bucket)
        create = sorted(b for b in wanted if b not in have and b not in gone)
    kept = [b for b in (have | set(create)) if b not in due]
    next_due = min((expires_at(b, life) for b in kept), default=None)
    return BucketPlan(tuple(create), due, next_due)


def _previous_bucket(bucket: str) -> str:
    return bucket_of(bucket_bounds(bucket)[0] - _MICROSECOND, granularity_of(bucket))

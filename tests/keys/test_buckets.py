"""Which bucket a record falls in, and when every record of a bucket has expired.

The expected instants are worked out by hand from API.md's rule (a record expires at
`trigger + period`, calendar months clamped to the month's end), never from the code under
test. The careless rules these tests catch: destroying at `bucket start + retention` (kills
keys of records still within retention), forgetting the statutory period (kills the archive's
keys), reading a trigger in local time, and re-creating a key for a bucket already shredded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dataward.keys.buckets import (
    MAX_LIVE_BUCKETS,
    BucketError,
    Lifetime,
    bucket_bounds,
    bucket_expired,
    bucket_of,
    expires_at,
    granularity_of,
    next_bucket,
    plan_buckets,
)
from dataward.model.durations import Duration
from tests import expiry

MO1, Y1, D30, D0, Y5 = (Duration(1, "mo"), Duration(1, "y"), Duration(30, "d"),
                        Duration(0, "d"), Duration(5, "y"))  # fmt: skip
US = timedelta(microseconds=1)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_a_trigger_falls_in_its_utc_month_or_year() -> None:
    assert bucket_of(at(2026, 11, 30, 23, 59, 59), "month") == "2026-11"
    assert bucket_of(at(2026, 12, 1), "month") == "2026-12"
    assert bucket_of(at(2026, 12, 31, 23, 59), "year") == "2026"
    # 23:30 in New York on Nov 30 is Dec 1 in UTC: the bucket is December.
    new_york = timezone(timedelta(hours=-5))
    assert bucket_of(datetime(2026, 11, 30, 23, 30, tzinfo=new_york), "month") == "2026-12"
    with pytest.raises(BucketError, match="time zone"):
        bucket_of(datetime(2026, 11, 30, 12), "month")  # naive: which month is unknowable


def test_bucket_names_and_bounds() -> None:
    assert bucket_bounds("2026-12") == (at(2026, 12, 1), at(2027, 1, 1))
    assert bucket_bounds("2024-02") == (at(2024, 2, 1), at(2024, 3, 1))
    assert bucket_bounds("2026") == (at(2026, 1, 1), at(2027, 1, 1))
    assert next_bucket("2026-12") == "2027-01" and next_bucket("2026") == "2027"
    assert (granularity_of("2026-01"), granularity_of("2026")) == ("month", "year")
    for bad in ("2026-13", "2026-00", "2026-1", "26-01", "2026-01-01", "", "0000", "../x"):
        with pytest.raises(BucketError):
            granularity_of(bad)


def test_a_month_is_kept_until_its_last_record_expires_not_its_first() -> None:
    # January's last record (Jan 31 23:59:59.999999) expires Feb 28 23:59:59.999999 with 1mo.
    assert not bucket_expired(
        "2026-01", at(2026, 2, 1), Lifetime(MO1)
    )  # start + retention: too early
    assert not bucket_expired("2026-01", at(2026, 2, 28, 23, 59, 59), Lifetime(MO1))
    assert bucket_expired("2026-01", at(2026, 2, 28, 23, 59, 59, 999999), Lifetime(MO1))
    assert bucket_expired("2026-01", at(2026, 3, 1), Lifetime(MO1))


def test_a_leap_february_with_a_year_of_retention() -> None:
    # Feb 29 2024 + 1y clamps to Feb 28 2025: the bucket is due at the end of that day.
    assert not bucket_expired("2024-02", at(2025, 2, 15), Lifetime(Y1))  # start + 1y would destroy
    assert not bucket_expired("2024-02", at(2025, 2, 28, 12), Lifetime(Y1))
    assert bucket_expired("2024-02", at(2025, 3, 1), Lifetime(Y1))
    assert expires_at("2024-02", Lifetime(Y1)) == at(2025, 3, 1) - US


def test_days_count_from_the_buckets_last_instant() -> None:
    # March 31 23:59:59.999999 + 30 days = April 30 23:59:59.999999.
    assert not bucket_expired("2026-03", at(2026, 4, 30, 23, 59, 59), Lifetime(D30))
    assert bucket_expired("2026-03", at(2026, 5, 1), Lifetime(D30))
    assert not bucket_expired(
        "2026-03", at(2026, 3, 31, 12), Lifetime(D0)
    )  # its records are still live
    assert bucket_expired("2026-03", at(2026, 4, 1), Lifetime(D0))


def test_a_year_bucket_with_months_clamps_at_the_end_of_june() -> None:
    # Dec 31 2025 + 6 calendar months = June 30 2026 (June has no 31st).
    mo6 = Duration(6, "mo")
    assert not bucket_expired("2025", at(2026, 6, 30, 12), Lifetime(mo6))
    assert bucket_expired("2025", at(2026, 7, 1), Lifetime(mo6))


def test_a_statutory_period_keeps_the_key_for_the_archive() -> None:
    # Retention 0d moves the records to the archive at once; the archive keeps them 5 years.
    assert bucket_expired("2026-01", at(2026, 2, 1), Lifetime(D0))
    assert not bucket_expired("2026-01", at(2026, 2, 1), Lifetime(D0, Y5))
    assert not bucket_expired("2026-01", at(2031, 1, 31, 12), Lifetime(D0, Y5))
    assert bucket_expired("2026-01", at(2031, 2, 1), Lifetime(D0, Y5))
    assert expires_at("2026-01", Lifetime(D0, Y5)) == at(2031, 2, 1) - US


@pytest.mark.parametrize("period", [D0, D30, MO1, Duration(3, "mo"), Y1, Duration(7, "w")])
@pytest.mark.parametrize("bucket", ["2023-12", "2024-01", "2024-02", "2025-02", "2024", "2026-08"])
def test_the_expiry_instant_is_exactly_when_the_bucket_becomes_due(
    bucket: str, period: Duration
) -> None:
    # Two ways of saying the same rule (cutoff_for and calendar addition) must agree to the
    # microsecond: the reconciler sleeps until one and decides with the other.
    when = expires_at(bucket, Lifetime(period))
    assert not bucket_expired(bucket, when - US, Lifetime(period))
    assert bucket_expired(bucket, when, Lifetime(period))
    assert when >= bucket_bounds(bucket)[1] - US  # never before the bucket ends


def test_the_plan_creates_live_buckets_ahead_and_destroys_expired_ones() -> None:
    now = at(2026, 12, 15)
    # November's last record expires Dec 30 23:59:59.999999: still live; October is done.
    plan = plan_buckets(now, "month", Lifetime(MO1), existing=[], shredded=[])
    assert plan.create == ("2026-11", "2026-12", "2027-01") and plan.due == ()
    plan = plan_buckets(
        now, "month", Lifetime(MO1), ["2026-10", "2026-11", "2026-12", "2027-01"], []
    )
    assert plan.create == () and plan.due == ("2026-10",)
    assert plan.next_due == at(2026, 12, 31) - US  # November's
    # A key already shredded is never made again (a longer retention brought it back).
    plan = plan_buckets(now, "month", Lifetime(Y1), ["2026-12", "2027-01"], ["2026-10"])
    assert "2026-10" not in plan.create and "2026-11" in plan.create
    assert plan.create[0] == "2025-12"  # Dec 2025's last record expires Dec 31 2026


def test_a_category_without_buckets_creates_none_but_old_keys_still_expire() -> None:
    plan = plan_buckets(at(2026, 12, 15), None, Lifetime(MO1), ["2026-10", "2026-12"], [])
    assert plan.create == () and plan.due == ("2026-10",)


def test_a_long_retention_keeps_at_most_the_newest_live_buckets() -> None:
    plan = plan_buckets(at(2026, 12, 15), "month", Lifetime(Duration(100, "y")), [], [])
    assert len(plan.create) == MAX_LIVE_BUCKETS
    assert plan.create[-1] == "2027-01" and plan.create[0] == "2017-02"


def test_year_buckets_around_new_year() -> None:
    plan = plan_buckets(at(2026, 12, 31, 23), "year", Lifetime(D30), [], [])
    assert plan.create == ("2026", "2027")
    plan = plan_buckets(at(2027, 1, 31), "year", Lifetime(D30), ["2026", "2027", "2028"], [])
    assert plan.due == ("2026",)  # Dec 31 2026 + 30 days = Jan 30 2027


# A store whose tables keep wall clocks or dates of a zone (records[].timeZone): the purge
# keeps a row until its period has passed on the zone's calendar (tests/expiry.py, written
# from zoneinfo alone). A bucket's key must outlive every row of it, on every reading.
ZONES = ("Asia/Seoul", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
         "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/London")  # fmt: skip


def _samples(bucket: str, zone: ZoneInfo) -> list[datetime]:
    """Instants of `bucket` among which is the one whose row expires last on any reading:
    its last three days every 30 minutes, its last microsecond, and a microsecond before
    each of the zone's clock changes in the bucket (where a clock set back reads latest)."""
    start, end = bucket_bounds(bucket)
    found = [end - US]
    at = end - timedelta(days=3)
    while at < end:
        found.append(at)
        at += timedelta(minutes=30)
    at = start
    while at < end:
        after = at + timedelta(hours=1)
        if at.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            low, high = at, after
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                low, high = (mid, high) if mid.astimezone(zone).utcoffset() == \
                    at.astimezone(zone).utcoffset() else (low, mid)  # fmt: skip
            found.append(high.replace(microsecond=0) - US)
        at = after
    return found


def _latest_expiry(bucket: str, period: Duration, zone: ZoneInfo) -> datetime:
    """The latest instant any row of `bucket` expires, by the oracle: on UTC's calendar (an
    instant column), and on the zone's as a wall clock and as the whole day it falls on."""
    end_of_day = timedelta(hours=23, minutes=59, seconds=59, microseconds=999999)
    latest = bucket_bounds(bucket)[1] - US
    expiries = [expiry.expiry(latest, period)]
    for instant in _samples(bucket, zone):
        wall = instant.astimezone(zone).replace(tzinfo=None)
        day_end = datetime.combine(wall.date(), datetime.min.time()) + end_of_day
        expiries.append(expiry.zone_expiry(wall, period, zone))
        expiries.append(expiry.zone_expiry(day_end, period, zone))
    return max(expiries)


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("period", [D0, D30, MO1, Y1])
@pytest.mark.parametrize("bucket", ["2026-02", "2026-03", "2026-04", "2026-10", "2024-02", "2026"])
def test_a_zoned_stores_bucket_outlives_every_row_on_the_zones_calendar(
    bucket: str, period: Duration, zone_name: str
) -> None:
    zone = ZoneInfo(zone_name)
    life = Lifetime(period, zones=(zone,))
    when = expires_at(bucket, life)
    assert when == _latest_expiry(bucket, period, zone)
    assert not bucket_expired(bucket, when - US, life)
    assert bucket_expired(bucket, when, life)


def test_february_in_seoul_waits_for_the_first_of_april_there() -> None:
    # 05:00 on March 1 in Seoul is 2026-02-28T20:00Z, in February's bucket: a month on Seoul's
    # calendar ends 05:00 on April 1 there; a row dated March 1 there, when April 1 ends.
    seoul = Lifetime(MO1, zones=(ZoneInfo("Asia/Seoul"),))
    assert bucket_expired("2026-02", at(2026, 3, 29), Lifetime(MO1))  # UTC's calendar alone
    assert not bucket_expired("2026-02", at(2026, 3, 31, 20), seoul)
    assert not bucket_expired("2026-02", at(2026, 4, 1, 14, 59, 59), seoul)
    assert expires_at("2026-02", seoul) == at(2026, 4, 1, 14, 59, 59, 999999)
    # The statutory period counts there too: the archive keeps the rows that long.
    archived = Lifetime(D0, Y1, zones=(ZoneInfo("Asia/Seoul"),))
    assert expires_at("2026-02", archived) == at(2027, 3, 1, 14, 59, 59, 999999)


def test_the_plan_keeps_a_key_for_the_zones_last_day_of_an_old_bucket() -> None:
    # At 05:00Z on April 1 with 1mo, UTC's calendar has all of February expired (its cutoff
    # is in March); in Seoul, the rows of March 1 (February's bucket) live on until April 1
    # ends there: February's key is still made (for a back-filled record) and kept.
    seoul = Lifetime(MO1, zones=(ZoneInfo("Asia/Seoul"),))
    plan = plan_buckets(at(2026, 4, 1, 5), "month", seoul, existing=[], shredded=[])
    assert plan.create == ("2026-02", "2026-03", "2026-04", "2026-05") and plan.due == ()
    assert plan.next_due == at(2026, 4, 1, 14, 59, 59, 999999)
    assert plan_buckets(at(2026, 4, 1, 15), "month", seoul, ["2026-02"], []).due == ("2026-02",)


def test_buckets_at_the_calendars_end() -> None:
    # December 9999 and the year 9999 end past the calendar: no instant to expire at.
    for bad in ("9999-12", "9999"):
        with pytest.raises(BucketError, match="before the year 10000"):
            granularity_of(bad)
    # November 9999 ends within it, but a year of retention after it does not: never.
    never = datetime.max.replace(tzinfo=UTC)
    seoul = Lifetime(Y1, zones=(ZoneInfo("Asia/Seoul"),))
    assert expires_at("9999-11", Lifetime(Y1)) == never == expires_at("9999-11", seoul)
    assert not bucket_expired("9999-11", never, Lifetime(Y1))
    assert not bucket_expired("9999-11", never, seoul)

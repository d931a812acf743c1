"""Naive trigger values (wall-clock times and dates with no zone) against a UTC cutoff.

A `timestamp without time zone` (MariaDB `DATETIME`) holds a wall-clock time in a zone the
application chose; `records[].timeZone` names it. A wall-clock value does not always name one
instant: in a repeated hour (clocks set back) it names two, and in a skipped hour (clocks set
forward) none. Dataward reads every such value on its safe side, the **latest** instant it
could mean: in a repeated hour the second one; in a skipped hour the value read with the
offset before the change (the later reading).

Even so, the latest reading is not monotone in the wall clock: just before the end of a skipped
hour it is later than just after it. A purge compares `column <= bound`, so the bound must be
safe for every value at or before it. `safe_instant(v)` is the greatest latest reading of any
value at or before `v` (monotone); `wallclock_bound(c)` is the greatest wall clock whose
`safe_instant` is at or before `c`. So, for every naive `v`:

    v <= wallclock_bound(c, zone)   exactly when   safe_instant(v, zone) <= c

A value is therefore never taken before its instant (on any reading), and at most the length
of a clock change late (one hour, Lord Howe's half hour), only around the change.

A `date` with a zone means the whole day there: a row dated D has its trigger at the last
instant of D in the zone (`date_instant`), and `whole_days_to(wallclock_bound(c))` is the last
date whose every wall-clock value is at or before `wallclock_bound(c)`.

A retention counts on the zone's own calendar (`zone_cutoff`, `zone_expiry`): a row of wall
clock `v` expires at the wall clock `v + period` (months and years calendar-wise, as the store's
owner and the data subject count them there), read as its latest instant (`safe_instant`). A
month after 2025-03-01 05:00 in Seoul is 2025-04-01 05:00 in Seoul, not a month after the
instant's UTC date (February 28).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dataward.model.durations import Duration, cutoff_for
from dataward.model.errors import ModelError

_TICK = timedelta(microseconds=1)
# Offsets stay within -12h..+14h, so every value near an instant lies within this window.
_WINDOW = timedelta(days=3)
_STEP = timedelta(hours=1)
_LATEST_OFFSET = timedelta(hours=14)
# Values this close to the ends of the calendar have no window around them: the first expired
# long before any cutoff, the last never will.
_EDGE = timedelta(days=4)
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
# Files a zone directory holds that name no IANA zone: `localtime` is the machine's own zone
# (the purge pod's, or the laptop's that runs `dataward check`), `posixrules` the default
# rules of POSIX TZ strings, `Factory` a placeholder zone ("-00").
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def iana_zones() -> frozenset[str]:
    """The zone names the IANA database defines (system zone files and tzdata together),
    without the directory's own files (`_NOT_ZONES`) and its `posix/` and `right/` copies."""
    return frozenset(available_timezones()) - _NOT_ZONES


def parse_zone(name: object, path: str = "timeZone") -> ZoneInfo:
    """An IANA zone by name (`Asia/Seoul`); ModelError naming `path` otherwise.

    Only names of the IANA database are accepted (`iana_zones`), not fixed offsets, paths,
    nor a name that means the machine's own zone (`localtime`): a zone must read the same in
    the purge pod as on the laptop that checked it.
    """
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ModelError(path, f"must be an IANA time zone name such as Asia/Seoul, not {name!r}")
    if name.startswith("/") or ".." in name.split("/") or "\\" in name:
        raise ModelError(path, f"{name!r} is not an IANA time zone name (for example Asia/Seoul)")
    why = (
        " (a file of the zone directory, such as the machine's own zone, which differs "
        "between the purge pod and a laptop)"
        if name in _NOT_ZONES
        else ""
    )
    unknown = ModelError(
        path,
        f"{name!r} is not a time zone the IANA database knows{why}; write a name such as "
        "Asia/Seoul, Europe/Berlin or UTC",
    )
    if name not in iana_zones():
        raise unknown
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise unknown from None


@dataclass(frozen=True, slots=True)
class _Piece:
    """Wall-clock values from `start` (naive, None: the window's beginning) whose latest
    reading uses `offset`."""

    start: datetime | None
    offset: timedelta


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _transitions(
    zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, timedelta, timedelta]]:
    """The zone's offset changes in [start, end) (UTC): (instant, offset before, offset after),
    to the second (the zone database's resolution)."""
    found = []
    at, before = start, _offset(zone, start)
    while at < end:
        nxt = at + _STEP
        after = _offset(zone, nxt)
        if after != before:
            low, high = at, nxt  # offset(low) == before, offset(high) != before
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                mid = mid.replace(microsecond=0)
                if mid <= low:
                    break
                if _offset(zone, mid) == before:
                    low = mid
                else:
                    high = mid
            found.append((high, before, _offset(zone, high)))
        at, before = nxt, after
    return found


@lru_cache(maxsize=4096)
def _pieces(zone: ZoneInfo, around: datetime) -> tuple[_Piece, ...]:
    """The latest-reading offset by wall clock, for values within a few days of `around`.

    At a change at instant T from offset o1 to o2, the latest reading switches from o1 to o2 at
    wall clock T + o2: in a repeated hour [T + o2, T + o1) the later reading is the one with
    o2; in a skipped hour [T + o1, T + o2) there is none, and o1 is the later reading.
    """
    start = around - _WINDOW
    pieces = [_Piece(None, _offset(zone, start))]
    for instant, _, after in _transitions(zone, start, around + _WINDOW):
        pieces.append(_Piece((instant + after).replace(tzinfo=None), after))
    return tuple(pieces)


def _hour(instant: datetime) -> datetime:
    """The hour an instant lies in (UTC, aware): the cache key of the pieces around it."""
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def wallclock_bound(cutoff: datetime, zone: ZoneInfo) -> datetime:
    """The greatest naive wall clock `b` such that every naive `v <= b` is, on every reading in
    `zone`, at or before `cutoff` (an aware instant)."""
    pieces = _pieces(zone, _hour(cutoff))
    utc = cutoff.astimezone(UTC).replace(tzinfo=None)
    for index, piece in enumerate(pieces):
        last = utc + piece.offset  # the latest wall clock of this offset at or before cutoff
        if piece.start is not None and last < piece.start:
            return piece.start - _TICK
        following = pieces[index + 1].start if index + 1 < len(pieces) else None
        # Stop in this piece unless all of it is safe (then the next piece may be too: after a
        # skipped hour its values read no later than the skipped hour's last one).
        if following is None or last + _TICK < following:
            return last
    raise AssertionError("unreachable: the last piece is unbounded")


def safe_instant(value: datetime, zone: ZoneInfo) -> datetime:
    """The greatest latest reading (UTC, aware) of any naive wall clock at or before `value`."""
    if value < datetime.min + _EDGE:
        return _FIRST
    if value > datetime.max - _EDGE:
        return _LAST
    pieces = _pieces(zone, _hour(value.replace(tzinfo=UTC)))
    latest: datetime | None = None
    for index, piece in enumerate(pieces):
        if piece.start is not None and piece.start > value:
            break
        following = pieces[index + 1].start if index + 1 < len(pieces) else None
        end = value if following is None or following > value else following - _TICK
        reading = end - piece.offset
        latest = reading if latest is None else max(latest, reading)
    assert latest is not None
    return latest.replace(tzinfo=UTC)


def _day_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


def whole_days_to(bound: datetime) -> date:
    """The last date whose every wall clock is at or before the naive `bound`."""
    return (bound + _TICK).date() - timedelta(days=1)


def zone_cutoff(now: datetime, period: Duration, zone: ZoneInfo) -> datetime:
    """The safe cutoff of `period` at `now` (an aware instant) for wall clocks of `zone`: the
    greatest naive `c` such that every wall clock `v <= c` has expired, `v + period` on the
    zone's calendar being at or before `now` on its latest reading (`zone_expiry`).

    `safe_instant(w) <= now` exactly when `w <= wallclock_bound(now)`, so this is the calendar's
    safe cutoff (`cutoff_for`) at the zone's latest wall clock that has wholly passed.
    """
    return cutoff_for(wallclock_bound(now, zone), period)


def zone_day_cutoff(now: datetime, period: Duration, zone: ZoneInfo) -> date:
    """The last day of `zone` whose rows have all expired at `now` (an aware instant) after
    `period`: a date column's safe cutoff, the day `d` going once all of it has expired there
    (`zone_expiry(d) <= now` exactly when `d <= zone_day_cutoff(now)`)."""
    return whole_days_to(zone_cutoff(now, period, zone))


@lru_cache(maxsize=4096)  # a store's bucket ends, asked on every pass that plans its keys
def latest_wallclock(instant: datetime, zone: ZoneInfo) -> datetime:
    """The latest wall clock (naive) of `zone` that any instant at or before `instant` (aware)
    reads: `instant`'s own, or, within a clock set back a moment before it, the wall clock
    just before the change (which reads later than the repeated hour after it)."""
    utc = instant.astimezone(UTC).replace(tzinfo=None)
    if utc < datetime.min + _EDGE or utc > datetime.max - _EDGE:
        return utc + _LATEST_OFFSET  # no window around it: the latest any zone reads
    latest = instant.astimezone(zone).replace(tzinfo=None)
    aware = utc.replace(tzinfo=UTC)
    for change, before, _ in _transitions(zone, aware - _WINDOW, aware + _TICK):
        if change <= aware:
            latest = max(latest, (change - _TICK + before).replace(tzinfo=None))
    return latest


def zone_expiry(value: datetime | date, period: Duration, zone: ZoneInfo) -> datetime:
    """When a row whose trigger is the wall clock (or the whole day) `value` of `zone` expires
    (UTC, aware): `value + period` on the zone's calendar, at its latest reading. A value at or
    before `zone_cutoff(now)` (a day at or before its `whole_days_to`) expires by `now`."""
    try:
        if not isinstance(value, datetime):
            value = _day_after(value) - _TICK
        return safe_instant(period.add_to(value), zone)
    except (OverflowError, ValueError):  # past the calendar's end: never
        return _LAST


def date_instant(day: date, zone: ZoneInfo) -> datetime:
    """A date's trigger in `zone`: the last instant of that day there (UTC, aware)."""
    if day > date.max - _EDGE:
        return _LAST
    return safe_instant(_day_after(day) - _TICK, zone)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone` (UTC, aware): its midnight, the first one when
    midnight repeats, or the clock change itself when the change skips midnight."""
    midnight = datetime.combine(day, datetime.min.time())
    found = [
        at
        for fold in (0, 1)
        if (at := midnight.replace(tzinfo=zone, fold=fold).astimezone(UTC))
        .astimezone(zone)
        .replace(tzinfo=None)
        == midnight
    ]
    if found:
        return min(found)
    # Midnight lies in a skipped hour: the offset after the change reads it earlier (on the
    # day before), the one before it later (after the change); the change is in between.
    low = midnight.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = midnight.replace(tzinfo=zone, fold=0).astimezone(UTC)
    low, high = min(low, high), max(low, high)
    while high - low > timedelta(seconds=1):
        mid = (low + (high - low) / 2).replace(microsecond=0)
        if mid <= low:
            break
        if mid.astimezone(zone).date() >= day:
            high = mid
        else:
            low = mid
    return high


# Birthdays (`birthday_shifts`): before this date no zone changed its clocks for summer time;
# days before it are read on their safe side whatever their zone.
_SCAN_FROM = date(1900, 1, 1)
# The greatest UTC offset any zone uses: no day begins earlier than its midnight minus this.
_MAX_OFFSET = timedelta(hours=14)


@lru_cache(maxsize=16)
def _midnight_offsets(zone: ZoneInfo, last: date) -> tuple[timedelta, ...]:
    """The zone's offset at each UTC midnight from the day before 1900-01-01 to two days past
    `last`."""
    days = (last - _SCAN_FROM).days + 4
    midnight = datetime.combine(_SCAN_FROM, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
    return tuple(_offset(zone, midnight + timedelta(days=k)) for k in range(days))


@lru_cache(maxsize=64)
def birth_offsets(zone: ZoneInfo, last: date) -> tuple[tuple[date, timedelta], ...]:
    """The offset that turns an instant of birth into its day in `zone`, as `(from, offset)`
    pieces by the instant's UTC date (the first piece from date.min): the least offset the
    zone has within a day of that date, so the day read is never later than the true one
    (a day early only for a birth within a day of a clock change, when the offset read is
    the other side's). Before 1900 the least offset of any zone (-12 h); past `last` the last
    piece goes on."""
    offsets = _midnight_offsets(zone, last)  # offsets[k + 1]: at the UTC midnight of day k
    pieces: list[tuple[date, timedelta]] = [(date.min, -timedelta(hours=12))]
    for k in range((last - _SCAN_FROM).days + 1):
        # The instants of day k lie between its midnight and the next: their offsets are
        # those two or a change's between; a day either side covers the change's.
        least = min(offsets[k : k + 4])
        if least != pieces[-1][1]:
            pieces.append((_SCAN_FROM + timedelta(days=k), least))
    return tuple(pieces)


@lru_cache(maxsize=64)
def birthday_shifts(
    zone: ZoneInfo, last: date, wallclock: bool
) -> tuple[tuple[date, timedelta], ...]:
    """When a day begins in `zone`, as `(from, shift)` pieces: from date `from` on (the first
    piece from date.min), day D begins at `D 00:00 - shift`, read as UTC (`wallclock` False:
    instants) or as a wall clock of the zone (`wallclock` True).

    A subject turns 14 when their birthday begins, and a row is a child's only if it was
    collected before that on every reading: so the instant is the day's first (`day_start`),
    and a wall clock counts as before it only when its latest reading is (`safe_instant`),
    which moves the bound before midnight where a repeated hour crosses it. Days before 1900
    are read on the safe side (instants: the earliest any zone begins a day; wall clocks: at
    midnight, before summer time existed). Past `last` the last piece goes on: the caller
    compares only values at least two days before `last` with it.
    """
    first_shift = timedelta(0) if wallclock else _MAX_OFFSET

    def exact(day: date) -> timedelta:
        start = day_start(day, zone)
        midnight = datetime.combine(day, datetime.min.time())
        if not wallclock:
            return midnight - start.replace(tzinfo=None)
        return midnight - (wallclock_bound(start - _TICK, zone) + _TICK)

    offsets = _midnight_offsets(zone, last)
    pieces: list[tuple[date, timedelta]] = [(date.min, first_shift)]
    for k in range((last - _SCAN_FROM).days + 1):
        day = _SCAN_FROM + timedelta(days=k)
        # offsets[k + 1] is the one at this day's UTC midnight; a change within two days of it
        # may move when the day begins.
        steady = len(set(offsets[max(0, k - 1) : k + 4])) == 1
        if steady:
            shift = timedelta(0) if wallclock else offsets[k + 1]
        else:
            shift = exact(day)
        if shift != pieces[-1][1]:
            pieces.append((day, shift))
    return tuple(pieces)

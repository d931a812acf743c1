"""What a data-subject request will do, decided without I/O.

- `plan_request`: per table of the store, the columns to compare with the identifiers the
  request supplies (a row matches when any of them equals its kind's identifier); tables with
  none of those kinds are reported as not searchable, with the kinds their subject columns
  need. A store answers only when it searched a table and every table not searched has no
  subject columns at all (`SubjectPlan.answers`): of the others nothing is known.
- `row_fate`: what an erasure does with one of the subject's rows. A row of a category with
  a statute whose period, counted from the row's trigger as the purge counts it (`Trigger`:
  on records[].timeZone's calendar for a wall-clock or date column), is still ahead is kept:
  copied to the archive (as the purge would) and then deleted from the live store; when its
  trigger has not happened yet the statute's period has not even started, and the row stays
  in the live store (the purge archives it once its retention ends). Every other row is
  deleted.
- The gates: `legal_hold` (the store's `spec.purge.suspend` blocks an erasure) and
  `large_match` (a request matching more than `max_rows` rows is held until acknowledged with
  the token the result prints, the same mechanism as the purge's large-cut hold).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from dataward.model.compliance import effective_retention
from dataward.model.durations import Duration
from dataward.model.policy import Policy
from dataward.model.store import RecordSet, Store, SubjectColumn
from dataward.purge.errors import PurgeError
from dataward.purge.plan import Gate, store_ref
from dataward.purge.sql import as_utc, expiry_of

RequestType = Literal["access", "erasure"]
RowFate = Literal["delete", "archive", "keep-live"]
REQUEST_TYPES: tuple[RequestType, ...] = ("access", "erasure")
DEFAULT_MAX_ROWS = 100


@dataclass(frozen=True)
class Trigger:
    """A row's trigger as its column holds it, and the zone it is read in (`column_zone`:
    records[].timeZone for a wall-clock or date column, None for an instant or without one).
    A period counts from it as the purge's bound does (`sql.expiry_of`): on the zone's
    calendar for a naive value of a zone, on UTC's otherwise."""

    value: datetime | date
    zone: ZoneInfo | None = None

    @property
    def instant(self) -> datetime:
        """When it happened (UTC, aware; a date: the end of its day in the zone)."""
        return as_utc(self.value, self.zone)

    def plus(self, period: Duration) -> datetime:
        """When `period` counted from it ends (UTC, aware)."""
        return expiry_of(self.value, period, self.zone)


@dataclass(frozen=True)
class Lifecycle:
    """What the policy says about every row of the store."""

    category: str
    purposes: tuple[str, ...]
    retention: Duration
    trigger: str
    statute: str | None = None
    statutory: Duration | None = None

    def expires_at(self, trigger: Trigger | None) -> datetime | None:
        """When the row's retention in the live store ends (None: the trigger is pending)."""
        return None if trigger is None else trigger.plus(self.retention)

    def kept_until(self, trigger: Trigger | None) -> datetime | None:
        """When the statute stops requiring the row (None: no statute, or trigger pending)."""
        if self.statutory is None or trigger is None:
            return None
        return trigger.plus(self.statutory)


@dataclass(frozen=True)
class TablePlan:
    """One table and the subject columns a request compares in it."""

    records: RecordSet
    matches: tuple[SubjectColumn, ...]

    @property
    def table(self) -> str:
        """The table as the store names it."""
        return self.records.table


@dataclass(frozen=True)
class SubjectPlan:
    """The tables a request searches in one store, and those it cannot.

    `not_searchable`: every table not searched; `kinds_needed`: the identifier kinds of their
    subject columns (a table of them could be searched with one of its own), sorted.
    """

    store: str
    lifecycle: Lifecycle
    tables: tuple[TablePlan, ...]
    not_searchable: tuple[str, ...]
    kinds_needed: tuple[str, ...] = ()

    @property
    def answers(self) -> bool:
        """Whether the store can answer the request: some table is searched, and no table
        that has subject columns is left out for want of an identifier of their kinds (the
        subject's rows there are unknown). A table without subject columns is the store's
        declaration that none identifies a subject: it is named, and keeps nothing back."""
        return bool(self.tables) and not self.kinds_needed


def lifecycle_of(store: Store, policy: Policy | None) -> Lifecycle:
    """The store's category as the policy defines it; Failed when it does not exist."""
    category = policy.category(store.category) if policy is not None else None
    if policy is None or policy.name != store.policy or category is None:
        raise PurgeError(
            "NotCompliant",
            f"the store's policy {store.policy!r} or its category {store.category!r} does not "
            "exist, so nothing says what the rows are for or how long they are kept; nothing "
            "was read or deleted.",
        )
    statutory = category.statutory
    return Lifecycle(
        category=category.name,
        purposes=category.purposes,
        retention=effective_retention(store, category),
        trigger=category.retention.trigger,
        statute=statutory.statute if statutory else None,
        statutory=statutory.period if statutory else None,
    )


def plan_request(store: Store, policy: Policy | None, kinds: Iterable[str]) -> SubjectPlan:
    """Which columns of which tables a request with identifiers of `kinds` compares."""
    lifecycle = lifecycle_of(store, policy)
    supplied = frozenset(kinds)
    tables: list[TablePlan] = []
    not_searchable: list[str] = []
    needed: set[str] = set()
    for records in store.records:
        matches = tuple(c for c in records.subject_columns if c.kind in supplied)
        if matches:
            tables.append(TablePlan(records, matches))
        else:
            not_searchable.append(records.table)
            needed.update(c.kind for c in records.subject_columns)
    return SubjectPlan(
        store_ref(store), lifecycle, tuple(tables), tuple(not_searchable), tuple(sorted(needed))
    )


def row_fate(trigger: Trigger | None, lifecycle: Lifecycle, now: datetime) -> RowFate:
    """What an erasure does with one of the subject's rows at `now`."""
    if lifecycle.statutory is None:
        return "delete"
    until = lifecycle.kept_until(trigger)
    if until is None:
        return "keep-live"
    return "archive" if until > now else "delete"


def legal_hold(store: Store, request: RequestType) -> Gate | None:
    """A legal hold (spec.purge.suspend) blocks an erasure; an access request only reads."""
    if request != "erasure" or not store.purge.suspend:
        return None
    return Gate(
        "Held",
        "LegalHold",
        f"store {store_ref(store)} is under a legal hold (spec.purge.suspend is true): "
        "nothing was deleted; the erasure can run once the hold is lifted.",
    )


def acknowledge_token(store: Store, policy: Policy, rows: int) -> str:
    """The token that releases a held large match: it names the count and the generations,
    so it stops working when more rows match or the store or policy changes."""
    return f"rows{rows}-g{store.generation}-p{policy.generation}"


def large_match(rows: int, max_rows: int, token: str, acknowledged: str | None) -> Gate | None:
    """Hold a request whose identifiers match more than `max_rows` rows, unless acknowledged."""
    if rows <= max_rows or acknowledged == token:
        return None
    return Gate(
        "Held",
        "LargeMatch",
        f"held: the identifiers match {rows} rows, more than the {max_rows} a request may "
        "touch without confirmation (an identifier shared by many people, or a wrong one?); "
        f"nothing was exported or deleted. If this is intended, acknowledge with {token}.",
    )

"""The record of a purge run: JSON on stdout and as the pod's termination message.

It carries counts, instants and safe messages only: never credentials, never row contents.
In a dry run the counts say what a real run would have done (`dryRun: true`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from dataward.purge.errors import ErrorCategory
from dataward.purge.plan import Outcome

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")
# The kubelet keeps at most 4096 bytes of a termination message.
TERMINATION_MESSAGE_LIMIT = 4096
# The largest count a record holds: the CRDs type the counts copied to status `integer,
# format: int64`, and the API server refuses a larger one (422). The purge's counts are rows
# counted by a database (64-bit), never negative.
COUNT_MAX = 2**63 - 1


def is_count(value: object) -> bool:
    """Whether `value` is a count as a record holds one: a whole number 0..COUNT_MAX."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= COUNT_MAX


def is_seconds(value: object) -> bool:
    """Whether `value` is a span of seconds as a record holds one (how long ago the most
    overdue row expired): a number 0..COUNT_MAX. Never NaN or an infinity, which Python's
    JSON reads: NaN compares false with every threshold an alert sets."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool)
        and 0 <= value <= COUNT_MAX  # NaN fails both comparisons
    )  # fmt: skip


@dataclass(frozen=True)
class TableResult:
    """What a run did to one `records` entry."""

    table: str
    rows_deleted: int = 0
    rows_archived: int = 0
    archive_rows_destroyed: int = 0
    expired_remaining: int = 0
    oldest_expired_age_seconds: float | None = None
    null_triggers: int = 0
    archive_expired_remaining: int = 0
    rows_skipped_locked: int = 0
    # Of rows_deleted (and rows_archived when statutory): rows of children under 14 without
    # the legal representative's consent, removed after the category's consent grace.
    rows_no_consent: int = 0
    no_consent_remaining: int = 0
    unknown_age: int = 0  # rows of a children's table with no birth date or age: kept
    # Dry runs: a real run would be held by the large-cut gate because of this table.
    large_cut: bool = False
    # Statutory runs: how the live rows reached the archive. "ServerSide": copied by the live
    # login inside the live transaction (MariaDB, the archive on the same server, the live
    # login granted INSERT and SELECT there); "TwoLogins": through the job, the archive's own
    # login writing (every other case). None: not statutory.
    archive_copy: str | None = None
    # records[].timeZone when the trigger column is a wall clock or date of that zone. Its
    # bounds count on the zone's calendar (`sql.bind_cutoff`), not the run's `cutoff`
    # (UTC's): the values the column was compared with (`column <= bound`), a naive wall
    # clock of the zone or a date; the archive's too when statutory.
    time_zone: str | None = None
    zone_cutoff: str | None = None
    zone_archive_cutoff: str | None = None
    # A children's category whose collection column (children.collectedColumn, else the
    # trigger) is a wall clock or date of records[].timeZone: the bound it was compared with,
    # the consent grace on the zone's calendar, not the run's children's cutoff (UTC's).
    zone_children_cutoff: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "table": self.table,
            "rowsDeleted": self.rows_deleted,
            "rowsArchived": self.rows_archived,
            "archiveRowsDestroyed": self.archive_rows_destroyed,
            "expiredRemaining": self.expired_remaining,
            "oldestExpiredAgeSeconds": self.oldest_expired_age_seconds,
            "nullTriggers": self.null_triggers,
            "archiveExpiredRemaining": self.archive_expired_remaining,
            "rowsSkippedLocked": self.rows_skipped_locked,
            "rowsNoConsent": self.rows_no_consent,
            "noConsentRemaining": self.no_consent_remaining,
            "unknownAge": self.unknown_age,
            "largeCut": self.large_cut,
            **({"archiveCopy": self.archive_copy} if self.archive_copy else {}),
            **({"timeZone": self.time_zone} if self.time_zone else {}),
            **({"zoneCutoff": self.zone_cutoff} if self.zone_cutoff else {}),
            **({"zoneArchiveCutoff": self.zone_archive_cutoff} if self.zone_archive_cutoff
               else {}),
            **(
                {"zoneChildrenCutoff": self.zone_children_cutoff}
                if self.zone_children_cutoff
                else {}
            ),
        }


@dataclass(frozen=True)
class ErrorInfo:
    """A failure: its category and a message with no driver text."""

    category: ErrorCategory | str
    message: str


@dataclass(frozen=True)
class PurgeResult:
    """One run of `dataward purge`."""

    store: str
    result: Outcome
    dry_run: bool
    start_time: datetime
    completion_time: datetime
    message: str
    reason: str | None = None
    server_time: datetime | None = None
    cutoff: datetime | None = None
    archive_cutoff: datetime | None = None
    tables: tuple[TableResult, ...] = ()
    stopped_early: str | None = None
    error: ErrorInfo | None = None
    acknowledge_token: str | None = None

    @property
    def rows_deleted(self) -> int:
        """Rows deleted from the live database, all tables."""
        return sum(t.rows_deleted for t in self.tables)

    @property
    def rows_archived(self) -> int:
        """Rows newly copied to the archive, all tables."""
        return sum(t.rows_archived for t in self.tables)

    @property
    def rows_skipped_locked(self) -> int:
        """Expired rows left for the next run because an application held them locked."""
        return sum(t.rows_skipped_locked for t in self.tables)

    @property
    def expired_remaining(self) -> int:
        """Expired rows still in the live database, all tables."""
        return sum(t.expired_remaining for t in self.tables)

    @property
    def oldest_expired_age_seconds(self) -> float | None:
        """Seconds since the longest-overdue remaining row expired; None when none remain."""
        ages = [t.oldest_expired_age_seconds for t in self.tables]
        known = [a for a in ages if a is not None]
        return max(known) if known else None

    def to_dict(self, *, with_tables: bool = True) -> dict[str, Any]:
        """The JSON shape (camelCase, RFC 3339 UTC instants)."""
        out: dict[str, Any] = {
            "store": self.store,
            "result": self.result,
            "reason": self.reason,
            "message": self.message,
            "dryRun": self.dry_run,
            "startTime": _instant(self.start_time),
            "completionTime": _instant(self.completion_time),
            "durationSeconds": round((self.completion_time - self.start_time).total_seconds(), 3),
            "serverTime": _instant(self.server_time),
            "cutoff": _instant(self.cutoff),
            "archiveCutoff": _instant(self.archive_cutoff),
            "rowsDeleted": self.rows_deleted,
            "rowsArchived": self.rows_archived,
            "archiveRowsDestroyed": sum(t.archive_rows_destroyed for t in self.tables),
            "expiredRemaining": self.expired_remaining,
            "oldestExpiredAgeSeconds": self.oldest_expired_age_seconds,
            "nullTriggers": sum(t.null_triggers for t in self.tables),
            "rowsSkippedLocked": self.rows_skipped_locked,
            "rowsNoConsent": sum(t.rows_no_consent for t in self.tables),
            "stoppedEarly": self.stopped_early,
            "error": None
            if self.error is None
            else {"category": self.error.category, "message": self.error.message},
            "acknowledgeToken": self.acknowledge_token,
        }
        if with_tables:
            out["tables"] = [t.to_dict() for t in self.tables]
        else:
            out["tablesOmitted"] = len(self.tables)
        return out

    def to_json(self) -> str:
        """The full record, one line."""
        return json.dumps(self.to_dict(), sort_keys=False, separators=(",", ":"))

    def termination_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        """The record cut to fit the kubelet's limit: per-table details go first, then text."""
        return fit_record(self.to_json(), lambda: self.to_dict(with_tables=False), limit)


def finished(result: PurgeResult, at: datetime) -> PurgeResult:
    """The result with its completion time set."""
    return replace(result, completion_time=at)


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def termination_log_path(flag: str | None, environ: dict[str, str] | os._Environ[str]) -> Path:
    """The flag, else `DATAWARD_TERMINATION_LOG`, else /dev/termination-log."""
    if flag:
        return Path(flag)
    if environ.get("DATAWARD_TERMINATION_LOG"):
        return Path(environ["DATAWARD_TERMINATION_LOG"])
    return DEFAULT_TERMINATION_LOG


def fit_record(
    full: str,
    short: Callable[[], dict[str, Any]],
    limit: int = TERMINATION_MESSAGE_LIMIT,
    lists: tuple[str, ...] = (),
) -> str:
    """A result record (`full`, one JSON line) that fits the kubelet's `limit` in bytes.

    Past the limit: `short()` (the record without per-table details), its message halved
    until it fits (down to 40 characters), then each of `lists` cut to its first three items.
    """
    if len(full.encode()) <= limit:
        return full
    record = short()
    text = json.dumps(record, separators=(",", ":"))
    while len(text.encode()) > limit and len(record["message"]) > 40:
        record["message"] = record["message"][: len(record["message"]) // 2] + "…"
        text = json.dumps(record, separators=(",", ":"))
    for key in lists:
        if len(text.encode()) <= limit:
            break
        record[key] = record[key][:3]
        text = json.dumps(record, separators=(",", ":"))
    return text


class TerminationRecord(Protocol):
    """A result that knows its termination message (the purge's, a subject request's)."""

    def termination_message(self) -> str:
        """The record cut to fit the kubelet's limit."""
        ...


def write_termination_message(result: TerminationRecord, path: Path) -> bool:
    """Write the record where the kubelet reads it; False if that was not possible.

    The default path is only written when it exists (the kubelet creates it in a pod), so a
    local run never creates /dev/termination-log.
    """
    if path == DEFAULT_TERMINATION_LOG and not path.exists():
        return False
    try:
        path.write_text(result.termination_message())
    except OSError:
        return False
    return True

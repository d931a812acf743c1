"""The record of a data-subject request in one store: JSON on stdout and as the termination
message. Counts, table names, instants and safe messages only: never an identifier, never a
row's content.

Per table (`tables[]`):
- `rowsFound`: the subject's rows in the live table; `archiveRowsFound`: in the archive.
- access: `rowsExported`, the rows written to the sealed export (live and archive).
- erasure: `rowsDeleted` from the live table (statutory rows included, after their copy);
  `rowsArchived`, rows copied to the archive by this run; `rowsKept`, the subject's rows a
  statute keeps after the run (in the archive, plus `rowsKeptLive`: rows whose trigger has not
  happened, left in the live table for the purge to archive later); `keptUntil`, the latest
  instant the statute (`statute`) keeps one of them; `archiveRowsDestroyed`, the subject's
  archived rows past their statute, destroyed (the purge would have, on its next run).
In a dry run the counts say what a real run would do (`dryRun: true`).

`notSearchable`: the store's tables not searched (none of their subject columns is of a kind
the request gives, or they have none); `kindsNeeded`: the identifier kinds of those tables'
subject columns. A store with tables left out for want of one of those kinds, or with no
table searched at all, has not answered: Failed, reason NotSearchable (the tables it did
search still report their counts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from dataward.purge.result import TERMINATION_MESSAGE_LIMIT, ErrorInfo, fit_record
from dataward.subjects.plan import RequestType

Outcome = Literal["Succeeded", "Held", "Failed"]


@dataclass(frozen=True)
class TableOutcome:
    """What a request found and did in one table."""

    table: str
    rows_found: int = 0
    archive_rows_found: int = 0
    rows_exported: int = 0
    rows_deleted: int = 0
    rows_archived: int = 0
    rows_kept: int = 0
    rows_kept_live: int = 0
    kept_until: datetime | None = None
    statute: str | None = None
    archive_rows_destroyed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "table": self.table,
            "rowsFound": self.rows_found,
            "archiveRowsFound": self.archive_rows_found,
            "rowsExported": self.rows_exported,
            "rowsDeleted": self.rows_deleted,
            "rowsArchived": self.rows_archived,
            "rowsKept": self.rows_kept,
            "rowsKeptLive": self.rows_kept_live,
            "keptUntil": instant(self.kept_until),
            "statute": self.statute,
            "archiveRowsDestroyed": self.archive_rows_destroyed,
        }


@dataclass(frozen=True)
class SubjectResult:
    """One request against one store."""

    store: str
    type: RequestType
    outcome: Outcome
    dry_run: bool
    start_time: datetime
    completion_time: datetime
    message: str
    reason: str | None = None
    server_time: datetime | None = None
    tables: tuple[TableOutcome, ...] = ()
    not_searchable: tuple[str, ...] = ()
    kinds_needed: tuple[str, ...] = ()
    acknowledge_token: str | None = None
    error: ErrorInfo | None = None
    export_sha256: str | None = None

    def total(self, name: str) -> int:
        """A count summed over the tables (`rows_found`, `rows_deleted`, ...)."""
        return sum(int(getattr(t, name)) for t in self.tables)

    def to_dict(self, *, with_tables: bool = True) -> dict[str, Any]:
        """The JSON shape (camelCase, RFC 3339 UTC instants)."""
        kept = [t.kept_until for t in self.tables if t.kept_until is not None]
        out: dict[str, Any] = {
            "store": self.store,
            "type": self.type,
            "outcome": self.outcome,
            "reason": self.reason,
            "message": self.message,
            "dryRun": self.dry_run,
            "startTime": instant(self.start_time),
            "completionTime": instant(self.completion_time),
            "serverTime": instant(self.server_time),
            "rowsFound": self.total("rows_found"),
            "archiveRowsFound": self.total("archive_rows_found"),
            "rowsExported": self.total("rows_exported"),
            "rowsDeleted": self.total("rows_deleted"),
            "rowsArchived": self.total("rows_archived"),
            "rowsKept": self.total("rows_kept"),
            "keptUntil": instant(max(kept)) if kept else None,
            "archiveRowsDestroyed": self.total("archive_rows_destroyed"),
            "notSearchable": list(self.not_searchable),
            "kindsNeeded": list(self.kinds_needed),
            "acknowledgeToken": self.acknowledge_token,
            "exportSha256": self.export_sha256,
            "error": None
            if self.error is None
            else {"category": self.error.category, "message": self.error.message},
        }
        if with_tables:
            out["tables"] = [t.to_dict() for t in self.tables]
        else:
            out["tablesOmitted"] = len(self.tables)
        return out

    def to_json(self) -> str:
        """The full record, one line."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def termination_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        """The record cut to fit the kubelet's limit: per-table details go first, then text."""
        return fit_record(
            self.to_json(),
            lambda: self.to_dict(with_tables=False),
            limit,
            ("notSearchable", "kindsNeeded"),
        )


def instant(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

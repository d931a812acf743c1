"""Errors of the purge job, each with a category and a message safe to publish.

Driver exceptions are never shown: their text can carry a DSN, a user name or row values.
Each driver maps its exceptions to one of these, keeping only error codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal

ErrorCategory = Literal[
    "NotCompliant",
    "ClockSkew",
    "ColumnRefused",
    "TableNotFound",
    "ArchiveTableInvalid",
    "ArchiveUnavailable",
    "ArchiveReadOnly",
    "ArchiveVerifyFailed",
    "ArchiveKeyConflict",
    "ArchiveClaimed",
    "ArchiveClaimsMissing",
    "ConnectionFailed",
    "AuthenticationFailed",
    "PermissionDenied",
    "IndexMissing",
    "Timeout",
    "DatabaseError",
    "Configuration",
    "StoreUnavailable",
    "JobOutdated",
    "Internal",
]


class PurgeError(Exception):
    """A purge that cannot go on; `message` says what happened and what to change."""

    def __init__(self, category: ErrorCategory, message: str) -> None:
        super().__init__(f"{category}: {message}")
        self.category: ErrorCategory = category
        self.message = message


def unforeseen(error: Exception, what: str) -> PurgeError:
    """An error no code path expected, as an Internal PurgeError naming its class only.

    Its text is not shown: an exception raised while handling rows, identifiers or Secrets
    can quote them (`invalid literal for int(): '...'`). `what`: "purge", "request".
    """
    return PurgeError("Internal", f"the {what} failed unexpectedly ({type(error).__name__})")


class NoInstant(PurgeError):
    """Values that name no instant (`sql.Dialect.no_instant`): PostgreSQL's `-infinity`
    (psycopg cannot read it into Python and it sorts before every date), MariaDB's zero
    date, or a date with a zero month or day, which a writer's session stores when its
    sql_mode lacks NO_ZERO_DATE / NO_ZERO_IN_DATE (PyMySQL returns them as text). In a
    trigger: nothing says when such a row's retention or statute ends, so it is never
    deleted; reading it as NULL ("not happened yet") or as the earliest date would decide
    that for the data. In a birth date (`birth`; PostgreSQL's `infinity` too): the
    subject's age is unknown, and neither an adult's nor a child's reading is taken. The
    message names the table and the column, never a value; `rows` (None: unknown) and
    `deleted` are counts only.
    """

    def __init__(
        self,
        role: str,
        table: str,
        column: str,
        rows: int | None = None,
        deleted: int = 0,
        *,
        birth: bool = False,
    ) -> None:
        self.role, self.table, self.column, self.rows = role, table, column, rows
        self.birth = birth
        which = "an expired row" if rows is None else f"{rows} expired row(s)"
        before = (
            "nothing was deleted"
            if deleted == 0
            else f"{deleted} rows were deleted before (batches already committed)"
        )
        if birth:
            head = (
                f"birth date column {column!r} of the {role} table {table} holds, in "
                f"{rows} row(s) without consent that the children's rule could reach, a "
                "value that names no day (PostgreSQL's -infinity or infinity; a MariaDB zero "
                "date, or a date with a zero month or day): the subject's age is unknown, so "
                f"the purge stopped without reading it as an adult's or a child's; {before}. "
                "Set each such birth date to its real day, or to NULL (an unknown age, kept "
                "and counted as unknownAge)"
            )
        else:
            head = (
                f"timestamp column {column!r} of the {role} table {table} holds, in {which}, "
                "a value that names no instant (PostgreSQL's -infinity; a MariaDB zero date, "
                "or a date with a zero month or day): nothing says when such a row's "
                f"retention ends, so the purge stopped without deleting it; {before}. Set "
                "each such trigger to NULL (not happened yet; PostgreSQL's infinity: never) "
                "or to its real date"
            )
        super().__init__(
            "ColumnRefused",
            f"{head}; on MariaDB add NO_ZERO_DATE,NO_ZERO_IN_DATE to the writers' sql_mode. "
            "The next scheduled run retries.",
        )

    def after(self, deleted: int) -> NoInstant:
        """The same refusal, saying that `deleted` rows were deleted earlier in the run."""
        return NoInstant(
            self.role, self.table, self.column, self.rows, deleted, birth=self.birth
        )


def instant_or_refused(value: object, role: str, table: str, column: str) -> None:
    """Refuse (NoInstant) a trigger value read back that is neither NULL nor a date."""
    if value is not None and not isinstance(value, datetime | date):
        raise NoInstant(role, table, column)


def unkeyed(role: str, table: str, keys: Sequence[str], rows: int) -> PurgeError:
    """ColumnRefused: `rows` rows a run would take (expired, past a children's grace period,
    archived past the statute) have NULL in a key column. The purge names every row it
    deletes, copies and verifies by `keyColumns`, and NULL names none: MySQL's DELETE by key
    (`id = NULL`) misses the row, the keyset cursor (`id > NULL`) passes the rows of its
    instant, a copy is found by key nowhere, and the archive's unique key lets a re-run copy
    such a row again. The message names the table and columns, never a value."""
    return PurgeError(
        "ColumnRefused",
        f"{rows} row(s) of the {role} table {table} that the purge would take have NULL in a "
        f"key column ({', '.join(keys)}): the purge deletes, copies and verifies each row by "
        "its keyColumns, and NULL names no row, so none of them was deleted or copied and "
        "the run stopped. Give those rows key values, or point keyColumns at a PRIMARY KEY; "
        "the next scheduled run retries.",
    )


class LockTimeout(PurgeError):
    """A statement waited past the lock timeout for a row lock someone else holds.

    Not a failure of the run: the engine narrows the batch down to the locked rows and leaves
    them for the next run.
    """

    def __init__(self, message: str) -> None:
        super().__init__("Timeout", message)


def grant_statement(engine: str, privilege: str, table: str, database: str) -> str:
    """The GRANT an administrator runs to give the purge login `privilege` on `table`."""
    if engine == "postgresql":
        return f"GRANT {privilege} ON {table} TO <login>;"
    qualified = table if "." in table else f"{database}.{table}"
    return f"GRANT {privilege} ON {qualified} TO '<login>'@'%';"


class DuplicateKey(PurgeError):
    """An INSERT met a row already present under a unique key (MySQL 1062, SQLSTATE 23505)."""

    def __init__(self, message: str) -> None:
        super().__init__("DatabaseError", message)


class PrivilegeMissing(PurgeError):
    """PermissionDenied, already narrowed down to one privilege on one table."""


def missing_privilege(
    engine: str, role: str, privilege: str, table: str, database: str
) -> PurgeError:
    """The PermissionDenied error naming the privilege, the table and the GRANT that fixes it."""
    return PrivilegeMissing(
        "PermissionDenied",
        f"the {role} login lacks the {privilege} privilege on table {table} (database "
        f"{database}): nothing more was changed; run "
        f"{grant_statement(engine, privilege, table, database)} with <login> the username of "
        "the credentials Secret.",
    )

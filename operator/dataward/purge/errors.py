"""Errors of the purge job, each with a category and a message safe to publish.

Driver exceptions are never shown: their text can carry a DSN, a user name or row values.
Each driver maps its exceptions to one of these, keeping only error codes.
"""

from __future__ import annotations

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

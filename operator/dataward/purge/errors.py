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
    "ConnectionFailed",
    "AuthenticationFailed",
    "PermissionDenied",
    "Timeout",
    "DatabaseError",
    "Configuration",
    "StoreUnavailable",
    "Internal",
]


class PurgeError(Exception):
    """A purge that cannot go on; `message` says what happened and what to change."""

    def __init__(self, category: ErrorCategory, message: str) -> None:
        super().__init__(f"{category}: {message}")
        self.category: ErrorCategory = category
        self.message = message

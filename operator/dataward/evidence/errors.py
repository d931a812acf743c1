"""The one error the evidence log raises."""

from __future__ import annotations


class EvidenceError(Exception):
    """An evidence record could not be built, stored or read; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

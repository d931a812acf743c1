"""Errors raised while parsing API objects into typed values."""

from __future__ import annotations


class ModelError(ValueError):
    """An API object that cannot be turned into a typed value; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message

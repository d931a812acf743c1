"""Small readers for API dicts that name the offending field when a value is missing or wrong."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from dataward.model.errors import ModelError


def mapping(
    obj: Mapping[str, Any], key: str, path: str, *, required: bool = True
) -> Mapping[str, Any]:
    """Read a nested object; an absent optional one reads as empty."""
    value = obj.get(key)
    if value is None:
        if required:
            raise ModelError(f"{path}.{key}", "is required")
        return {}
    if not isinstance(value, Mapping):
        raise ModelError(f"{path}.{key}", "must be an object")
    return value


def sequence(
    obj: Mapping[str, Any], key: str, path: str, *, required: bool = False
) -> Sequence[Any]:
    """Read a list; an absent optional one reads as empty."""
    value = obj.get(key)
    if value is None:
        if required:
            raise ModelError(f"{path}.{key}", "is required")
        return ()
    if not isinstance(value, list | tuple):
        raise ModelError(f"{path}.{key}", "must be a list")
    return value


def text(obj: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    """Read a string field, or its default when absent."""
    value = obj.get(key, default)
    if value is None:
        raise ModelError(f"{path}.{key}", "is required")
    if not isinstance(value, str):
        raise ModelError(f"{path}.{key}", "must be a string")
    return value


def optional_text(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """Read a string field that may be absent."""
    if obj.get(key) is None:
        return None
    return text(obj, key, path)


def integer(obj: Mapping[str, Any], key: str, path: str, default: int | None = None) -> int:
    """Read an integer field (booleans are not integers here)."""
    value = obj.get(key, default)
    if value is None:
        raise ModelError(f"{path}.{key}", "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelError(f"{path}.{key}", "must be an integer")
    return value


def boolean(obj: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    """Read a boolean field, or its default when absent."""
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise ModelError(f"{path}.{key}", "must be true or false")
    return value


def closest_name(name: str, known: Sequence[str]) -> str | None:
    """The known name `name` most likely meant (a case slip or a small typo), or None."""
    by_case = [k for k in known if k.lower() == name.lower()]
    if by_case:
        return by_case[0]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return close[0] if close else None

"""Decide, without I/O, whether an observed object already matches what we would apply.

Server-side apply of an unchanged body is still a request in the audit log, so the operator
compares first and applies only on a difference. The API server adds defaults and fields of
other managers, so "matches" means: every field we set is present with the same value, and
every list we set has exactly our items (an item added out of band is drift).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Metadata the server owns or that other tools may add; we never compare it.
_IGNORED_METADATA = frozenset(
    {
        "resourceVersion",
        "uid",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "finalizers",
    }
)


def matches(desired: Any, observed: Any) -> bool:
    """True when `observed` carries every value of `desired` (lists item for item)."""
    if isinstance(desired, Mapping):
        if not isinstance(observed, Mapping):
            return False
        return all(
            key in observed and matches(value, observed[key]) for key, value in desired.items()
        )
    if isinstance(desired, Sequence) and not isinstance(desired, str | bytes):
        if not isinstance(observed, Sequence) or isinstance(observed, str | bytes):
            return False
        return len(desired) == len(observed) and all(
            matches(d, o) for d, o in zip(desired, observed, strict=True)
        )
    return bool(desired == observed)


def needs_apply(desired: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    """True when the child is absent or differs from what we would apply."""
    if observed is None:
        return True
    metadata = {k: v for k, v in desired.get("metadata", {}).items() if k not in _IGNORED_METADATA}
    body = {k: v for k, v in desired.items() if k not in ("metadata", "apiVersion", "kind")}
    return not (matches(metadata, observed.get("metadata", {})) and matches(body, observed))

"""Decide, without I/O, whether an observed object already matches what we would apply.

Server-side apply of an unchanged body is still a request in the audit log, so the operator
compares first and applies only on a difference. The API server adds defaults and fields of
other managers, so "matches" means: every field we set is present with the same value, and
every list we set has exactly our items (an item added out of band is drift).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

# The keys a rendered value carries: a dict names its keys' shapes, a list its items' shapes
# by position (the last one for every further item), None a value compared whole.
Shape = Mapping[str, Any] | Sequence[Any] | None

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
    if desired == observed:
        # Equal values match (the rule below, value by value): compared by C code, so a
        # child that is as rendered costs no walk (every child of every store is compared
        # at each pass, issue 11).
        return True
    if type(desired) is dict or isinstance(desired, Mapping):
        if not (type(observed) is dict or isinstance(observed, Mapping)):
            return False
        for key, value in desired.items():
            if key not in observed or not matches(value, observed[key]):
                return False
        return True
    if type(desired) is list or (
        isinstance(desired, Sequence) and not isinstance(desired, str | bytes)
    ):
        if type(observed) is not list and (
            not isinstance(observed, Sequence) or isinstance(observed, str | bytes)
        ):
            return False
        if len(desired) != len(observed):
            return False
        for d, o in zip(desired, observed, strict=True):
            if not matches(d, o):
                return False
        return True
    return False  # scalars: only equal ones match (above)


def needs_apply(desired: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    """True when the child is absent or differs from what we would apply."""
    if observed is None:
        return True
    metadata = {k: v for k, v in desired.get("metadata", {}).items() if k not in _IGNORED_METADATA}
    body = {k: v for k, v in desired.items() if k not in ("metadata", "apiVersion", "kind")}
    return not (matches(metadata, observed.get("metadata", {})) and matches(body, observed))


def replacement(desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The body of an update (PUT) that puts `desired` in place of `live`.

    Server-side apply cannot remove an item another field manager added to a keyed list
    (a CronJob's containers, env, volumes, volumeMounts; ownerReferences): after such an
    apply the child still differs. An update replaces the whole object: every top-level
    field the render sets (spec, rules, subjects, ...) as rendered, the render's labels and
    annotations over the live ones (other tools' keys are not drift, so they stay), the
    render's ownerReferences, and the live object's other metadata (resourceVersion, the
    update's precondition; uid; managedFields left out, so the server keeps and updates
    them) and fields the render does not set.
    """
    meta = {k: v for k, v in live.get("metadata", {}).items() if k != "managedFields"}
    rendered = desired.get("metadata", {})
    for key in ("labels", "annotations"):
        if key in rendered:
            meta[key] = {**(meta.get(key) or {}), **rendered[key]}
    if "ownerReferences" in rendered:
        meta["ownerReferences"] = rendered["ownerReferences"]
    body = {k: v for k, v in live.items() if k not in ("metadata", "status")}
    body.update({k: v for k, v in desired.items() if k != "metadata"})
    return {**body, "metadata": meta}


def projected(value: Any, shape: Shape) -> Any:
    """`value` with only what `shape` names: the keys a render sets, item by item.

    Applied to an observed object it drops what `matches` would ignore there (the server's
    defaults, other managers' fields), so that `digest(projected(observed, shape)) ==
    digest(desired)` exactly when `matches(desired, observed)`, for a desired value carrying
    every key of `shape` (the render's tests hold the shape to that). A list keeps every item
    (an added one is drift); a value of another type than the shape expects is kept whole.
    """
    if shape is None:
        return value
    if type(shape) is dict or isinstance(shape, Mapping):
        if not (type(value) is dict or isinstance(value, Mapping)):
            return value
        # A key the shape sets to None is kept whole: no call for it.
        return {
            k: value[k] if sub is None else projected(value[k], sub)
            for k, sub in shape.items()
            if k in value
        }
    if not isinstance(value, list) or not shape:
        return value
    last = len(shape) - 1
    return [projected(item, shape[min(i, last)]) for i, item in enumerate(value)]


def digest(value: Any) -> str:
    """A short fixed-size stand-in for a JSON value (equal values, equal digests). Held and
    compared in memory only (the cache's CronJob templates and condition messages), never
    written: its text may change between versions."""
    return "sha256:" + hashlib.sha256(canonical_text(value)).hexdigest()[:32]


# orjson writes dataclasses and datetimes by its own rules: they go to `str`, as `json.dumps`'
# `default` sends them.
_CANONICAL = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
)


def canonical_text(value: Any) -> bytes:
    """`value` as compact JSON text with sorted keys, anything else as its `str`: equal values,
    equal texts; true, 1 and 1.0 apart. By orjson (a restart's first pass digests every
    store's CronJob template and status: `json.dumps` was about a tenth of its CPU, issue
    11); what orjson refuses (an integer past 64 bits, a key that is not a string) by
    `json.dumps`, as before."""
    try:
        return orjson.dumps(value, default=str, option=_CANONICAL)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()

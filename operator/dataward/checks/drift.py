"""Decide, without I/O, whether an observed object already matches what we would apply.

Server-side apply of an unchanged body is still a request in the audit log, so the operator
compares first and applies only on a difference. Where the API server adds defaults and other
managers may add fields (metadata, a CronJob), "matches" means: every field we set is present
with the same value, and every list we set has exactly our items (an item added out of band
is drift). Where it adds none (`EXACT_FIELDS`: a NetworkPolicy's spec, a Role's rules, a
RoleBinding's subjects and roleRef) the part is compared whole, after its documented defaults
are filled in on both sides (`same_part`): there a key the render does not set changes what
the child grants (a namespaceSelector added to a peer admits its pods from every namespace;
a matchLabels key the render dropped still narrows what the policy isolates).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
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


# The parts of a child the API server keeps as written, but for the defaults `_normalised`
# fills in: compared whole (`same_part`). Every list and struct in them is atomic for
# server-side apply (listType/structType=atomic in the API's types: NetworkPolicy's lists,
# LabelSelector, Role's rules and their lists, Subject, RoleRef), so an apply puts them back
# whole, whoever owned them. What another tool may add to a child (labels, annotations)
# and what the server defaults in a CronJob are elsewhere, compared by `matches`.
EXACT_FIELDS: dict[str, tuple[str, ...]] = {
    "NetworkPolicy": ("spec",),
    "Role": ("rules",),
    "RoleBinding": ("roleRef", "subjects"),
}
RBAC_GROUP = "rbac.authorization.k8s.io"


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
    """True when the child is absent or differs from what we would apply: its
    `EXACT_FIELDS` as a whole (`same_part`), the rest by `matches`."""
    if observed is None:
        return True
    kind = desired.get("kind")
    exact = EXACT_FIELDS.get(kind, ()) if isinstance(kind, str) else ()
    # `matches` of the metadata but `_IGNORED_METADATA`, and of the body but the exact parts,
    # key by key: no copies of the two made to compare them (7 children a store, issue 11).
    observed_meta = observed.get("metadata", {})
    if not (type(observed_meta) is dict or isinstance(observed_meta, Mapping)):
        return True
    for key, value in desired.get("metadata", {}).items():
        if key not in _IGNORED_METADATA and (
            key not in observed_meta or not matches(value, observed_meta[key])
        ):
            return True
    for key, value in desired.items():
        if key in ("metadata", "apiVersion", "kind") or key in exact:
            continue
        if key not in observed or not matches(value, observed[key]):
            return True
    return any(
        not same_part(str(kind), key, desired[key], observed.get(key))
        for key in exact
        if key in desired
    )


def same_part(kind: str, key: str, desired: Any, observed: Any) -> bool:
    """Whether `observed[key]` of a `kind` is `desired[key]` exactly, but for what the API
    server fills in or leaves out (`_normalised`): an added key or item is a difference."""
    if desired == observed:
        return True  # compared by C code: a child as rendered costs no walk (issue 11)
    return bool(_normalised(kind, key, desired) == _normalised(kind, key, observed))


def _normalised(kind: str, key: str, value: Any) -> Any:
    """`value` as the API server would return it: plain dicts and lists; a null and an empty
    list left out (omitempty: the server never returns them, and to it they are unset), and
    the defaults of Kubernetes' API filled in (networking/v1 and rbac/v1 defaulting):
    a NetworkPolicy port's protocol TCP; its policyTypes [Ingress] (and Egress with egress
    rules) when none; its podSelector {} when none; a User's or Group's subject apiGroup
    rbac.authorization.k8s.io, a ServiceAccount's none; a roleRef's apiGroup
    rbac.authorization.k8s.io. An empty selector ({}) is kept: it is not an absent one."""
    plain = _plain(value)
    if kind == "NetworkPolicy" and key == "spec" and isinstance(plain, dict):
        plain.setdefault("podSelector", {})
        for direction in ("ingress", "egress"):
            for rule in plain.get(direction) or ():
                for port in (rule.get("ports") or ()) if isinstance(rule, dict) else ():
                    if isinstance(port, dict):
                        port.setdefault("protocol", "TCP")
        if "policyTypes" not in plain:
            plain["policyTypes"] = ["Ingress", *(["Egress"] if plain.get("egress") else [])]
    elif key == "subjects" and isinstance(plain, list):
        for subject in plain:
            if isinstance(subject, dict):
                for field in ("apiGroup", "namespace"):
                    if subject.get(field) == "":
                        del subject[field]
                if subject.get("kind") in ("User", "Group"):
                    subject.setdefault("apiGroup", RBAC_GROUP)
    elif key == "roleRef" and isinstance(plain, dict) and not plain.get("apiGroup"):
        plain["apiGroup"] = RBAC_GROUP
    return plain


def _plain(value: Any) -> Any:
    """A copy of `value` with mappings as dicts and sequences as lists, keys whose value is
    null or an empty list left out (an empty list itself as None), and an empty matchLabels
    (a map: omitempty too; an empty selector itself is kept)."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            item = _plain(v)
            if item is not None and not (k == "matchLabels" and item == {}):
                out[k] = item
        return out
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value] or None
    return value


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
    Parts of the result may be `value`'s own (never changed here): read it, do not change it.
    """
    return projection(shape)(value)


def projection(shape: Shape) -> Callable[[Any], Any]:
    """`projected(·, shape)` as a function made once from `shape`: the walk of the shape (its
    types, which keys it keeps whole) done at once, not for every value. A CronJob's pod
    template projected so was the largest part of caching it (a restart lists every store's:
    issue 11). A dict whose keys are all the shape's, each kept whole, is its own projection
    (the projection is read, never changed). `shape`: None, a mapping, a list or a tuple."""
    if shape is None:
        return _whole
    if isinstance(shape, Mapping):
        parts = tuple((k, None if sub is None else projection(sub)) for k, sub in shape.items())
        if all(part is None for _, part in parts):
            return _keys_projection(tuple(shape))
        return _dict_projection(parts)
    if not isinstance(shape, list | tuple):
        raise TypeError(f"a shape is None, a mapping, a list or a tuple, not {type(shape)}")
    if not shape:
        return _whole
    return _list_projection(tuple(projection(sub) for sub in shape))


def _whole(value: Any) -> Any:
    return value


def _keys_projection(keys: tuple[str, ...]) -> Callable[[Any], Any]:
    """Of a mapping, `keys` (those it has), each whole."""
    names = frozenset(keys)

    def project(value: Any) -> Any:
        if type(value) is dict:
            if names.issuperset(value):
                return value
        elif not isinstance(value, Mapping):
            return value
        return {k: value[k] for k in keys if k in value}

    return project


def _dict_projection(
    parts: tuple[tuple[str, Callable[[Any], Any] | None], ...],
) -> Callable[[Any], Any]:
    """Of a mapping, the keys of `parts` (those it has), each projected by its function."""

    def project(value: Any) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):
            return value
        return {k: value[k] if part is None else part(value[k]) for k, part in parts if k in value}

    return project


def _list_projection(items: tuple[Callable[[Any], Any], ...]) -> Callable[[Any], Any]:
    """Of a list, each item projected by the function at its position (the last one for every
    further item)."""
    if len(items) == 1:
        (only,) = items

        def project_all(value: Any) -> Any:
            if not isinstance(value, list):
                return value
            return [only(item) for item in value]

        return project_all
    last = len(items) - 1

    def project(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [items[min(i, last)](item) for i, item in enumerate(value)]

    return project


def digest(value: Any) -> str:
    """A short fixed-size stand-in for a JSON value (equal values, equal digests). Held and
    compared in memory only (the cache's CronJob templates and condition messages), never
    written: its text may change between versions."""
    return _text_digest(canonical_text(value))


def _text_digest(text: bytes) -> str:
    return "sha256:" + hashlib.sha256(text).hexdigest()[:32]


def job_and_pod_digests(job: Any, pod: Any) -> tuple[str, str]:
    """`digest({"job": job, "pod": pod})` and `digest(pod)`, the pod's text made once (a
    pod template is most of the text, and a restart's first pass digests every store's
    twice: issue 11). The object's text is its parts' texts in the order of their keys, as
    orjson writes it; what orjson refuses is digested whole, as `digest` does."""
    try:
        job_text = orjson.dumps(job, default=str, option=_CANONICAL)
        pod_text = orjson.dumps(pod, default=str, option=_CANONICAL)
    except TypeError:
        return digest({"job": job, "pod": pod}), digest(pod)
    both = b'{"job":' + job_text + b',"pod":' + pod_text + b"}"
    return _text_digest(both), _text_digest(pod_text)


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

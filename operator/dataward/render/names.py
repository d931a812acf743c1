"""Deterministic names for a store's children, within the API's length limits.

A child is called `dataward-<store>-<suffix>`. When that is too long, the store's name is
cut and a hash of the full name is put before the suffix, so the name stays within the limit,
stays the same on every run, still ends with the suffix a person looks for, and two stores
whose names share a long prefix still get different children.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import astuple, dataclass
from functools import lru_cache

from dataward.model.k8s_names import MAX_LABEL_VALUE_LENGTH, is_label_value

PREFIX = "dataward"
MAX_NAME_LENGTH = 63
# The CronJob controller appends an 11-character suffix to Job names, so the API rejects
# CronJob names longer than 52 characters.
MAX_CRONJOB_NAME_LENGTH = 52
_HASH_LENGTH = 8


def stable_hash(text: str, length: int = _HASH_LENGTH) -> str:
    """The first `length` hex digits of the SHA-256 of `text`: the same on every run."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def child_name(store_name: str, suffix: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """`dataward-<store>-<suffix>`, shortened with a hash of the full name past `max_length`."""
    full = f"{PREFIX}-{store_name}-{suffix}"
    if len(full) <= max_length:
        return full
    tail = f"-{stable_hash(full)}-{suffix}"
    room = max_length - len(PREFIX) - 1 - len(tail)
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room for the store's name")
    # A name must not have "-" or "." next to the hash's separator.
    head = store_name[:room].rstrip("-.") or "x"
    return f"{PREFIX}-{head}{tail}"


@lru_cache(maxsize=1024)
def label_value(text: str) -> str:
    """`text` as a valid label value: unchanged when it is one, else cut and hashed.
    Remembered for the last texts asked about, as `names_for` (a reconcile asks about its
    store's name about 20 times; a str in, a str out)."""
    if is_label_value(text):
        return text
    head = re.sub(r"[^-A-Za-z0-9_.]", "-", text)
    head = head[: MAX_LABEL_VALUE_LENGTH - _HASH_LENGTH - 1].strip("-_.")
    digest = stable_hash(text)
    return f"{head}-{digest}" if head else digest


@dataclass(frozen=True)
class ChildNames:
    """The names of every child of one store."""

    key_ring: str
    network_policy: str
    readers: str
    purge: str
    purge_cronjob: str


@lru_cache(maxsize=1024)
def names_for(store_name: str) -> ChildNames:
    """Every child name of the store called `store_name` (remembered for the last stores
    asked about: a reconcile asks about 20 times, ~4 us each; ChildNames is immutable)."""
    return ChildNames(
        key_ring=child_name(store_name, "keyring"),
        network_policy=child_name(store_name, "isolation"),
        readers=child_name(store_name, "readers"),
        purge=child_name(store_name, "purge"),
        purge_cronjob=child_name(store_name, "purge", MAX_CRONJOB_NAME_LENGTH),
    )


def unshortened(store_name: str) -> bool:
    """Whether the store's label value is its name and each child's name is its name between
    the prefix and a suffix, none cut and hashed: then no other store's label or child name
    can equal them (a cut and hashed one can equal another store's plain one)."""
    plain = f"{PREFIX}-{store_name}-"
    return label_value(store_name) == store_name and all(
        name.startswith(plain) and "-" not in name[len(plain):]
        for name in astuple(names_for(store_name))
    )

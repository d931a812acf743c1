"""The key ring: AES-256-GCM key versions, kept append-only in one Secret.

Secret data format (API.md): `keyring.json` =
`{"primary": <id>, "keys": [{"id": <int>, "algorithm": "AES-256-GCM",
"created": "<RFC3339>", "material": "<base64>"}]}`.

Material never appears in a repr, a log line or an error message: errors name the field
that is wrong, never its value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.model.durations import Duration

ALGORITHM = "AES-256-GCM"
KEY_BYTES = 32
SECRET_KEY = "keyring.json"  # noqa: S105 - the name of a data key, not a secret
# Separates key fingerprints from any other SHA-256 of the same bytes.
_FINGERPRINT_DOMAIN = b"dataward.io/key-fingerprint/v1\x00"
# Even with a zero rotation period, never rotate more often than this.
MIN_ROTATION_INTERVAL = timedelta(hours=1)


class KeyRingError(ValueError):
    """A key ring that cannot be read; the message names the problem, never material."""


@dataclass(frozen=True)
class KeyVersion:
    """One version of the store's key."""

    id: int
    algorithm: str
    created: datetime
    material: bytes = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"KeyVersion(id={self.id}, algorithm={self.algorithm!r}, "
            f"created={format_time(self.created)!r}, fingerprint={fingerprint(self)!r})"
        )


@dataclass(frozen=True)
class KeyRing:
    """Every version of a store's key; `primary` is the id that encrypts."""

    primary: int
    keys: tuple[KeyVersion, ...]

    def __post_init__(self) -> None:
        ids = [key.id for key in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyRingError("key ids must be unique")
        if self.primary not in ids:
            raise KeyRingError(f"primary key {self.primary} is not in the ring")

    def __repr__(self) -> str:
        return f"KeyRing(primary={self.primary}, keys={list(self.keys)!r})"

    @property
    def primary_key(self) -> KeyVersion:
        """The version that encrypts."""
        return self.key(self.primary)

    def key(self, key_id: int) -> KeyVersion:
        """The version called `key_id`; KeyError when the ring has none."""
        for key in self.keys:
            if key.id == key_id:
                return key
        raise KeyError(key_id)

    def fingerprints(self) -> dict[int, str]:
        """Non-secret fingerprints of every version, by id."""
        return {key.id: fingerprint(key) for key in self.keys}


def format_time(instant: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the second, as Kubernetes writes times."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_key(key_id: int, now: datetime) -> KeyVersion:
    """A fresh AES-256 key from the operating system's random source."""
    # The ring stores times to the second; keep the value equal to what a re-read gives.
    created = now.astimezone(UTC).replace(microsecond=0)
    return KeyVersion(key_id, ALGORITHM, created, os.urandom(KEY_BYTES))


def generate_ring(now: datetime) -> KeyRing:
    """A new ring with one key, id 1, as primary."""
    return KeyRing(primary=1, keys=(new_key(1, now),))


def rotate(ring: KeyRing, now: datetime) -> KeyRing:
    """Add a key with the next id and make it primary; every old key stays."""
    key = new_key(max(k.id for k in ring.keys) + 1, now)
    return KeyRing(primary=key.id, keys=(*ring.keys, key))


def fingerprint(key: KeyVersion) -> str:
    """A non-secret name for a key's material: 16 hex digits of a domain-separated SHA-256."""
    return hashlib.sha256(_FINGERPRINT_DOMAIN + key.material).hexdigest()[:16]


def to_json(ring: KeyRing) -> str:
    """The ring in the `keyring.json` format."""
    document = {
        "primary": ring.primary,
        "keys": [
            {
                "id": key.id,
                "algorithm": key.algorithm,
                "created": format_time(key.created),
                "material": base64.b64encode(key.material).decode("ascii"),
            }
            for key in ring.keys
        ],
    }
    return json.dumps(document, separators=(",", ":"))


def serialise(ring: KeyRing) -> dict[str, str]:
    """The Secret's `data` (base64 values, as the API carries them) for `ring`."""
    return {SECRET_KEY: base64.b64encode(to_json(ring).encode("utf-8")).decode("ascii")}


def parse_ring(secret_data: Mapping[str, str] | None) -> KeyRing:
    """Read a ring from a Secret's `data` (base64 values); KeyRingError when malformed."""
    if not secret_data or SECRET_KEY not in secret_data:
        raise KeyRingError(f"the Secret has no {SECRET_KEY!r} key")
    try:
        text = base64.b64decode(secret_data[SECRET_KEY], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        raise KeyRingError(f"{SECRET_KEY!r} is not base64 of UTF-8 text") from None
    return parse_ring_json(text)


def parse_ring_json(text: str) -> KeyRing:
    """Read a ring from `keyring.json` text (as a mounted Secret file holds it)."""
    try:
        document = json.loads(text)
    except ValueError:
        raise KeyRingError(f"{SECRET_KEY!r} is not JSON") from None
    if not isinstance(document, dict):
        raise KeyRingError(f"{SECRET_KEY!r} must be a JSON object")
    primary = document.get("primary")
    raw_keys = document.get("keys")
    if not isinstance(primary, int) or isinstance(primary, bool):
        raise KeyRingError("'primary' must be an integer key id")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise KeyRingError("'keys' must be a non-empty list")
    keys = tuple(_parse_key(raw, index) for index, raw in enumerate(raw_keys))
    return KeyRing(primary=primary, keys=keys)


def _parse_key(raw: Any, index: int) -> KeyVersion:
    where = f"keys[{index}]"
    if not isinstance(raw, dict):
        raise KeyRingError(f"{where} must be an object")
    key_id, algorithm = raw.get("id"), raw.get("algorithm")
    if not isinstance(key_id, int) or isinstance(key_id, bool) or key_id < 1:
        raise KeyRingError(f"{where}.id must be a positive integer")
    if algorithm != ALGORITHM:
        raise KeyRingError(f"{where}.algorithm must be {ALGORITHM!r}")
    created = raw.get("created")
    try:
        instant = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        raise KeyRingError(f"{where}.created must be an RFC 3339 time") from None
    if instant.tzinfo is None:
        raise KeyRingError(f"{where}.created must carry a time zone")
    try:
        material = base64.b64decode(str(raw.get("material")), validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError(f"{where}.material is not base64") from None
    if len(material) != KEY_BYTES:
        raise KeyRingError(f"{where}.material must be {KEY_BYTES} bytes (AES-256)")
    return KeyVersion(key_id, algorithm, instant.astimezone(UTC), material)


def append_only_violations(old: KeyRing, new: KeyRing) -> list[str]:
    """Every way `new` fails to extend `old`; empty when the change is append-only.

    Ids never vanish, a kept id keeps its material, algorithm and creation time, and the
    primary only moves forward (to a higher id).
    """
    violations: list[str] = []
    new_ids = {key.id for key in new.keys}
    for key in old.keys:
        if key.id not in new_ids:
            violations.append(f"key {key.id} was removed")
            continue
        kept = new.key(key.id)
        if kept.material != key.material:
            violations.append(f"key {key.id} has different material")
        if kept.algorithm != key.algorithm:
            violations.append(f"key {key.id} has a different algorithm")
        if kept.created != key.created:
            violations.append(f"key {key.id} has a different creation time")
    if new.primary < old.primary:
        violations.append(f"primary moved back from key {old.primary} to key {new.primary}")
    old_ids = {key.id for key in old.keys}
    newest_old = max(old_ids)
    for key in new.keys:
        if key.id not in old_ids and key.id <= newest_old:
            violations.append(f"key {key.id} was added below the newest existing id")
    return violations


def is_append_only(old: KeyRing, new: KeyRing) -> bool:
    """True when `new` only adds versions to `old` and moves the primary forward."""
    return not append_only_violations(old, new)


@dataclass(frozen=True)
class RotationDecision:
    """Whether to rotate now, and when the next rotation falls due."""

    due: bool
    next_rotation: datetime
    reason: str


def rotation_decision(
    ring: KeyRing, now: datetime, max_age: Duration, last_rotation: datetime | None = None
) -> RotationDecision:
    """Rotate when the primary is older than `max_age`, but never within half the period.

    The last rotation is the latest of `last_rotation` (as status recorded it) and every
    key's creation time, so a lost status or skewed clock cannot cause a burst of rotations.
    """
    primary = ring.primary_key
    expires = max_age.add_to(primary.created)
    latest = max(key.created for key in ring.keys)
    if last_rotation is not None:
        latest = max(latest, last_rotation)
    half = max((max_age.add_to(latest) - latest) / 2, MIN_ROTATION_INTERVAL)
    earliest = latest + half
    next_rotation = max(expires, earliest)
    if now < expires:
        return RotationDecision(False, next_rotation, "primary key is younger than keyRotation")
    if now < earliest:
        return RotationDecision(
            False, next_rotation, "the last rotation was less than half a period ago"
        )
    return RotationDecision(True, next_rotation, "primary key is older than keyRotation")


def rotation_due(
    ring: KeyRing, now: datetime, max_age: Duration, last_rotation: datetime | None = None
) -> bool:
    """True when the ring should be rotated now (see `rotation_decision`)."""
    return rotation_decision(ring, now, max_age, last_rotation).due

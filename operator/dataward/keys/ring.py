"""The key ring: AES-256-GCM key versions, kept append-only in one Secret.

Secret data format (API.md): `keyring.json` =
`{"primary": <id>, "keys": [{"id": <int>, "algorithm": "AES-256-GCM",
"created": "<RFC3339>", "material": "<base64>"}]}`.

Crypto-shredding adds two optional parts (a ring without them reads as before): a key may
carry `"bucket": "YYYY-MM"` (or `"YYYY"`), the time bucket of record triggers it encrypts
(dataward.keys.buckets; never the primary); and `"shredded": [{"id": <int>, "bucket": "...",
"shredded": "<RFC3339>"}]` names the bucket keys the operator destroyed, so their ids are never
given out again and a blob of such a key is told apart from a foreign one.

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
from functools import lru_cache
from typing import Any

from dataward.keys.buckets import BucketError, granularity_of
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
    bucket: str | None = None  # the time bucket it encrypts; None: a rotating version

    def __repr__(self) -> str:
        bucket = f", bucket={self.bucket!r}" if self.bucket else ""
        return (
            f"KeyVersion(id={self.id}, algorithm={self.algorithm!r}, "
            f"created={format_time(self.created)!r}{bucket}, fingerprint={fingerprint(self)!r})"
        )


@dataclass(frozen=True)
class ShreddedKey:
    """A bucket key the operator destroyed: its id and bucket stay, its material is gone."""

    id: int
    bucket: str
    shredded: datetime


@dataclass(frozen=True)
class KeyRing:
    """Every version of a store's key; `primary` is the id that encrypts."""

    primary: int
    keys: tuple[KeyVersion, ...]
    shredded: tuple[ShreddedKey, ...] = ()

    def __post_init__(self) -> None:
        ids = [key.id for key in self.keys] + [gone.id for gone in self.shredded]
        if len(set(ids)) != len(ids):
            raise KeyRingError("key ids must be unique, shredded ones included")
        if self.primary not in ids[: len(self.keys)]:
            raise KeyRingError(f"primary key {self.primary} is not in the ring")
        if self.key(self.primary).bucket is not None:
            raise KeyRingError("a bucket key cannot be the primary")
        buckets = [key.bucket for key in self.keys if key.bucket] + [
            gone.bucket for gone in self.shredded
        ]
        if len(set(buckets)) != len(buckets):
            raise KeyRingError("each bucket has at most one key")

    def __repr__(self) -> str:
        gone = f", shredded={[g.bucket for g in self.shredded]!r}" if self.shredded else ""
        return f"KeyRing(primary={self.primary}, keys={list(self.keys)!r}{gone})"

    def bucket_key(self, bucket: str) -> KeyVersion | None:
        """The key of `bucket`, or None when the ring has none (or it was shredded)."""
        return next((key for key in self.keys if key.bucket == bucket), None)

    def shredded_key(self, key_id: int) -> ShreddedKey | None:
        """The record of a destroyed key `key_id`, or None."""
        return next((gone for gone in self.shredded if gone.id == key_id), None)

    @property
    def buckets(self) -> tuple[str, ...]:
        """The buckets that have a key."""
        return tuple(key.bucket for key in self.keys if key.bucket)

    @property
    def next_id(self) -> int:
        """The id the next key gets: above every id ever given, shredded ones included."""
        return max([key.id for key in self.keys] + [gone.id for gone in self.shredded]) + 1

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
    """RFC 3339 in UTC with a `Z`, to the second, as Kubernetes writes times (the year always
    of four digits). By %-formatting: half of strftime's CPU, and a restart's first pass
    formats every key of every store's ring (issue 11), each several times: remembered for
    the last instants formatted (`_format_utc`)."""
    return _format_utc(instant if instant.tzinfo is UTC else instant.astimezone(UTC))


@lru_cache(maxsize=1024)
def _format_utc(utc: datetime) -> str:
    """`format_time` of a UTC time. Keyed by UTC times only: two equal ones are one instant
    (equal times of another zone may be an hour apart, at a fold)."""
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second,
    )  # fmt: skip


def new_key(key_id: int, now: datetime, bucket: str | None = None) -> KeyVersion:
    """A fresh AES-256 key from the operating system's random source."""
    # The ring stores times to the second; keep the value equal to what a re-read gives.
    created = now.astimezone(UTC).replace(microsecond=0)
    return KeyVersion(key_id, ALGORITHM, created, os.urandom(KEY_BYTES), bucket)


def generate_ring(now: datetime) -> KeyRing:
    """A new ring with one key, id 1, as primary."""
    return KeyRing(primary=1, keys=(new_key(1, now),))


def _first_free(ring: KeyRing, next_id: int | None) -> int:
    """The next id: the ring's, or `next_id` (what status records as given out) when higher.
    A ring whose `shredded` lost an entry would otherwise give a destroyed key's id again."""
    return ring.next_id if next_id is None else max(ring.next_id, next_id)


def rotate(ring: KeyRing, now: datetime, next_id: int | None = None) -> KeyRing:
    """Add a key with the next id (see `_first_free`) and make it primary; every old key
    stays."""
    key = new_key(_first_free(ring, next_id), now)
    return KeyRing(primary=key.id, keys=(*ring.keys, key), shredded=ring.shredded)


def add_bucket_keys(
    ring: KeyRing, buckets: tuple[str, ...], now: datetime, next_id: int | None = None
) -> KeyRing:
    """Add a fresh key for each of `buckets` (in order, with the next ids: `_first_free`);
    the primary stays."""
    keys = list(ring.keys)
    next_id = _first_free(ring, next_id)
    for offset, bucket in enumerate(buckets):
        keys.append(new_key(next_id + offset, now, bucket))
    return KeyRing(ring.primary, tuple(keys), ring.shredded)


def shred_buckets(
    ring: KeyRing,
    buckets: tuple[str, ...],
    now: datetime,
    decided: Mapping[str, datetime] | None = None,
) -> KeyRing:
    """The ring without the keys of `buckets`: their material goes, their ids stay recorded,
    each with the time its destruction was decided (`decided`, by bucket: what status
    recorded), else `now`."""
    wanted = set(buckets)
    at = decided or {}
    gone = tuple(
        ShreddedKey(key.id, key.bucket, at.get(key.bucket, now).astimezone(UTC).replace(
            microsecond=0))
        for key in ring.keys
        if key.bucket is not None and key.bucket in wanted
    )
    kept = tuple(key for key in ring.keys if key.bucket is None or key.bucket not in wanted)
    return KeyRing(ring.primary, kept, (*ring.shredded, *gone))


def fingerprint(key: KeyVersion) -> str:
    """A non-secret name for a key's material: 16 hex digits of a domain-separated SHA-256."""
    return hashlib.sha256(_FINGERPRINT_DOMAIN + key.material).hexdigest()[:16]


def to_json(ring: KeyRing) -> str:
    """The ring in the `keyring.json` format."""
    document: dict[str, Any] = {
        "primary": ring.primary,
        "keys": [
            {
                "id": key.id,
                "algorithm": key.algorithm,
                "created": format_time(key.created),
                "material": base64.b64encode(key.material).decode("ascii"),
                **({"bucket": key.bucket} if key.bucket else {}),
            }
            for key in ring.keys
        ],
    }
    if ring.shredded:
        document["shredded"] = [
            {"id": gone.id, "bucket": gone.bucket, "shredded": format_time(gone.shredded)}
            for gone in ring.shredded
        ]
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
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python recurses
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
    raw_shredded = document.get("shredded", [])
    if not isinstance(raw_shredded, list):
        raise KeyRingError("'shredded' must be a list")
    shredded = tuple(_parse_shredded(raw, index) for index, raw in enumerate(raw_shredded))
    return KeyRing(primary=primary, keys=keys, shredded=shredded)


def _parse_bucket(raw: Mapping[str, Any], where: str, required: bool) -> str | None:
    bucket = raw.get("bucket")
    if bucket is None and not required:
        return None
    try:
        if not isinstance(bucket, str):
            raise BucketError("not a string")
        granularity_of(bucket)
    except BucketError:
        raise KeyRingError(f"{where}.bucket must be YYYY-MM or YYYY") from None
    return bucket


def _parse_time(raw: Mapping[str, Any], name: str, where: str) -> datetime:
    try:
        instant = datetime.fromisoformat(str(raw.get(name)).replace("Z", "+00:00"))
    except ValueError:
        raise KeyRingError(f"{where}.{name} must be an RFC 3339 time") from None
    if instant.tzinfo is None:
        raise KeyRingError(f"{where}.{name} must carry a time zone")
    try:
        return instant.astimezone(UTC)
    except OverflowError:  # year 1 ahead of UTC, or 9999 behind it: no UTC instant
        raise KeyRingError(f"{where}.{name} must be an RFC 3339 time") from None


def _parse_shredded(raw: Any, index: int) -> ShreddedKey:
    where = f"shredded[{index}]"
    if not isinstance(raw, dict):
        raise KeyRingError(f"{where} must be an object")
    key_id = raw.get("id")
    if not isinstance(key_id, int) or isinstance(key_id, bool) or key_id < 1:
        raise KeyRingError(f"{where}.id must be a positive integer")
    bucket = _parse_bucket(raw, where, required=True)
    assert bucket is not None
    return ShreddedKey(key_id, bucket, _parse_time(raw, "shredded", where))


def _parse_key(raw: Any, index: int) -> KeyVersion:
    where = f"keys[{index}]"
    if not isinstance(raw, dict):
        raise KeyRingError(f"{where} must be an object")
    key_id, algorithm = raw.get("id"), raw.get("algorithm")
    if not isinstance(key_id, int) or isinstance(key_id, bool) or key_id < 1:
        raise KeyRingError(f"{where}.id must be a positive integer")
    if algorithm != ALGORITHM:
        raise KeyRingError(f"{where}.algorithm must be {ALGORITHM!r}")
    instant = _parse_time(raw, "created", where)
    bucket = _parse_bucket(raw, where, required=False)
    try:
        material = base64.b64decode(str(raw.get("material")), validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError(f"{where}.material is not base64") from None
    if len(material) != KEY_BYTES:
        raise KeyRingError(f"{where}.material must be {KEY_BYTES} bytes (AES-256)")
    return KeyVersion(key_id, algorithm, instant, material, bucket)


def append_only_violations(
    old: KeyRing, new: KeyRing, shredding: tuple[str, ...] = ()
) -> list[str]:
    """Every way `new` fails to extend `old`; empty when the change is append-only.

    Ids never vanish, a kept id keeps its material, algorithm, creation time and bucket, and
    the primary only moves forward (to a higher id). The one exception is `shredding`: the
    keys of those buckets go, each recorded in `new.shredded`. A shredded key stays recorded.
    """
    violations: list[str] = []
    new_ids = {key.id for key in new.keys}
    for key in old.keys:
        if key.id not in new_ids:
            gone = new.shredded_key(key.id)
            if not (key.bucket in shredding and gone is not None and gone.bucket == key.bucket):
                violations.append(f"key {key.id} was removed")
            continue
        kept = new.key(key.id)
        if kept.material != key.material:
            violations.append(f"key {key.id} has different material")
        if kept.algorithm != key.algorithm:
            violations.append(f"key {key.id} has a different algorithm")
        if kept.created != key.created:
            violations.append(f"key {key.id} has a different creation time")
        if kept.bucket != key.bucket:
            violations.append(f"key {key.id} has a different bucket")
    for gone in old.shredded:
        if new.shredded_key(gone.id) != gone:
            violations.append(f"the record of shredded key {gone.id} was changed")
    if new.primary < old.primary:
        violations.append(f"primary moved back from key {old.primary} to key {new.primary}")
    old_ids = {key.id for key in old.keys}
    for key in new.keys:
        if key.id not in old_ids and key.id < old.next_id:
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
    rotating key's creation time, so a lost status or skewed clock cannot cause a burst of
    rotations. A bucket key is no rotation: month keys are made ahead at every turn of a
    month, and counted as rotations they would keep a period longer than two months from
    ever rotating.
    """
    primary = ring.primary_key
    expires = max_age.add_to(primary.created)
    latest = max(key.created for key in ring.keys if key.bucket is None)
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

"""Encrypt and decrypt application data with a store's key ring.

An application that the store lists in `access.readers` may read the key ring Secret
(`dataward-<store>-keyring`). Mount it, or read it through the API, and:

    from dataward.keys import Cipher

    cipher = Cipher.from_mounted_file("/etc/dataward/keyring/keyring.json")
    blob = cipher.encrypt(b"jane@example.com", associated_data=b"customers.email:42")
    assert cipher.decrypt(blob, associated_data=b"customers.email:42") == b"jane@example.com"

`encrypt` uses the primary key; `decrypt` uses whichever version the blob names, so
data written before a rotation stays readable. Reload the ring after a rotation (the
Secret's `primaryKeyId` in the store's status says when) to encrypt with the new key.

Crypto-shredding (a category with `keyBuckets`): pass the record's trigger time and the
record is encrypted with the key of the trigger's bucket (its UTC month or year):

    blob = cipher.encrypt(b"jane@example.com", associated_data=b"orders.email:42",
                          trigger=order.placed_at)

Once every record of that bucket has expired, the operator destroys the bucket's key: the
blob, and every copy of it in any backup, can no longer be decrypted (`KeyShreddedError`).
Reload the ring at least once a bucket: the operator adds the next bucket's key ahead.

Blob format (all integers big-endian):

    | version (1 byte) = 1 | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag |

A bucket key's id names its bucket through the ring (`keys[].bucket`, and `shredded[]` once
it is destroyed), so the format is the same for both. The version byte, key id and nonce are
authenticated along with `associated_data`, so a blob
cannot be moved to another key or another context without failing to decrypt. Bind
`associated_data` to where the value lives (table, column, row key) to stop ciphertexts being
swapped between rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dataward.keys.buckets import GRANULARITIES, bucket_of
from dataward.keys.ring import (
    KeyRing,
    KeyRingError,
    KeyVersion,
    format_time,
    parse_ring,
    parse_ring_json,
)

__all__ = [
    "BLOB_VERSION",
    "Cipher",
    "DecryptionError",
    "KeyRingError",
    "KeyShreddedError",
    "NoBucketKeyError",
]

BLOB_VERSION = 1
_NONCE_BYTES = 12
_HEADER_BYTES = 1 + 4 + _NONCE_BYTES
_TAG_BYTES = 16


class DecryptionError(ValueError):
    """A blob that this ring cannot decrypt: unknown format or key, or it was altered."""


class KeyShreddedError(DecryptionError):
    """The blob's bucket key was destroyed (crypto-shredded): the data is gone for good."""


class NoBucketKeyError(KeyRingError):
    """No key for a trigger's bucket: reload the ring, or the bucket was already shredded."""


class Cipher:
    """AES-256-GCM with a store's key ring: the primary encrypts, any version decrypts."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._aeads = {key.id: AESGCM(key.material) for key in ring.keys}

    def __repr__(self) -> str:
        return f"Cipher(primary={self._ring.primary}, versions={sorted(self._aeads)})"

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str]) -> Cipher:
        """From the Secret's `data` as the API returns it (base64 values)."""
        return cls(parse_ring(data))

    @classmethod
    def from_mounted_file(cls, path: str | os.PathLike[str]) -> Cipher:
        """From `keyring.json` in a mounted Secret volume (plain JSON)."""
        return cls(parse_ring_json(Path(path).read_text(encoding="utf-8")))

    @property
    def primary_key_id(self) -> int:
        """The key version new blobs are encrypted with."""
        return self._ring.primary

    def bucket_key(self, trigger: datetime) -> KeyVersion:
        """The key that encrypts a record whose trigger is `trigger` (NoBucketKeyError: none).

        A ring holds keys of one granularity per bucket; a month key is preferred where a
        category moved between month and year buckets.
        """
        buckets = [bucket_of(trigger, granularity) for granularity in GRANULARITIES]
        for bucket in buckets:
            key = self._ring.bucket_key(bucket)
            if key is not None:
                return key
        for bucket in buckets:
            gone = next((g for g in self._ring.shredded if g.bucket == bucket), None)
            if gone is not None:
                raise NoBucketKeyError(
                    f"the key of bucket {bucket} was shredded {format_time(gone.shredded)}: "
                    "its records had all expired; do not write a record with this trigger"
                )
        raise NoBucketKeyError(
            f"the ring has no key for bucket {buckets[0]}: reload the ring (the operator "
            "adds the next bucket's key ahead), or check that the store's category sets "
            "keyBuckets"
        )

    def encrypt(
        self, plaintext: bytes, associated_data: bytes = b"", *, trigger: datetime | None = None
    ) -> bytes:
        """Encrypt with a fresh random nonce: with the key of `trigger`'s bucket when given,
        else with the primary key."""
        key_id = self._ring.primary if trigger is None else self.bucket_key(trigger).id
        header = bytes([BLOB_VERSION]) + key_id.to_bytes(4, "big") + os.urandom(_NONCE_BYTES)
        nonce = header[5:]
        return header + self._aeads[key_id].encrypt(nonce, plaintext, header + associated_data)

    def decrypt(self, blob: bytes, associated_data: bytes = b"") -> bytes:
        """Decrypt a blob made by `encrypt` with any version of this ring."""
        if len(blob) < _HEADER_BYTES + _TAG_BYTES:
            raise DecryptionError("the blob is too short to be a Dataward ciphertext")
        if blob[0] != BLOB_VERSION:
            raise DecryptionError(f"unknown blob format version {blob[0]}")
        key_id = int.from_bytes(blob[1:5], "big")
        aead = self._aeads.get(key_id)
        gone = self._ring.shredded_key(key_id)
        if gone is not None:
            raise KeyShreddedError(
                f"key {key_id} of bucket {gone.bucket} was shredded "
                f"{format_time(gone.shredded)}: the data it encrypted cannot be recovered"
            )
        if aead is None:
            raise DecryptionError(
                f"key {key_id} is not in this ring: reload the ring, or the blob is not ours"
            )
        header, nonce = blob[:_HEADER_BYTES], blob[5:_HEADER_BYTES]
        try:
            return aead.decrypt(nonce, blob[_HEADER_BYTES:], header + associated_data)
        except InvalidTag:
            raise DecryptionError(
                "the blob was altered, or the associated data differs from encryption"
            ) from None

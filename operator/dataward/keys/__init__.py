"""Encrypt and decrypt application data with a store's key ring.

An application that the store lists in `access.readers` may read the key ring Secret
(`dataward-<store>-keyring`). Mount it, or read it through the API, and:

    from dataward.keys import Cipher

    cipher = Cipher.from_mounted_file("/etc/dataward/keyring/keyring.json")
    blob = cipher.encrypt(b"jane@example.com", associated_data=b"customers.email:42")
    assert cipher.decrypt(blob, associated_data=b"customers.email:42") == b"jane@example.com"

`encrypt` always uses the primary key; `decrypt` uses whichever version the blob names, so
data written before a rotation stays readable. Reload the ring after a rotation (the
Secret's `primaryKeyId` in the store's status says when) to encrypt with the new key.

Blob format (all integers big-endian):

    | version (1 byte) = 1 | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag |

The version byte, key id and nonce are authenticated along with `associated_data`, so a blob
cannot be moved to another key or another context without failing to decrypt. Bind
`associated_data` to where the value lives (table, column, row key) to stop ciphertexts being
swapped between rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dataward.keys.ring import KeyRing, KeyRingError, parse_ring, parse_ring_json

__all__ = ["BLOB_VERSION", "Cipher", "DecryptionError", "KeyRingError"]

BLOB_VERSION = 1
_NONCE_BYTES = 12
_HEADER_BYTES = 1 + 4 + _NONCE_BYTES
_TAG_BYTES = 16


class DecryptionError(ValueError):
    """A blob that this ring cannot decrypt: unknown format or key, or it was altered."""


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

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """Encrypt with the primary key and a fresh random nonce."""
        key_id = self._ring.primary
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

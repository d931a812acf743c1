"""Ed25519 keys for the evidence log: generate, serialise, load, sign, verify.

The private key is PKCS#8 PEM (unencrypted: it is meant to be mounted from a Secret, whose
access the cluster controls and audits); the public key is SubjectPublicKeyInfo PEM and is
what an auditor needs. A key's id is 16 hex digits of SHA-256 over its raw public bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dataward.evidence.errors import EvidenceError

# Signatures cover this prefix and the record's hash, so a signature made by the same key
# for another purpose can never pass as an evidence signature.
SIGNATURE_DOMAIN = b"dataward-evidence-v1\x00"


def generate_key() -> Ed25519PrivateKey:
    """A new signing key."""
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The private key as PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key (16 hex digits)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key in `path` (PKCS#8 PEM); EvidenceError when absent or not Ed25519."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as error:
        raise EvidenceError(
            f"cannot read the signing key {str(path)!r}: {error.strerror}"
        ) from None
    except (ValueError, TypeError):
        raise EvidenceError(f"{str(path)!r} holds no unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"{str(path)!r} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The verifying key in `path` (PEM); EvidenceError when absent or not Ed25519."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as error:
        raise EvidenceError(f"cannot read the public key {str(path)!r}: {error.strerror}") from None
    except (ValueError, TypeError):
        raise EvidenceError(f"{str(path)!r} holds no PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError(f"{str(path)!r} is not an Ed25519 public key")
    return key


def _message(record_hash: str) -> bytes:
    try:
        return SIGNATURE_DOMAIN + bytes.fromhex(record_hash)
    except ValueError:
        raise EvidenceError(f"{record_hash!r} is not a hex hash") from None


def sign(key: Ed25519PrivateKey, record_hash: str) -> str:
    """The base64 signature of a record hash."""
    return base64.b64encode(key.sign(_message(record_hash))).decode("ascii")


def signature_valid(key: Ed25519PublicKey, record_hash: str, signature: str) -> bool:
    """True when `signature` is `key`'s signature of `record_hash`."""
    try:
        raw = base64.b64decode(signature, validate=True)
        if base64.b64encode(raw).decode("ascii") != signature:
            return False  # other text for the same bytes (padding bits): not what was written
        key.verify(raw, _message(record_hash))
    except (InvalidSignature, binascii.Error, EvidenceError, ValueError):
        return False
    return True

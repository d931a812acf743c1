"""The access export: the subject's rows as a JSON document, sealed to the requester.

The document (`build_document`) holds a manifest (which table, live or archive, how many
rows), the tables that could not be searched, and every row with its category, purposes,
retention, trigger, statute, expiry and the statute's keptUntil.

Sealing (`seal`/`open_sealed`) is ECIES over X25519: a fresh ephemeral key pair per export;
the shared secret with the recipient's public key goes through HKDF-SHA256 (info binds the
format and both public keys) to a 256-bit AES-GCM key; the header is authenticated data.
Only the holder of the recipient's private key can open it; a changed byte anywhere fails.

    blob = MAGIC (8 bytes) | ephemeral public key (32) | nonce (12) | AES-GCM ciphertext+tag
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dataward.model.store import RecordSet
from dataward.subjects.plan import SubjectPlan, Trigger
from dataward.subjects.result import instant

MAGIC = b"DWSEAL01"
INFO = b"dataward subject export v1"
KEY_BYTES = 32
NONCE_BYTES = 12
HEADER_BYTES = len(MAGIC) + KEY_BYTES + NONCE_BYTES
DOCUMENT_KIND = "DataSubjectExport"


class SealError(Exception):
    """A blob that cannot be opened with this key (wrong key, changed or cut short)."""


# ----------------------------------------------------------------------------- the document


@dataclass(frozen=True)
class FoundRows:
    """The subject's rows of one table in one database."""

    records: RecordSet
    location: str  # "live" or "archive"
    columns: tuple[str, ...]
    rows: Sequence[tuple[Any, ...]]
    # Each row's trigger as the request read it (`engine.Located.trigger`: the value and the
    # table's zone, read and counted as the purge does; PostgreSQL's infinity has not
    # happened, a value naming no instant is refused).
    triggers: Sequence[Trigger | None]


def json_value(value: Any) -> Any:
    """A database value as JSON: text for instants and exact numbers, base64 for bytes."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID | timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)


def build_document(plan: SubjectPlan, found: Sequence[FoundRows], at: datetime) -> bytes:
    """The rows document of an access request, as UTF-8 JSON."""
    life = plan.lifecycle
    rows: list[dict[str, Any]] = []
    for part in found:
        for row, trigger in zip(part.rows, part.triggers, strict=True):
            rows.append(
                {
                    "table": part.records.table,
                    "location": part.location,
                    "category": life.category,
                    "purposes": list(life.purposes),
                    "retention": str(life.retention),
                    "trigger": life.trigger,
                    "triggeredAt": instant(trigger.instant if trigger else None),
                    "expiresAt": instant(life.expires_at(trigger)),
                    "statute": life.statute,
                    "keptUntil": instant(life.kept_until(trigger)),
                    "values": {c: json_value(v) for c, v in zip(part.columns, row, strict=True)},
                }
            )
    document = {
        "kind": DOCUMENT_KIND,
        "version": 1,
        "store": plan.store,
        "generatedAt": instant(at),
        "manifest": [
            {"table": f.records.table, "location": f.location, "rows": len(f.rows)} for f in found
        ],
        "notSearchable": list(plan.not_searchable),
        "rows": rows,
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


# ---------------------------------------------------------------------------------- sealing


@dataclass(frozen=True)
class KeyPair:
    """A recipient's X25519 key pair in PEM (PKCS#8 / SubjectPublicKeyInfo) and raw forms."""

    private_pem: bytes
    public_pem: bytes
    private_raw: bytes
    public_raw: bytes

    def __repr__(self) -> str:
        return f"KeyPair(public_raw={self.public_raw.hex()})"


def generate_keypair() -> KeyPair:
    """A new recipient key pair."""
    private = X25519PrivateKey.generate()
    public = private.public_key()
    return KeyPair(
        private_pem=private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public_pem=public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        private_raw=private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        ),
        public_raw=public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
    )


def _raw(data: bytes) -> bytes | None:
    """32 raw bytes, or their base64 text, as raw bytes; None for anything else."""
    if len(data) == KEY_BYTES:
        return data
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        return None
    return decoded if len(decoded) == KEY_BYTES else None


def load_public_key(data: bytes) -> X25519PublicKey:
    """A recipient's public key: PEM, 32 raw bytes or their base64."""
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise SealError("the public key is not a valid PEM key") from None
        if not isinstance(key, X25519PublicKey):
            raise SealError("the public key is not an X25519 key")
        return key
    raw = _raw(data)
    if raw is None:
        raise SealError("the public key is neither PEM nor 32 bytes (raw or base64)")
    return X25519PublicKey.from_public_bytes(raw)


def public_pem(text: Any) -> str | None:
    """`text` when it is an X25519 public key in PEM, as the operator makes a request's
    (`generate_keypair`) and its Jobs seal to (`load_public_key`); else None. Not the raw or
    base64 forms `load_public_key` also takes: the operator never writes them, so one is
    garbled, not a key."""
    if not isinstance(text, str) or not text.lstrip().startswith("-----BEGIN"):
        return None
    try:
        load_public_key(text.encode("ascii"))
    except (SealError, UnicodeEncodeError):
        return None
    return text


def public_key_fingerprint(pem: str) -> str:
    """A non-secret name for the X25519 public key `pem` (PEM, as `public_pem` accepts):
    `sha256:` and the hex SHA-256 of its 32 raw bytes, whatever the PEM's line layout. What
    status records of an access request's key pair (never the key itself)."""
    raw = load_public_key(pem.encode("ascii")).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def load_private_key(data: bytes) -> X25519PrivateKey:
    """A recipient's private key: PEM (unencrypted PKCS#8), 32 raw bytes or their base64."""
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SealError("the private key is not a valid unencrypted PEM key") from None
        if not isinstance(key, X25519PrivateKey):
            raise SealError("the private key is not an X25519 key")
        return key
    raw = _raw(data)
    if raw is None:
        raise SealError("the private key is neither PEM nor 32 bytes (raw or base64)")
    return X25519PrivateKey.from_private_bytes(raw)


def _public_raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def derive_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    """The AES-256 key: HKDF-SHA256 of the X25519 secret, bound to both public keys."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=INFO + ephemeral_public + recipient_public,
    ).derive(shared)


def seal_with(
    document: bytes, recipient: X25519PublicKey, ephemeral: X25519PrivateKey, nonce: bytes
) -> bytes:
    """`seal` with a given ephemeral key and nonce (for known-answer tests only)."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError("the nonce must be 12 bytes")
    ephemeral_public = _public_raw(ephemeral.public_key())
    key = derive_key(ephemeral.exchange(recipient), ephemeral_public, _public_raw(recipient))
    header = MAGIC + ephemeral_public + nonce
    return header + AESGCM(key).encrypt(nonce, document, header)


def seal(document: bytes, recipient_public_key: X25519PublicKey | bytes) -> bytes:
    """Encrypt `document` so that only the recipient's private key opens it."""
    recipient = (
        load_public_key(recipient_public_key)
        if isinstance(recipient_public_key, bytes)
        else recipient_public_key
    )
    return seal_with(document, recipient, X25519PrivateKey.generate(), os.urandom(NONCE_BYTES))


def open_sealed(blob: bytes, private_key: X25519PrivateKey | bytes) -> bytes:
    """The document sealed in `blob`; SealError when the key is wrong or a byte changed."""
    private = load_private_key(private_key) if isinstance(private_key, bytes) else private_key
    if len(blob) < HEADER_BYTES + 16 or not blob.startswith(MAGIC):
        raise SealError("not a Dataward sealed export (wrong header or cut short)")
    header = blob[:HEADER_BYTES]
    ephemeral_public = blob[len(MAGIC) : len(MAGIC) + KEY_BYTES]
    nonce = blob[len(MAGIC) + KEY_BYTES : HEADER_BYTES]
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    except ValueError:
        raise SealError("the export's ephemeral key is invalid") from None
    key = derive_key(shared, ephemeral_public, _public_raw(private.public_key()))
    try:
        return AESGCM(key).decrypt(nonce, blob[HEADER_BYTES:], header)
    except InvalidTag:
        raise SealError(
            "the export does not open with this key: the wrong private key, or the export "
            "was changed"
        ) from None

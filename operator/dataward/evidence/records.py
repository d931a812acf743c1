"""Evidence records: canonical encoding, hashing, and building the next record of a chain.

A record's hash is SHA-256 over the canonical JSON encoding of everything it says (version,
sequence number, time, kind, subject, payload, the previous record's hash and the id of the
signing key). The encoding is canonical because every byte is fixed by the value:
keys sorted, no insignificant whitespace, ASCII only (non-ASCII escaped, so a database's
character set cannot change what was hashed), and no floats (`1.0` and `1` would be two
spellings of one number). The Ed25519 signature covers the hash, domain-separated.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dataward.evidence.errors import EvidenceError

FORMAT_VERSION = 1
# The previous hash of record 1: no record comes before it.
GENESIS_HASH = "0" * 64
# JSON numbers the canonical encoding accepts: every reader (also JavaScript) agrees on them.
_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True)
class Record:
    """One stored evidence record, exactly as it is hashed and signed."""

    seq: int
    time: str  # RFC 3339, UTC, microseconds, `Z`
    kind: str
    subject: str
    payload: Mapping[str, Any]
    prev_hash: str
    key_id: str
    hash: str
    signature: str  # base64 of the 64-byte Ed25519 signature

    def content(self) -> dict[str, Any]:
        """What the hash covers."""
        return record_content(
            self.seq, self.time, self.kind, self.subject, self.payload, self.prev_hash, self.key_id
        )


def format_time(instant: datetime) -> str:
    """An instant as the record stores it: UTC, microseconds, `Z` (sorts as text)."""
    if instant.tzinfo is None:
        raise EvidenceError("an evidence time must be timezone-aware")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_canonical(value: Any, path: str) -> None:
    """Refuse values the canonical encoding cannot spell one way only."""
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > _SAFE_INTEGER:
            raise EvidenceError(f"{path}: integer {value} is beyond ±2^53-1")
        return
    if isinstance(value, float):
        what = "not finite" if not math.isfinite(value) else "a float"
        raise EvidenceError(f"{path}: {value!r} is {what}; evidence numbers are integers")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EvidenceError(f"{path}: key {key!r} is not a string")
            _check_canonical(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_canonical(item, f"{path}[{index}]")
        return
    raise EvidenceError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of `value` (sorted keys, no spaces, ASCII, no floats)."""
    _check_canonical(value, "value")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def record_content(
    seq: int,
    time: str,
    kind: str,
    subject: str,
    payload: Mapping[str, Any],
    prev_hash: str,
    key_id: str,
) -> dict[str, Any]:
    """The object a record's hash is computed over."""
    return {
        "v": FORMAT_VERSION,
        "seq": seq,
        "time": time,
        "kind": kind,
        "subject": subject,
        "payload": dict(payload),
        "prev": prev_hash,
        "key": key_id,
    }


def content_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over the canonical encoding of a record's content."""
    return hashlib.sha256(canonical_json(content).encode("ascii")).hexdigest()


def parse_payload(text: str) -> dict[str, Any]:
    """A stored payload back as a value; raise EvidenceError when it is not a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        raise EvidenceError("the stored payload is not JSON") from None
    if not isinstance(value, dict):
        raise EvidenceError("the stored payload is not a JSON object")
    return value

"""The hash chain: build the next record, and verify a chain read back from storage.

Verification walks the records in sequence order and, for each one, runs the checks below in
this order; the first failure names the first broken record:

- `sequence`: numbers go 1, 2, 3, ... with no gap (a deleted record) and no repeat;
- `link`: its previous hash is the hash of the record before it (reordered, spliced in,
  rewritten);
- `hash`: its hash is SHA-256 over its canonical content (edited in place);
- `signature`: the key it names is one of the given public keys, and its Ed25519 signature of
  the hash verifies (forged, re-signed with another key);
- `head`: after the last record, the stored head (sequence and hash of the last append)
  matches it (records cut off the end);
- `anchor`: a (sequence, hash) the auditor kept from an earlier verification is still there.
  A record that is there with another hash breaks the chain right after the last anchor that
  matches (record 1 when none does): a re-signed chain is wrong anywhere after that anchor.

Each check is a name in `CHECKS`; `verify_chain(..., checks=...)` can leave one out, which is
how the tests show that every check is the one that catches its kind of tampering.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dataward.evidence.errors import EvidenceError
from dataward.evidence.records import (
    GENESIS_HASH,
    Record,
    content_hash,
    format_time,
    record_content,
)
from dataward.evidence.signing import key_id, sign, signature_valid

CheckName = Literal["sequence", "link", "hash", "signature", "head", "anchor"]
CHECKS: tuple[CheckName, ...] = ("sequence", "link", "hash", "signature", "head", "anchor")


@dataclass(frozen=True)
class Head:
    """The sequence number and hash of the last record appended (0 and GENESIS_HASH: none)."""

    seq: int
    hash: str


EMPTY_HEAD = Head(0, GENESIS_HASH)


def next_record(
    head: Head,
    now: datetime,
    kind: str,
    subject: str,
    payload: Mapping[str, Any],
    key: Ed25519PrivateKey,
) -> Record:
    """The record that follows `head`, hashed and signed (payload already validated)."""
    signer = key_id(key.public_key())
    seq, time = head.seq + 1, format_time(now)
    record_hash = content_hash(record_content(seq, time, kind, subject, payload, head.hash, signer))
    return Record(
        seq=seq,
        time=time,
        kind=kind,
        subject=subject,
        payload=dict(payload),
        prev_hash=head.hash,
        key_id=signer,
        hash=record_hash,
        signature=sign(key, record_hash),
    )


@dataclass(frozen=True)
class Break:
    """The first broken record: its sequence number, the check that failed, and why."""

    seq: int
    check: CheckName
    message: str


@dataclass(frozen=True)
class Verdict:
    """What verification found: how many records were checked, the last one, the first break."""

    records: int
    last: Head
    broken: Break | None

    @property
    def intact(self) -> bool:
        """True when no check failed."""
        return self.broken is None


_HEX16 = re.compile(r"[0-9a-f]{1,16}")


def _short(stored: str) -> str:
    """A stored hash's first 16 characters for a message; anything but hex digits escaped.

    These fields are whatever the database holds (the operator's login may write the head):
    printed as they are, terminal escapes could erase "BROKEN" from the auditor's screen.
    """
    head = stored[:16]
    return head if _HEX16.fullmatch(head) else ascii(head)


def _hash_of(record: Record) -> str | None:
    try:
        return content_hash(record.content())
    except EvidenceError:
        return None  # content the canonical encoding refuses was never written by Dataward


def signed_by(record: Record, key: Ed25519PublicKey) -> bool:
    """True when `record`'s content hashes to its hash and `key` signed that hash.

    The `hash` and `signature` checks of one record alone: what the operator requires of a
    record it reads back to decide something (anyone with its database login can insert rows).
    """
    return (
        record.key_id == key_id(key)
        and _hash_of(record) == record.hash
        and signature_valid(key, record.hash, record.signature)
    )


def _record_break(
    record: Record,
    expected_seq: int,
    prev: Head,
    keys: Mapping[str, Ed25519PublicKey],
    checks: Collection[CheckName],
) -> Break | None:
    seq = record.seq
    if "sequence" in checks and seq != expected_seq:
        if seq > expected_seq:
            missing = (
                f"record {expected_seq} is"
                if seq == expected_seq + 1
                else f"records {expected_seq} to {seq - 1} are"
            )
            return Break(
                expected_seq,
                "sequence",
                f"{missing} missing: the chain jumps from record {expected_seq - 1} to {seq} "
                "(deleted)",
            )
        return Break(seq, "sequence", f"record {seq} appears again after record {expected_seq - 1}")
    if "link" in checks and record.prev_hash != prev.hash:
        before = f"record {prev.seq}" if prev.seq else "the start of the chain"
        return Break(
            seq,
            "link",
            f"record {seq} does not follow {before}: its previous hash {_short(record.prev_hash)} "
            f"is not {before}'s hash {_short(prev.hash)} (reordered, spliced in or rewritten)",
        )
    if "hash" in checks and _hash_of(record) != record.hash:
        return Break(
            seq,
            "hash",
            f"record {seq}'s content does not match its hash (edited after it was written)",
        )
    if "signature" in checks:
        public = keys.get(record.key_id)
        if public is None:
            return Break(
                seq,
                "signature",
                f"record {seq} names signing key {record.key_id!a}, which is not among the "
                f"given public keys ({', '.join(sorted(keys)) or 'none'}): re-signed or forged",
            )
        if not signature_valid(public, record.hash, record.signature):
            return Break(
                seq,
                "signature",
                f"record {seq}'s signature does not verify with key {record.key_id} (forged)",
            )
    return None


def verify_chain(
    records: Iterable[Record],
    head: Head | None,
    keys: Iterable[Ed25519PublicKey],
    *,
    anchors: Sequence[Head] = (),
    checks: Collection[CheckName] = CHECKS,
) -> Verdict:
    """Check `records` (in sequence order) against each other, the head and `keys`.

    `head` None means the head row is gone, so the end of the chain cannot be checked: that
    is a break too (deleting the head row is how a cut would be hidden from the head check).
    """
    by_id = {key_id(key): key for key in keys}
    wanted = {anchor.seq: anchor.hash for anchor in anchors}
    prev, count = EMPTY_HEAD, 0
    proven = EMPTY_HEAD  # the last record an anchor matched: it and all before it are as kept
    for record in records:
        found = _record_break(record, prev.seq + 1, prev, by_id, checks)
        if found is not None:
            return Verdict(count, prev, found)
        if "anchor" in checks and record.seq in wanted and wanted[record.seq] != record.hash:
            # Signed and chained, yet not the record that was anchored: someone holding the
            # key rewrote the chain somewhere after the last anchor that still matches (or
            # put another log signed by the same key in its place). Nothing after that
            # anchor is shown to be the operator's original record, so the break is there.
            after = f"after record {proven.seq}, " if proven.seq else ""
            return Verdict(
                proven.seq,
                proven,
                Break(
                    proven.seq + 1,
                    "anchor",
                    f"record {record.seq}'s hash {_short(record.hash)} is not the anchored "
                    f"{_short(wanted[record.seq])}: the chain was rewritten {after}at or before "
                    f"record {record.seq} (re-signed with the key, cut off and appended to "
                    "again, or another log put in its place); no record from here on is shown "
                    "to be the original",
                ),
            )
        prev, count = Head(record.seq, record.hash), count + 1
        if record.seq in wanted:
            proven = prev
    if "anchor" in checks:
        beyond = sorted(seq for seq in wanted if seq > prev.seq)
        if beyond:
            return Verdict(
                count,
                prev,
                Break(
                    prev.seq + 1,
                    "anchor",
                    f"the chain ends at record {prev.seq}, but record {beyond[0]} was anchored: "
                    f"records {prev.seq + 1} to {beyond[0]} at least were cut off",
                ),
            )
    if "head" in checks and head is None:
        message = (
            f"the head row is gone: nothing shows whether records after record {prev.seq} "
            "were cut off"
        )
        return Verdict(count, prev, Break(prev.seq + 1, "head", message))
    if "head" in checks and head is not None and head != prev:
        if head.seq > prev.seq:
            message = (
                f"the chain ends at record {prev.seq}, but the head says record {head.seq} was "
                f"appended: records {prev.seq + 1} to {head.seq} were cut off"
            )
            return Verdict(count, prev, Break(prev.seq + 1, "head", message))
        message = (
            f"the head (record {head.seq}, hash {_short(head.hash)}) does not match the last "
            f"record (record {prev.seq}, hash {_short(prev.hash)})"
        )
        first = head.seq + 1 if head.seq < prev.seq else prev.seq
        return Verdict(count, prev, Break(max(first, 1), "head", message))
    return Verdict(count, prev, None)

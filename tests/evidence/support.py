"""Sample payloads of every kind, and in-memory chains for the evidence tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataward.evidence.chain import EMPTY_HEAD, Head, next_record
from dataward.evidence.records import Record, content_hash
from dataward.evidence.signing import key_id, sign

START = datetime(2026, 12, 1, 3, 17, tzinfo=UTC)

SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "purge.run": (
        "crm/support-inquiries",
        {
            "result": "Succeeded",
            "dryRun": False,
            "startTime": START,
            "completionTime": START + timedelta(seconds=42),
            "cutoff": "2025-12-01T03:16:59.999999Z",
            "rowsDeleted": 1200,
            "rowsArchived": 0,
            "tables": [
                {
                    "table": "support_inquiries",
                    "cutoff": "2025-12-01T03:16:59.999999Z",
                    "rowsDeleted": 1200,
                    "rowsArchived": 0,
                    "rowsDestroyed": 0,
                    "skipped": False,
                    "outcome": "Purged",
                },
                {"table": "crm.attachments", "skipped": True, "skipReason": "TableMissing"},
            ],
        },
    ),
    "key.created": (
        "crm/support-inquiries",
        {"secret": "dataward-support-inquiries-keyring", "keyId": 1, "algorithm": "AES-256-GCM",
         "created": START, "fingerprint": "0123456789abcdef"},
    ),
    "key.rotated": (
        "crm/support-inquiries",
        {"secret": "dataward-support-inquiries-keyring", "keyId": 2, "previousKeyId": 1,
         "fingerprint": "fedcba9876543210"},
    ),
    "key.shredded": (
        "crm/support-inquiries",
        {"secret": "dataward-support-inquiries-keyring", "keyId": 3, "bucket": "2026-10",
         "reason": "BucketExpired", "expired": START},
    ),
    "key.shred.cancelled": (
        "crm/support-inquiries",
        {"secret": "dataward-support-inquiries-keyring", "keyId": 3, "bucket": "2026-10",
         "reason": "LegalHold"},
    ),
    "request.answered": (
        "crm/support-inquiries",
        {"requestId": "dsr-2026-0042", "requestType": "erasure", "outcome": "fulfilled",
         "receivedAt": START, "answeredAt": START + timedelta(days=3), "recordsAffected": 3},
    ),
    "policy.revision": (
        "clunix",
        {"policy": "clunix", "generation": 4, "digest": "ab" * 32,
         "effectiveDate": "2021-04-26", "categories": ["newsletter", "contract-records"]},
    ),
    "access.read": (
        "crm/support-inquiries",
        {"auditID": "5c1f8f0e-2b8a-4f57-9d2e-0d4c0f3a9a11", "verb": "get", "namespace": "crm",
         "secret": "dataward-support-inquiries-keyring",
         "stageTimestamp": "2026-12-01T10:00:00.130001Z",
         "user": "system:serviceaccount:crm:reporting", "groups": ["system:authenticated"],
         "responseCode": 200, "decision": "allow"},
    ),
    "condition.transition": (
        "crm/support-inquiries",
        {"type": "PurgeSucceeded", "status": "False", "previousStatus": "True",
         "reason": "ConnectionFailed", "message": "could not connect to the live database",
         "observedGeneration": 7},
    ),
    "evidence.outage": (
        "dataward",
        {"from": "2026-05-01T09:00:00.000000Z", "to": "2026-05-01T09:12:30.000000Z",
         "failedAppends": 4},
    ),
}  # fmt: skip


def sample(index: int) -> tuple[str, str, dict[str, Any]]:
    """The index-th sample, cycling through the kinds: (kind, subject, payload)."""
    kind = sorted(SAMPLES)[index % len(SAMPLES)]
    subject, payload = SAMPLES[kind]
    return kind, subject, payload


def build_chain(key: Ed25519PrivateKey, count: int, head: Head = EMPTY_HEAD) -> list[Record]:
    """`count` records after `head`, one minute apart, signed by `key`."""
    from dataward.evidence.payloads import validate

    records: list[Record] = []
    for index in range(count):
        kind, subject, payload = sample(head.seq + index)
        record = next_record(
            head,
            START + timedelta(minutes=head.seq + index),
            kind,
            subject,
            validate(kind, subject, payload),
            key,
        )
        records.append(record)
        head = Head(record.seq, record.hash)
    return records


def resign(record: Record, key: Ed25519PrivateKey, *, claim_key: str | None = None) -> Record:
    """`record` re-hashed and re-signed by `key` (naming `claim_key` as its signer if given).

    What someone with write access to the database but without the operator's key can do.
    """
    changed = replace(record, key_id=claim_key or key_id(key.public_key()))
    record_hash = content_hash(changed.content())
    return replace(changed, hash=record_hash, signature=sign(key, record_hash))

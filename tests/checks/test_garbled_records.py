"""Records the operator wrote in status and reads back, garbled by someone else: each parse
says which field is unreadable (never its value), and never reads garbage as "nothing there"."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from dataward.checks.encryption import encryption_key_ready
from dataward.checks.observed import KeyRingRecord, ObservedKeyRing, Unreadable
from dataward.model.durations import parse_duration

GARBLE = "GARBLE-7f3c"
# status.encryption as the operator writes it (worked by hand, not made by the code).
WRITTEN: dict[str, Any] = {
    "keySecret": "dataward-s-keyring",
    "primaryKeyId": 1,
    "primaryKeyCreated": "2026-01-10T08:00:00Z",
    "nextRotation": "2026-02-09T08:00:00Z",
    "keys": [
        {"id": 1, "created": "2026-01-10T08:00:00Z", "fingerprint": "0123456789abcdef"},
        {
            "id": 2,
            "created": "2026-01-10T08:01:00Z",
            "fingerprint": "00ff00ff00ff00ff",
            "bucket": "2025-07",
        },
    ],
    "pendingKeys": [
        {
            "id": 3,
            "created": "2026-01-10T08:01:00Z",
            "fingerprint": "ffffffffffffffff",
            "bucket": "2025-08",
        },
    ],
    "shreddedBuckets": [{"bucket": "2025-06", "keyId": 4, "shredded": "2026-01-01T00:00:00Z"}],
    "owedWithdrawals": [
        {"keyId": 2, "bucket": "2025-07", "fingerprint": "00ff00ff00ff00ff", "reason": "LegalHold"}
    ],
    "lastRotation": "2026-01-10T08:00:00Z",
}


def parsed(encryption: Any) -> KeyRingRecord | Unreadable | None:
    return KeyRingRecord.from_status({"encryption": encryption})


def test_the_written_form_reads_whole() -> None:
    record = parsed(WRITTEN)
    assert isinstance(record, KeyRingRecord)
    assert [k.id for k in record.keys] == [1, 2] and record.keys[1].bucket == "2025-07"
    assert [k.id for k in record.pending_keys] == [3]
    assert [(s.id, s.bucket) for s in record.shredded] == [(4, "2025-06")]
    assert [(o.id, o.bucket, o.reason) for o in record.owed] == [(2, "2025-07", "LegalHold")]
    assert record.last_rotation == "2026-01-10T08:00:00Z" and record.primary_id == 1


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("primaryKeyId",), GARBLE, "primaryKeyId"),
        (("primaryKeyId",), True, "primaryKeyId"),
        (("keySecret",), 7, "keySecret"),
        (("keys",), GARBLE, "keys"),
        (("keys", 1), GARBLE, "keys[1]"),
        (("keys", 1, "id"), GARBLE, "keys[1].id"),
        (("keys", 1, "id"), "2", "keys[1].id"),  # the string of an integer is not one
        (("keys", 1, "id"), 2.0, "keys[1].id"),
        (("keys", 1, "id"), -2, "keys[1].id"),
        (("keys", 1, "created"), GARBLE, "keys[1].created"),
        (("keys", 1, "created"), "2026-01-10T08:01:00", "keys[1].created"),  # no zone
        (("keys", 1, "fingerprint"), GARBLE, "keys[1].fingerprint"),
        (("keys", 1, "bucket"), GARBLE[:7], "keys[1].bucket"),
        (("pendingKeys", 0, "fingerprint"), None, "pendingKeys[0].fingerprint"),
        (("shreddedBuckets", 0, "keyId"), GARBLE, "shreddedBuckets[0].keyId"),
        (("shreddedBuckets", 0, "shredded"), GARBLE, "shreddedBuckets[0].shredded"),
        (("shreddedBuckets", 0, "bucket"), None, "shreddedBuckets[0].bucket"),
        (("owedWithdrawals",), {"keyId": 2}, "owedWithdrawals"),
        (("owedWithdrawals", 0, "keyId"), GARBLE, "owedWithdrawals[0].keyId"),
        (("owedWithdrawals", 0, "fingerprint"), None, "owedWithdrawals[0].fingerprint"),
        (("owedWithdrawals", 0, "bucket"), GARBLE[:7], "owedWithdrawals[0].bucket"),
        (("owedWithdrawals", 0, "reason"), f"{GARBLE} <script>", "owedWithdrawals[0].reason"),
        (("lastRotation",), GARBLE, "lastRotation"),
        (("pending",), GARBLE, "pending"),
    ],
)
def test_a_garbled_field_is_unreadable_by_name_never_by_value(
    path: tuple[Any, ...], value: Any, field: str
) -> None:
    encryption = copy.deepcopy(WRITTEN)
    target: Any = encryption
    for step in path[:-1]:
        target = target[step]
    if value is None:
        del target[path[-1]]  # a missing field
    else:
        target[path[-1]] = value
    record = parsed(encryption)
    assert record == Unreadable(f"status.encryption.{field}")
    assert isinstance(record, Unreadable)
    condition = encryption_key_ready(
        ObservedKeyRing.unknown("status unreadable"),
        None,
        "dataward-s-keyring",
        datetime(2026, 1, 11, tzinfo=UTC),
        parse_duration("30d"),
        unreadable=record.field,
    )
    assert (condition.status, condition.reason) == ("Unknown", "StatusUnreadable")
    assert f"status.encryption.{field} " in condition.message
    assert GARBLE not in condition.message and GARBLE[:7] not in condition.message


def test_status_encryption_itself_garbled_is_unreadable() -> None:
    assert parsed(GARBLE) == Unreadable("status.encryption")
    assert parsed([WRITTEN]) == Unreadable("status.encryption")


def test_only_an_empty_record_is_no_record() -> None:
    assert parsed(None) is None and parsed({}) is None
    assert parsed({"scheduledDeletion": "2026-01-10T08:00:00Z"}) is None
    assert parsed({"primaryKeyId": None, "nextRotation": None}) is None
    # Ring fields without the primary: garbled, not "no ring" (which could let a ring be
    # adopted, or made anew, on its strength).
    without = {k: v for k, v in WRITTEN.items() if k != "primaryKeyId"}
    assert parsed(without) == Unreadable("status.encryption.primaryKeyId")
    assert parsed({"owedWithdrawals": WRITTEN["owedWithdrawals"]}) == Unreadable(
        "status.encryption.primaryKeyId"
    )

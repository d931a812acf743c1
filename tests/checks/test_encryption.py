"""EncryptionKeyReady."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from dataward.checks.encryption import encryption_key_ready
from dataward.checks.observed import KeyRingRecord, ObservedKeyRing
from dataward.keys.ring import KeyRing, generate_ring, rotate, serialise
from dataward.model.durations import Duration

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SECRET = "dataward-support-inquiries-keyring"
MAX_AGE = Duration(30, "d")
RING = generate_ring(T0)
RECORD = KeyRingRecord.from_ring(RING, SECRET)


def check(
    observed: ObservedKeyRing, record: KeyRingRecord | None = RECORD, days: int = 1
) -> tuple[str, str, str]:
    condition = encryption_key_ready(observed, record, SECRET, T0 + timedelta(days=days), MAX_AGE)
    assert condition.type == "EncryptionKeyReady"
    return condition.status, condition.reason, condition.message


def present(ring: KeyRing) -> ObservedKeyRing:
    return ObservedKeyRing.from_secret_data(serialise(ring))


def test_ready_with_the_recorded_ring() -> None:
    status, reason, message = check(present(RING))
    assert (status, reason) == ("True", "KeyReady")
    assert "2025-01-31T00:00:00Z" in message
    assert RING.primary_key.material.hex() not in message


def test_ready_on_first_sight_without_a_record() -> None:
    assert check(present(RING), None)[:2] == ("True", "KeyReady")


def test_ready_after_a_legitimate_rotation() -> None:
    assert check(present(rotate(RING, T0 + timedelta(days=30))), days=31)[:2] == (
        "True",
        "KeyReady",
    )


def test_unknown_on_a_read_error() -> None:
    assert check(ObservedKeyRing.unknown("connection refused"))[:2] == (
        "Unknown",
        "KeyRingUnreadable",
    )


def test_missing_after_status_recorded_a_ring_says_restore_not_regenerate() -> None:
    status, reason, message = check(ObservedKeyRing.absent())
    assert (status, reason) == ("False", "KeyRingMissing")
    assert "Restore" in message and "does not create a new ring" in message


def test_missing_before_creation() -> None:
    status, reason, message = check(ObservedKeyRing.absent(), None)
    assert (status, reason) == ("False", "KeyRingMissing")
    assert "creates it" in message


def test_replaced_material_is_key_material_changed() -> None:
    status, reason, message = check(present(generate_ring(T0)))
    assert (status, reason) == ("False", "KeyMaterialChanged")
    assert "key 1 has different material" in message


def test_a_vanished_version_is_key_material_changed() -> None:
    two = rotate(RING, T0)
    record = KeyRingRecord.from_ring(two, SECRET)
    only_new = KeyRing(primary=2, keys=(two.key(2),))
    status, reason, message = check(present(only_new), record)
    assert (status, reason) == ("False", "KeyMaterialChanged")
    assert "key 1 is gone" in message


def test_a_primary_moved_back_is_key_material_changed() -> None:
    two = rotate(RING, T0)
    record = KeyRingRecord.from_ring(two, SECRET)
    back = dataclasses.replace(two, primary=1)
    assert check(present(back), record)[1] == "KeyMaterialChanged"


def test_malformed_ring_is_invalid_without_echoing_content() -> None:
    observed = ObservedKeyRing.from_secret_data({"keyring.json": "bm90IGpzb24="})
    status, reason, message = check(observed)
    assert (status, reason) == ("False", "KeyRingInvalid")
    assert "not JSON" in message


def test_a_primary_older_than_key_rotation_is_due() -> None:
    assert check(present(RING), days=30)[:2] == ("False", "KeyRotationDue")
    assert check(present(RING), days=29)[:2] == ("True", "KeyReady")


def test_record_round_trips_through_status() -> None:
    two = rotate(RING, T0 + timedelta(days=30))
    record = KeyRingRecord.from_ring(two, SECRET, last_rotation=T0 + timedelta(days=30))
    status = {"encryption": record.to_status(T0 + timedelta(days=60))}
    assert KeyRingRecord.from_status(status) == record
    assert status["encryption"]["primaryKeyId"] == 2
    assert status["encryption"]["primaryKeyCreated"] == "2025-01-31T00:00:00Z"
    assert status["encryption"]["nextRotation"] == "2025-03-02T00:00:00Z"
    assert status["encryption"]["keySecret"] == SECRET
    for key in two.keys:
        assert key.material.hex() not in repr(status)


def test_no_record_in_an_empty_status() -> None:
    assert KeyRingRecord.from_status(None) is None
    assert KeyRingRecord.from_status({"encryption": {}}) is None

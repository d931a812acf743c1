"""EncryptionKeyReady."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from dataward.checks.encryption import (
    encryption_key_ready,
    expired_shreddings,
    key_shredding,
    standing_withdrawals,
    waiting_buckets,
)
from dataward.checks.observed import (
    KeyRingRecord,
    ObservedKeyRing,
    OwedWithdrawal,
    ShreddedRecord,
)
from dataward.keys.ring import (
    KeyRing,
    add_bucket_keys,
    fingerprint,
    generate_ring,
    rotate,
    serialise,
    shred_buckets,
)
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
    # The operator records a new key in status (pendingKeys) before it writes it to the ring.
    rotated = rotate(RING, T0 + timedelta(days=30))
    pending = KeyRingRecord.from_ring(rotated, SECRET).keys[-1:]
    record = dataclasses.replace(RECORD, pending_keys=pending)
    assert check(present(rotated), record, days=31)[:2] == ("True", "KeyReady")
    # ... and once status lists it among its keys.
    assert check(present(rotated), KeyRingRecord.from_ring(rotated, SECRET), days=31)[:2] == (
        "True",
        "KeyReady",
    )


def test_a_key_no_record_lists_is_key_material_changed() -> None:
    """Whoever may write the Secret adds a key (material they know) and makes it the
    primary: status never recorded it, so the operator did not make it."""
    planted = rotate(RING, T0 + timedelta(days=1))
    status, reason, message = check(present(planted), days=2)
    assert (status, reason) == ("False", "KeyMaterialChanged")
    assert "key 2 was added outside the operator" in message
    assert planted.key(2).material.hex() not in message
    # Recorded as pending, but with other material: not the key the operator made either.
    other = KeyRingRecord.from_ring(rotate(RING, T0 + timedelta(days=1)), SECRET).keys[-1:]
    record = dataclasses.replace(RECORD, pending_keys=other)
    assert check(present(planted), record, days=2)[1] == "KeyMaterialChanged"


def test_a_creation_time_moved_forward_is_key_material_changed_not_fresh() -> None:
    """Rotation reads a key's creation time: moved forward, the key would never look old."""
    younger = dataclasses.replace(RING.key(1), created=T0 + timedelta(days=40))
    status, reason, message = check(present(KeyRing(1, (younger,))), days=35)
    assert (status, reason) == ("False", "KeyMaterialChanged")
    assert "key 1 has a different created time than recorded" in message
    assert younger.material.hex() not in message


def test_a_bucket_label_changed_is_key_material_changed() -> None:
    """Shredding reads a key's bucket: a relabelled key would be destroyed for another."""
    ring = add_bucket_keys(RING, ("2025-01", "2025-02"), T0)
    record = KeyRingRecord.from_ring(ring, SECRET)
    january, february = ring.key(2), ring.key(3)
    swapped = KeyRing(1, (ring.key(1), dataclasses.replace(january, bucket="2025-02"),
                          dataclasses.replace(february, bucket="2025-01")))  # fmt: skip
    status, reason, message = check(present(swapped), record)
    assert (status, reason) == ("False", "KeyMaterialChanged")
    assert "key 2 has a different bucket than recorded" in message
    assert "key 3 has a different bucket than recorded" in message
    # A bucket key recorded only as pending (its status write lost) is held to it too.
    pending = dataclasses.replace(
        RECORD, pending_keys=KeyRingRecord.from_ring(ring, SECRET).keys[1:])
    assert "key 2 has a different bucket than recorded" in check(present(swapped), pending)[2]
    assert check(present(ring), pending)[:2] == ("True", "KeyReady")


def test_the_same_instant_written_otherwise_is_no_change() -> None:
    """The record holds times to the second in UTC (as every version wrote them); a ring
    adopted from a backup may hold fractions and an offset."""
    ring = KeyRing(1, (dataclasses.replace(RING.key(1), created=T0 + timedelta(
        microseconds=250000)),))  # fmt: skip
    assert check(present(ring))[:2] == ("True", "KeyReady")
    record = dataclasses.replace(
        RECORD, keys=(dataclasses.replace(RECORD.keys[0], created="2025-01-01T01:00:00+01:00"),))
    assert check(present(RING), record)[:2] == ("True", "KeyReady")


def test_the_rings_shredded_list_is_held_to_the_recorded_shreddings() -> None:
    """status.encryption.shreddedBuckets is written before the Secret loses a key: a listed
    shredding whose key is still in the ring (the destroying write still to come) is no
    change; a ring entry status never recorded, or a recorded one gone, is."""
    ring = add_bucket_keys(RING, ("2025-01", "2025-02"), T0)
    decided = ShreddedRecord(2, "2025-01", "2025-02-01T00:00:00Z")
    listed = KeyRingRecord.from_ring(ring, SECRET, shredded=(decided,))
    assert check(present(ring), listed)[:2] == ("True", "KeyReady")  # not destroyed yet
    destroyed = shred_buckets(ring, ("2025-01",), datetime(2025, 2, 1, tzinfo=UTC))
    assert check(present(destroyed), listed)[:2] == ("True", "KeyReady")
    # The key 2 entry, with its material gone, but the operator never decided it.
    unlisted = KeyRingRecord.from_ring(ring, SECRET)
    status, reason, message = check(present(destroyed), unlisted)
    assert (status, reason) == ("False", "KeyMaterialChanged")
    assert "key 2 of bucket 2025-01 is listed as shredded, but the operator recorded no " \
        "such shredding" in message
    # The entry removed from the ring (its key long gone): the id could be given again.
    forgotten = KeyRing(destroyed.primary, destroyed.keys)
    assert check(present(forgotten), listed)[2].endswith(
        "the record of shredded key 2 (bucket 2025-01) was removed. Data encrypted with the "
        "recorded keys may be unreadable, and no key is rotated or shredded meanwhile: "
        "restore the Secret from a backup.")
    assert not any(key.material.hex() in message for key in ring.keys)


def test_only_an_expired_buckets_unrecorded_shredding_with_no_key_of_it_is_taken_in() -> None:
    """What the previous release adopted without recording (an expired bucket's destroyed
    key) is taken in; an entry that would keep a live or future bucket from its key, or that
    sits beside a key of its bucket, is not (it stays a change: KeyMaterialChanged)."""
    ring = add_bucket_keys(RING, ("2024-06", "2024-07", "2025-01"), T0)  # keys 2, 3, 4
    destroyed = shred_buckets(ring, ("2024-06",), T0)  # key 2
    adopted = KeyRingRecord.from_ring(destroyed, SECRET)  # keys alone, as adopted before

    def expired(bucket: str) -> bool:
        return bucket < "2024-12"

    (taken,) = expired_shreddings(adopted, destroyed, expired)
    assert (taken.id, taken.bucket) == (2, "2024-06")
    assert check(present(destroyed), dataclasses.replace(adopted, shredded=(taken,)))[:2] == (
        "True", "KeyReady")
    assert expired_shreddings(adopted, destroyed, lambda bucket: False) == ()  # a live bucket
    listed = dataclasses.replace(adopted, shredded=(taken,))
    assert expired_shreddings(listed, destroyed, expired) == ()  # already recorded
    # An expired bucket's recorded key (3, a legal hold keeps it, say) taken out and its bucket
    # marked shredded under another id: a destruction the operator never made, not taken in.
    faked = dataclasses.replace(destroyed.shredded[0], id=9, bucket="2024-07")
    forged = KeyRing(
        destroyed.primary, tuple(k for k in destroyed.keys if k.id != 3),
        (*destroyed.shredded, faked),
    )  # fmt: skip
    assert [g.id for g in expired_shreddings(adopted, forged, expired)] == [2]
    assert check(present(forged), listed)[:2] == ("False", "KeyMaterialChanged")


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


# --- withdrawals of key.shredded records, owed in status ---------------------------------------


def test_an_owed_withdrawal_stands_while_its_key_is_in_the_ring() -> None:
    ring = add_bucket_keys(RING, ("2025-07",), T0)
    july = ring.bucket_key("2025-07")
    assert july is not None
    debt = OwedWithdrawal(july.id, "2025-07", fingerprint(july))
    # No reason recorded (the operator stopped first): the hold's, the dry run's, else
    # Interrupted; a reason recorded is kept.
    assert standing_withdrawals([debt], ring, False, False)[0].reason == "Interrupted"
    assert standing_withdrawals([debt], ring, True, False)[0].reason == "LegalHold"
    assert standing_withdrawals([debt], ring, False, True)[0].reason == "DryRun"
    known = dataclasses.replace(debt, reason="StoreChanged")
    assert standing_withdrawals([known], ring, True, False) == (known,)
    # The key left the ring, or another key has its id: the claim is true, nothing owed.
    assert standing_withdrawals([debt], RING, False, False) == ()
    other = dataclasses.replace(debt, fingerprint="0" * 16)
    assert standing_withdrawals([other], ring, False, False) == ()


def test_owed_withdrawals_survive_the_status_round_trip() -> None:
    owed = (OwedWithdrawal(2, "2025-07", "9c1c4fc6bca59c01"),
            OwedWithdrawal(3, "2025-08", "00ff00ff00ff00ff", "LegalHold"))  # fmt: skip
    record = dataclasses.replace(RECORD, owed=owed)
    status = {"encryption": record.to_status(None)}
    assert status["encryption"]["owedWithdrawals"] == [
        {"keyId": 2, "bucket": "2025-07", "fingerprint": "9c1c4fc6bca59c01"},
        {"keyId": 3, "bucket": "2025-08", "fingerprint": "00ff00ff00ff00ff",
         "reason": "LegalHold"},
    ]  # fmt: skip
    parsed = KeyRingRecord.from_status(status)
    assert parsed is not None and parsed.owed == owed
    assert "owedWithdrawals" not in RECORD.to_status(None)


def _recorded(**fields: object) -> dict[str, object]:
    entry = {"type": "EncryptionKeyReady", "status": "True", "reason": "KeyShreddingHeld",
             "message": "held.", **fields}  # fmt: skip
    return {"conditions": [{"type": "Ready", "status": "True"}, entry]}


def test_a_wait_for_the_verdicts_on_an_edit_keeps_the_recorded_condition() -> None:
    ready = encryption_key_ready(present(RING), RECORD, SECRET, T0, MAX_AGE)
    kept = key_shredding(ready, SECRET, ("2025-07",), "settling", None, _recorded())
    assert (kept.status, kept.reason, kept.message) == ("True", "KeyShreddingHeld", "held.")
    recorded = _recorded(status="False", reason="KeyShreddingNotCompliant")
    kept = key_shredding(ready, SECRET, ("2025-07",), "settling", None, recorded)
    assert (kept.status, kept.reason) == ("False", "KeyShreddingNotCompliant")


def test_a_recorded_condition_the_operator_never_gives_is_not_kept() -> None:
    """Status is anyone's to patch who may: a reason the reference does not list for
    EncryptionKeyReady, or one with another status, is not repeated; this pass's stands."""
    ready = encryption_key_ready(present(RING), RECORD, SECRET, T0, MAX_AGE)
    for recorded in (
        _recorded(reason="AllGood"),
        _recorded(status="False", reason="KeyReady"),
        _recorded(message=None),
        {"conditions": "garbled"},
        None,
    ):
        assert key_shredding(ready, SECRET, ("2025-07",), "settling", None, recorded) == ready


def test_the_buckets_a_shredding_waits_for_are_read_back_from_its_message() -> None:
    ready = encryption_key_ready(present(RING), RECORD, SECRET, T0, MAX_AGE)
    waiting = key_shredding(ready, SECRET, ("2024", "2025-01", "2025-02"), "not-acknowledged", "x")
    assert waiting.reason == "KeyShreddingNotAcknowledged"
    assert waiting_buckets(waiting.message) == ("2024", "2025-01", "2025-02")
    assert waiting_buckets("Every record of the store has expired") is None


def test_another_controllers_condition_in_status_neither_holds_nor_lets_a_shredding() -> None:
    """Status keeps another controller's conditions (merge_conditions). They are not the
    store's verdicts: a False one, or one that names no generation, must not hold a due
    shredding for as long as that controller keeps it, and a True one must not stand in
    for the operator's own verdicts."""
    from dataward.checks.encryption import controls_not_in_force, verdicts_behind

    ours = [{"type": t, "status": "True", "observedGeneration": 3}
            for t in ("Ready", "PolicyCompliant", "NetworkIsolated", "AccessRestricted",
                      "PurgeScheduled", "PurgeSucceeded")]  # fmt: skip
    theirs = [{"type": "ExampleSynced", "status": "False", "observedGeneration": 3},
              {"type": "ExampleHealthy", "status": "True"},
              {"type": "ExampleOld", "status": "True", "observedGeneration": 1}]  # fmt: skip
    assert controls_not_in_force({"conditions": ours + theirs}, 3) is None
    assert verdicts_behind({"conditions": ours + theirs}, 3) == ()
    only_theirs = [{"type": "ExampleHealthy", "status": "True", "observedGeneration": 3}]
    assert controls_not_in_force({"conditions": only_theirs}, 3) is not None


def test_verdicts_not_in_force_name_only_the_operators_types() -> None:
    """Status is anyone's to write who may patch it: types the operator does not write,
    however many and long, never enter the message (the operator's are few and short)."""
    from dataward.checks.encryption import controls_not_in_force

    conditions = [
        {"type": f"Control{i:02d}" + "x" * 80, "status": "False", "observedGeneration": 3}
        for i in range(10)
    ] + [{"type": "PolicyCompliant", "status": "False", "observedGeneration": 3}]
    why = controls_not_in_force({"conditions": conditions}, 3)
    assert why == "these controls are not in force (not True): PolicyCompliant"

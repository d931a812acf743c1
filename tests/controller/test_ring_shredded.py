"""The ring Secret's own `shredded[]` list, held to what status recorded (shreddedBuckets).

Someone who may write the ring Secret (not the store's status) adds a shredded entry for a
live or future bucket (its key would never be made, and applications' Cipher refuses the
bucket as if lawfully shredded), removes one (the destroyed key's id could be given out
again, and its blobs read as "no key" instead of "shredded"), or changes one's bucket or
time. The operator reports the difference (KeyMaterialChanged, naming the key and bucket as
its other messages do), creates, rotates and destroys nothing from such a ring, and records
none of it as its own.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.checks.observed import KeyRingRecord, ShreddedRecord
from dataward.keys.ring import (
    KeyRing,
    add_bucket_keys,
    generate_ring,
    rotate,
    serialise,
    shred_buckets,
)
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, RING, T0, conditions, ring_json, status
from tests.controller.test_ring_metadata import materials, message_of, write_ring
from tests.controller.test_shredding import DUE, Sink, cluster, ring, ring_writes_lose_a_race, run

FEBRUARY = datetime(2026, 2, 2, tzinfo=UTC)  # March 2026 is then the bucket made ahead


def shredded_july() -> tuple[FakeKube, Sink]:
    """A store whose July 2025 key the operator destroyed (ring and status agree)."""
    kube = cluster()
    run(kube, None, T0)
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, DUE)
    assert [gone.bucket for gone in ring(kube).shredded] == ["2025-07"]
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    return kube, sink


def destroyed_on_a_retry() -> tuple[FakeKube, Sink]:
    """A store whose July 2025 key the operator destroyed at DUE, recording the shredding in
    status, while its ring write lost a race; the retry a minute later wrote the ring."""
    kube = cluster()
    run(kube, None, T0)
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    with ring_writes_lose_a_race(kube):
        run(kube, sink, DUE)
    run(kube, sink, DUE + timedelta(minutes=1))
    return kube, sink


def secret_writes(kube: FakeKube) -> list[Any]:
    return [c for c in kube.writes() if c[1] == "Secret"]


def assert_reported_and_untouched(kube: FakeKube, sink: Sink, forged: str, *said: str) -> None:
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyMaterialChanged")
    message = message_of(kube)
    assert all(part in message for part in said), message
    assert not any(m in json.dumps(status(kube)) for m in materials(kube))
    assert kube.objects[("Secret", "crm", RING)]["data"]["keyring.json"] == forged
    assert secret_writes(kube) == []
    assert sink.of("key.created") == [] and sink.of("key.shredded") == []


def test_a_shredded_entry_added_for_a_future_bucket_is_reported_and_blocks_nothing_silently(
) -> None:
    kube, sink = shredded_july()
    sink.records.clear()
    document = ring_json(kube)
    # March 2026 has no key yet (made ahead in February): marked "shredded", it would never
    # get one, and every application's Cipher would refuse to write a March record.
    document["shredded"].append({"id": 40, "bucket": "2026-03", "shredded": "2026-01-28T00:00:00Z"})
    forged = write_ring(kube, document)
    recorded = copy.deepcopy(status(kube)["encryption"]["shreddedBuckets"])
    kube.calls.clear()
    run(kube, sink, FEBRUARY)
    assert_reported_and_untouched(kube, sink, forged, "2026-03", "shredded")
    assert status(kube)["encryption"]["shreddedBuckets"] == recorded  # never taken in


def test_a_live_bucket_marked_shredded_with_its_key_removed_is_reported() -> None:
    kube, sink = shredded_july()
    sink.records.clear()
    document = ring_json(kube)
    december = next(k for k in document["keys"] if k.get("bucket") == "2025-12")
    document["keys"].remove(december)
    document["shredded"].append(
        {"id": december["id"], "bucket": "2025-12", "shredded": "2026-01-28T00:00:00Z"})
    forged = write_ring(kube, document)
    kube.calls.clear()
    run(kube, sink, DUE + timedelta(minutes=1))
    assert_reported_and_untouched(kube, sink, forged, f"key {december['id']}", "2025-12")
    gone = status(kube)["encryption"]["shreddedBuckets"]
    assert [g["bucket"] for g in gone] == ["2025-07"]


def test_a_shredded_entry_removed_is_reported_and_nothing_rotates_meanwhile() -> None:
    kube, sink = shredded_july()
    sink.records.clear()
    document = ring_json(kube)
    (july,) = document.pop("shredded")
    forged = write_ring(kube, document)
    kube.calls.clear()
    # Past keyRotation (30 days): a rotation is due, and would be made on a ring that no
    # longer says which ids were destroyed.
    run(kube, sink, T0 + timedelta(days=31))
    assert_reported_and_untouched(kube, sink, forged, f"key {july['id']}", "2025-07")
    assert ring(kube).primary == 1


def test_a_shredded_entry_given_another_bucket_is_reported() -> None:
    kube, sink = shredded_july()
    sink.records.clear()
    document = ring_json(kube)
    (july,) = document["shredded"]
    july["bucket"] = "2026-03"
    forged = write_ring(kube, document)
    kube.calls.clear()
    run(kube, sink, FEBRUARY)
    assert_reported_and_untouched(kube, sink, forged, f"key {july['id']}", "bucket")


def test_a_shredded_entry_given_another_time_is_reported() -> None:
    kube, sink = shredded_july()
    sink.records.clear()
    document = ring_json(kube)
    (july,) = document["shredded"]
    july["shredded"] = "2025-08-01T00:00:00Z"  # "destroyed" long before it expired
    forged = write_ring(kube, document)
    kube.calls.clear()
    run(kube, sink, DUE + timedelta(minutes=1))
    assert_reported_and_untouched(kube, sink, forged, f"key {july['id']}", "time")


def test_the_same_instant_written_another_way_is_no_change() -> None:
    kube, sink = shredded_july()
    document = ring_json(kube)
    (july,) = document["shredded"]
    instant = datetime.fromisoformat(july["shredded"].replace("Z", "+00:00"))
    july["shredded"] = instant.astimezone(
        datetime.now(UTC).astimezone().tzinfo).isoformat()  # an offset, the same instant
    write_ring(kube, document)
    run(kube, sink, DUE + timedelta(minutes=1))
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")


def test_a_destruction_retried_after_a_lost_ring_write_keeps_the_recorded_time() -> None:
    """Status listed the shredding at DUE, the ring write lost a race; the retry a minute
    later writes the ring's entry with the time status recorded, so ring and status agree."""
    kube, sink = destroyed_on_a_retry()
    (gone,) = ring(kube).shredded
    (listed,) = status(kube)["encryption"]["shreddedBuckets"]
    assert listed["shredded"] == "2026-01-28T00:00:00Z"
    assert gone.shredded == DUE
    run(kube, sink, DUE + timedelta(minutes=2))
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    kube.calls.clear()
    run(kube, sink, DUE + timedelta(minutes=3))
    assert kube.writes() == []


def test_an_adopted_ring_keeps_its_shredded_record() -> None:
    """A ring restored from a backup, adopted as the store asks, with a destroyed key: its
    shredded entries are recorded with it, and stay held to that record."""
    kube = adopted_ring_with_a_destroyed_key()
    run(kube, None, T0)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    (listed,) = status(kube)["encryption"]["shreddedBuckets"]
    assert (listed["keyId"], listed["bucket"]) == (2, "2025-06")
    run(kube, Sink(kube), T0 + timedelta(minutes=1))
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    assert 2 not in [key.id for key in ring(kube).keys]  # a bucket key got a fresh id


def test_new_ids_are_above_every_id_status_records_as_destroyed() -> None:
    """The ring's own list is what an attacker edits; the next id comes from the record too:
    a ring that lost the entry of its highest (destroyed) id never gives that id again."""
    ring_ = add_bucket_keys(generate_ring(T0), ("2026-01",), T0)  # keys 1, 2 (bucket)
    destroyed = shred_buckets(ring_, ("2026-01",), T0)
    record = KeyRingRecord.from_ring(
        destroyed, RING, shredded=tuple(ShreddedRecord.of(g) for g in destroyed.shredded)
    )  # fmt: skip
    assert record.next_id == 3
    forged = KeyRing(destroyed.primary, destroyed.keys)  # shredded[] removed
    assert rotate(forged, T0, next_id=record.next_id).primary == 3
    assert add_bucket_keys(forged, ("2026-02",), T0, next_id=record.next_id).keys[-1].id == 3
    assert rotate(forged, T0).primary == 2  # the ring alone would give id 2 again


def adopted_ring_with_a_destroyed_key() -> FakeKube:
    """A store asking to adopt a restored ring whose June 2025 key (id 2) was destroyed
    (June 2025 has expired at T0 under the category's retention)."""
    kube = cluster()
    restored = shred_buckets(
        add_bucket_keys(generate_ring(T0 - timedelta(days=200)), ("2025-06",), T0),
        ("2025-06",), T0 - timedelta(days=1),
    )  # fmt: skip
    kube._store({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": RING, "namespace": "crm"}, "data": serialise(restored),
    })  # fmt: skip
    store = kube.objects[("PersonalDataStore", *KEY)]
    store["spec"]["encryption"] = {"adoptExistingKeyRing": True}
    return kube


def test_a_ring_the_previous_release_adopted_is_no_change_after_the_upgrade() -> None:
    """The previous release recorded an adopted ring's keys alone (no shreddedBuckets for its
    destroyed ones). After the upgrade, that expired bucket's entry is taken into the record,
    not reported as KeyMaterialChanged ("restore the Secret from a backup") on every such store."""
    kube = adopted_ring_with_a_destroyed_key()
    run(kube, None, T0)
    encryption = kube.objects[("PersonalDataStore", *KEY)]["status"]["encryption"]
    del encryption["shreddedBuckets"]  # the status as the previous release wrote it
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    (listed,) = status(kube)["encryption"]["shreddedBuckets"]
    assert (listed["keyId"], listed["bucket"]) == (2, "2025-06")
    assert sink.of("key.shredded") == []  # taken in, not a destruction of this operator's


def test_a_destruction_the_previous_release_retried_keeps_its_later_time_after_the_upgrade(
) -> None:
    """The previous release wrote a retried destruction's ring entry at the retry's time,
    after the time status recorded the shredding: a key is destroyed at or after its shredding
    is recorded, so that ring is no change after the upgrade (only an earlier time is)."""
    kube, sink = destroyed_on_a_retry()
    document = ring_json(kube)
    (july,) = document["shredded"]
    july["shredded"] = "2026-01-28T00:01:00Z"  # the retry's time, as the previous release wrote
    write_ring(kube, document)
    run(kube, sink, DUE + timedelta(minutes=2))
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")

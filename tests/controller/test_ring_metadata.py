"""What rotation and crypto-shredding read from a ring entry besides its material: its
creation time and its bucket. Someone who may write the ring Secret (not the store's status)
edits them; the operator compares them with what it recorded in status, reports the change
(KeyMaterialChanged, naming the key and the field) and decides nothing from the edited entry.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import timedelta
from typing import Any

from dataward.keys.ring import parse_ring
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import (
    KEY,
    RING,
    T0,
    conditions,
    reconciler,
    ring_json,
    sample_cluster,
    status,
)
from tests.controller.test_shredding import BEFORE_DUE, DUE, Sink, cluster, ring, run


def write_ring(kube: FakeKube, document: dict[str, Any]) -> str:
    """Replace the ring Secret's keyring.json as someone who may write the Secret would."""
    forged = base64.b64encode(json.dumps(document).encode()).decode()
    kube.objects[("Secret", "crm", RING)]["data"]["keyring.json"] = forged
    return forged


def message_of(kube: FakeKube) -> str:
    (message,) = [c["message"] for c in status(kube)["conditions"]
                  if c["type"] == "EncryptionKeyReady"]  # fmt: skip
    return str(message)


def materials(kube: FakeKube) -> list[str]:
    return [key["material"] for key in ring_json(kube)["keys"]]


def test_a_creation_time_moved_forward_is_reported_and_does_not_postpone_rotation() -> None:
    kube = sample_cluster(FakeKube())
    reconciler(kube).reconcile(KEY, now=T0)  # key 1, created T0; keyRotation 30d
    recorded = copy.deepcopy(status(kube)["encryption"])
    document = ring_json(kube)
    # Someone who may write the Secret makes key 1 look 29 days younger than it is.
    document["keys"][0]["created"] = "2026-02-08T08:00:00Z"
    forged = write_ring(kube, document)
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=31))  # key 1 is 31 days old
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyMaterialChanged")
    message = message_of(kube)
    assert "key 1" in message and "created" in message
    assert not any(m in json.dumps(status(kube)) for m in materials(kube))
    # The forged time is neither recorded nor read as "fresh"; nothing is written to the ring.
    encryption = status(kube)["encryption"]
    assert encryption["keys"] == recorded["keys"]
    assert encryption["primaryKeyCreated"] == "2026-01-10T08:00:00Z"
    assert encryption.get("nextRotation") in (None, recorded["nextRotation"])
    assert kube.objects[("Secret", "crm", RING)]["data"]["keyring.json"] == forged
    assert [c for c in kube.writes() if c[1] == "Secret"] == []


def test_swapped_bucket_labels_destroy_nothing_and_are_reported() -> None:
    kube = cluster()
    run(kube, None, T0)
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))  # bucket keys 2025-07 ... 2026-02
    document = ring_json(kube)
    by_bucket = {key.get("bucket"): key for key in document["keys"]}
    july, december = by_bucket["2025-07"], by_bucket["2025-12"]
    live = december["id"]
    # July's records expire at DUE; December's live on. Swap the labels: the shredding due
    # for July would destroy December's key, and July's data would stay readable.
    july["bucket"], december["bucket"] = "2025-12", "2025-07"
    forged = write_ring(kube, document)
    run(kube, sink, DUE)
    assert sink.of("key.shredded") == []
    assert kube.objects[("Secret", "crm", RING)]["data"]["keyring.json"] == forged
    assert live in [key.id for key in ring(kube).keys]
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyMaterialChanged")
    message = message_of(kube)
    assert f"key {live}" in message and "bucket" in message
    assert not any(m in json.dumps(status(kube)) for m in materials(kube))
    # The record keeps the buckets the operator gave the keys.
    recorded = {k["id"]: k.get("bucket") for k in status(kube)["encryption"]["keys"]}
    assert recorded[live] == "2025-12"


def test_a_bucket_relabelled_to_an_expired_one_is_not_shredded() -> None:
    """A live bucket's key relabelled as an expired bucket that has no key (June 2025, whose
    records all expired before the first bucket key was made): the shredding due for June
    would destroy December's key."""
    kube = cluster()
    run(kube, None, T0)
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    document = ring_json(kube)
    december = next(k for k in document["keys"] if k.get("bucket") == "2025-12")
    december["bucket"] = "2025-06"
    write_ring(kube, document)
    run(kube, sink, BEFORE_DUE)  # June is due; July (the only other candidate) not yet
    assert sink.of("key.shredded") == []
    assert december["id"] in [key.id for key in ring(kube).keys]
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyMaterialChanged")


def old_format_record(document: dict[str, Any]) -> list[dict[str, Any]]:
    """status.encryption.keys as the previous version wrote them: id, created (RFC 3339 to
    the second, Z), a material-only fingerprint (v1 domain) and the bucket."""
    domain = b"dataward.io/key-fingerprint/v1\x00"
    return [
        {
            "id": key["id"],
            "created": key["created"],
            "fingerprint": hashlib.sha256(
                domain + base64.b64decode(key["material"])).hexdigest()[:16],
            **({"bucket": key["bucket"]} if key.get("bucket") else {}),
        }
        for key in document["keys"]
    ]


def test_an_upgrade_from_material_only_records_stays_ready_and_writes_nothing() -> None:
    kube = cluster()
    run(kube, None, T0)
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    encryption = kube.objects[("PersonalDataStore", *KEY)]["status"]["encryption"]
    encryption["keys"] = old_format_record(ring_json(kube))
    run(kube, sink, T0 + timedelta(minutes=2))
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    kube.calls.clear()
    run(kube, sink, T0 + timedelta(minutes=3))
    assert kube.writes() == []


def test_an_adopted_ring_with_sub_second_offset_times_stays_ready_after_the_upgrade() -> None:
    """A ring restored from a backup and adopted may carry times with fractions and an
    offset; the previous version recorded them to the second in UTC. Same instant to the
    second: no change."""
    kube = sample_cluster(FakeKube())
    reconciler(kube).reconcile(KEY, now=T0)
    document = ring_json(kube)
    assert document["keys"][0]["created"] == "2026-01-10T08:00:00Z"
    document["keys"][0]["created"] = "2026-01-10T09:00:00.250000+01:00"
    write_ring(kube, document)
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    assert status(kube)["encryption"]["keys"][0]["created"] == "2026-01-10T08:00:00Z"
    kube.calls.clear()
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert kube.writes() == []
    assert parse_ring(kube.objects[("Secret", "crm", RING)]["data"]).primary == 1


def test_a_creation_time_changed_before_status_confirmed_the_ring_is_not_recorded() -> None:
    """The status write that confirms a new ring was lost (status still says pending): the
    ring is the operator's by its fingerprints, but an edited creation time is not taken
    into the record then either."""
    kube = sample_cluster(FakeKube())
    reconciler(kube).reconcile(KEY, now=T0)
    kube.objects[("PersonalDataStore", *KEY)]["status"]["encryption"]["pending"] = True
    document = ring_json(kube)
    document["keys"][0]["created"] = "2026-02-08T08:00:00Z"
    write_ring(kube, document)
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(days=31))
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyMaterialChanged")
    assert status(kube)["encryption"]["keys"][0]["created"] == "2026-01-10T08:00:00Z"

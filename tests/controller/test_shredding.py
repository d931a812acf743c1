"""Crypto-shredding in the reconciler, against an in-memory API and an evidence sink.

The store keeps support inquiries 180 days (its own retention; the category's keyBuckets:
month). At T0 = 2026-01-10 the oldest live month is July 2025, whose last record (Jul 31
23:59:59.999999) expires 180 days later, on Jan 27 2026 at 23:59:59.999999: worked by hand.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from dataward.controller.kube import Kube, KubeError
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.evidence.payloads import validate
from dataward.keys import Cipher, KeyShreddedError
from dataward.keys.ring import add_bucket_keys, parse_ring, serialise
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import (
    KEY,
    RING,
    T0,
    conditions,
    sample_cluster,
    status,
)
from tests.model import samples

JULY, AUGUST = datetime(2025, 7, 20, tzinfo=UTC), datetime(2025, 8, 3, tzinfo=UTC)
BEFORE_DUE = datetime(2026, 1, 27, 23, 59, 59, tzinfo=UTC)
DUE = datetime(2026, 1, 28, tzinfo=UTC)


class Sink:
    """The evidence log: validates like EvidenceLog.append, and sees the ring at that moment."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.buckets_when_appended: list[tuple[str, ...]] = []
        self.fail = False
        self.fail_kinds: set[str] = set()  # kinds refused while the rest is written
        self.after_shredded: Callable[[], None] | None = None  # runs after each key.shredded

    def append(self, kind: str, subject: str, payload: Mapping[str, Any]) -> None:
        if self.fail or kind in self.fail_kinds:
            raise ConnectionError("evidence database down")
        self.records.append((kind, validate(kind, subject, payload)))
        if kind == "key.shredded":
            self.buckets_when_appended.append(ring(self.kube).buckets)
            if self.after_shredded is not None:
                self.after_shredded()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [payload for k, payload in self.records if k == kind]


def cluster(suspend: bool = False) -> FakeKube:
    policy = copy.deepcopy(samples.POLICY)
    for category in policy["spec"]["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["keyBuckets"] = "month"
    store = copy.deepcopy(samples.STORE)
    store["spec"]["purge"] = {"suspend": suspend}
    return sample_cluster(FakeKube(), policy, store)


def ring(kube: FakeKube) -> Any:
    return parse_ring(kube.objects[("Secret", "crm", RING)]["data"])


@contextmanager
def ring_writes_lose_a_race(kube: FakeKube) -> Iterator[None]:
    """Someone changes the ring Secret right before each of the operator's writes of it."""
    real_replace = kube.replace

    def racing_replace(obj: Any) -> dict[str, Any]:
        kube.objects[("Secret", "crm", RING)]["metadata"]["resourceVersion"] = "changed"
        return real_replace(obj)

    kube.replace = racing_replace  # type: ignore[method-assign]
    try:
        yield
    finally:
        kube.replace = real_replace  # type: ignore[method-assign]


class Synced(Reconciler):
    """A reconciler whose API server's clock agrees with its own: each answer's Date is the
    `now` of the pass."""

    def reconcile(self, key: tuple[str, str], now: datetime | None = None) -> datetime | None:
        cast(FakeKube, self.kube).server_time = now
        return super().reconcile(key, now=now)


def run(
    kube: FakeKube, sink: Sink | None, now: datetime, server: timedelta = timedelta(0)
) -> datetime | None:
    """One reconcile at the operator's `now`, the API server's clock `server` off it."""
    kube.server_time = now + server
    settings = ReconcileSettings(evidence=sink)
    return Reconciler(cast(Kube, kube), settings).reconcile(KEY, now=now)


@pytest.fixture
def kube() -> FakeKube:
    kube = cluster()
    run(kube, None, T0)  # creates the ring; its status confirms it
    return kube


def test_bucket_keys_are_made_ahead_and_recorded(kube: FakeKube) -> None:
    sink = Sink(kube)
    due = run(kube, sink, T0 + timedelta(minutes=1))
    # Every month with live records (July 2025 on) and the one after now's.
    assert ring(kube).buckets == ("2025-07", "2025-08", "2025-09", "2025-10", "2025-11",
                                  "2025-12", "2026-01", "2026-02")  # fmt: skip
    assert ring(kube).primary == 1  # the rotating key still encrypts untriggered data
    assert [p["bucket"] for p in sink.of("key.created")] == list(ring(kube).buckets)
    encryption = status(kube)["encryption"]
    assert [k.get("bucket") for k in encryption["keys"]][:3] == [None, "2025-07", "2025-08"]
    assert "material" not in str(encryption) and "shreddedBuckets" not in encryption
    assert "pendingKeys" not in encryption  # cleared by the status write that follows
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    assert due is not None and due <= DUE  # it wakes up when July expires
    # Nothing more to do: no write, no record.
    kube.calls.clear()
    run(kube, sink, T0 + timedelta(minutes=2))
    assert [c for c in kube.writes() if c[1] == "Secret"] == []


def test_a_bucket_is_shredded_once_its_last_record_expired_evidence_first(
    kube: FakeKube,
) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    cipher = Cipher(ring(kube))
    july = cipher.encrypt(b"inquiry of July", b"support:1", trigger=JULY)
    august = cipher.encrypt(b"inquiry of August", b"support:2", trigger=AUGUST)

    run(kube, sink, BEFORE_DUE)  # one second early: July's last record is still live
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []

    run(kube, sink, DUE)
    (shredded,) = sink.of("key.shredded")
    assert (shredded["bucket"], shredded["reason"]) == ("2025-07", "BucketExpired")
    assert shredded["expired"] == "2026-01-27T23:59:59.999999Z"
    assert "2025-07" in sink.buckets_when_appended[0]  # recorded while the key still existed
    after = ring(kube)
    assert "2025-07" not in after.buckets and after.shredded[0].bucket == "2025-07"
    assert after.shredded[0].id == shredded["keyId"]
    with pytest.raises(KeyShreddedError):
        Cipher(after).decrypt(july, b"support:1")
    assert Cipher(after).decrypt(august, b"support:2") == b"inquiry of August"
    encryption = status(kube)["encryption"]
    assert encryption["shreddedBuckets"][0]["bucket"] == "2025-07"
    assert shredded["keyId"] not in [k["id"] for k in encryption["keys"]]
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    assert "2026-03" not in after.buckets  # still January: February is the one ahead
    # Settled: the next pass neither writes the ring nor records again.
    kube.calls.clear()
    run(kube, sink, DUE + timedelta(minutes=1))
    assert [c for c in kube.writes() if c[1] == "Secret"] == []
    assert len(sink.of("key.shredded")) == 1


def test_no_record_no_destruction(kube: FakeKube) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    sink.fail = True
    run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets and ring(kube).shredded == ()
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    (message,) = [c["message"] for c in status(kube)["conditions"]
                  if c["type"] == "EncryptionKeyReady"]  # fmt: skip
    assert "2025-07" in message and "evidence log: ConnectionError" in message
    sink.fail = False
    run(kube, sink, DUE + timedelta(minutes=1))
    assert "2025-07" not in ring(kube).buckets and len(sink.of("key.shredded")) == 1
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")


def test_without_an_evidence_log_nothing_is_destroyed(kube: FakeKube) -> None:
    run(kube, None, T0 + timedelta(minutes=1))
    run(kube, None, DUE)
    assert "2025-07" in ring(kube).buckets
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingNeedsEvidenceLog")
    assert conditions(kube)["Ready"][0] == "False"


def test_a_legal_hold_keeps_the_key_and_says_so() -> None:
    kube = cluster(suspend=True)
    run(kube, None, T0)
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyShreddingHeld")


def test_a_concurrent_change_of_the_ring_wins_and_the_record_is_not_repeated(
    kube: FakeKube,
) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    with ring_writes_lose_a_race(kube):
        run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets  # the compare-and-swap failed: nothing destroyed
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    run(kube, sink, DUE + timedelta(minutes=1))
    assert "2025-07" not in ring(kube).buckets
    assert len(sink.of("key.shredded")) == 1  # recorded once, destroyed on the retry


def test_a_bucket_key_deleted_outside_the_operator_is_a_change_not_a_shredding(
    kube: FakeKube,
) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    secret = kube.objects[("Secret", "crm", RING)]
    current = ring(kube)
    tampered = type(current)(current.primary, tuple(k for k in current.keys
                                                    if k.bucket != "2025-09"))  # fmt: skip
    secret["data"] = serialise(tampered)
    run(kube, sink, T0 + timedelta(minutes=2))
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyMaterialChanged")
    assert sink.of("key.shredded") == []


def test_an_unreadable_policy_destroys_nothing(kube: FakeKube) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    kube.fail_gets["PrivacyPolicy"] = 500
    run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []


def test_evidence_and_status_never_carry_key_material(kube: FakeKube) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    run(kube, sink, DUE)
    materials = [base64.b64encode(k.material).decode() for k in ring(kube).keys]
    text = str(sink.records) + str(status(kube))
    assert not any(m in text for m in materials)


def test_a_bucket_key_planted_in_the_ring_is_reported_never_adopted_or_shredded(
    kube: FakeKube,
) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    secret = kube.objects[("Secret", "crm", RING)]
    # Someone who may write the Secret adds a key they know for next month.
    planted = add_bucket_keys(ring(kube), ("2026-03",), T0)
    secret["data"] = serialise(planted)
    run(kube, sink, T0 + timedelta(minutes=2))
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyMaterialChanged")
    (message,) = [c["message"] for c in status(kube)["conditions"]
                  if c["type"] == "EncryptionKeyReady"]  # fmt: skip
    assert "bucket 2026-03 was added outside the operator" in message
    assert "2026-03" not in [k.get("bucket") for k in status(kube)["encryption"]["keys"]]
    run(kube, sink, DUE)  # a changed ring is reported, not acted on
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []


def test_bucket_keys_whose_status_write_was_lost_are_still_the_operators(kube: FakeKube) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    # As if the operator stopped between the ring write and the status write that follows:
    # status has the keys only as pendingKeys.
    encryption = kube.objects[("PersonalDataStore", *KEY)]["status"]["encryption"]
    encryption["pendingKeys"] = [k for k in encryption["keys"] if k.get("bucket")]
    encryption["keys"] = [k for k in encryption["keys"] if not k.get("bucket")]
    run(kube, sink, T0 + timedelta(minutes=2))
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    encryption = status(kube)["encryption"]
    assert "pendingKeys" not in encryption and len(encryption["keys"]) == 9


class StaleCache:
    """The watch-fed caches as they were before the last edits: reads answer from a copy."""

    def __init__(self, kube: FakeKube) -> None:
        self.copy = copy.deepcopy(kube)
        self.live = kube  # Secrets are not cached here: read by name, as without a watch
        self.ticks = 0

    def owns(self, namespace: str | None) -> bool:
        return True

    def cached(self, kind: str) -> bool:
        return kind != "Secret"

    def generation(self, kind: str, namespace: str | None) -> tuple[int, bool]:
        self.ticks += 1  # never the same: no memo outlives a call
        return self.ticks, True

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.copy.get(kind, namespace, name)

    def held(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.copy.get(kind, namespace, name) if self.cached(kind) else None

    def list(self, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        return self.copy.list(kind, namespace, label_selector)

    def selecting(self, kind: str, namespace: str, pods: Any) -> list[dict[str, Any]]:
        return self.copy.list(kind, namespace)  # every policy may select: the caller filters

    def changed_since(self, kind: str, namespace: str | None, generation: int) -> None:
        return None  # not known: whatever reads it rebuilds

    def store_written(self, obj: Mapping[str, Any]) -> None:
        pass  # the watch has not caught up

    def watching(self, kind: str, namespace: str | None) -> bool:
        return False

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        return self.live.exists(kind, namespace, name)


def set_hold(kube: FakeKube, held: bool = True) -> None:
    """A legal hold set (or lifted), as `kubectl patch` does: spec.purge.suspend, a new
    generation."""
    obj = kube.objects[("PersonalDataStore", *KEY)]
    obj["spec"]["purge"]["suspend"] = held
    obj["metadata"]["generation"] = int(obj["metadata"]["generation"]) + 1
    kube._store(obj)


def lift_hold(kube: FakeKube, reconcile: Callable[[datetime], object], at: datetime) -> None:
    """Lift the hold. The pass at `at` still reads the verdicts recorded under it (the hold
    suspended the purge CronJob: PurgeScheduled False), for the spec before the edit: it
    destroys nothing, leaves EncryptionKeyReady as it was (a wait, not a finding), and
    records PurgeScheduled True again; the next pass may destroy."""
    before = conditions(kube)["EncryptionKeyReady"]
    set_hold(kube, held=False)
    reconcile(at)
    assert "2025-07" in ring(kube).buckets
    assert conditions(kube)["EncryptionKeyReady"] == before
    assert conditions(kube)["PurgeScheduled"][0] == "True"


def test_a_hold_the_cache_has_not_seen_yet_stops_the_destruction(kube: FakeKube) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    stale = StaleCache(kube)  # the cache: no hold
    set_hold(kube)  # the API: held, a moment before the scheduled destruction
    settings = ReconcileSettings(evidence=sink)
    Synced(cast(Kube, kube), settings, caches=cast(Any, stale)).reconcile(KEY, now=DUE)
    assert "2025-07" in ring(kube).buckets and ring(kube).shredded == ()
    assert sink.of("key.shredded") == []  # not even recorded as destroyed
    assert "shreddedBuckets" not in status(kube)["encryption"]
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyShreddingHeld")


def test_an_unreadable_store_at_destruction_time_destroys_nothing(kube: FakeKube) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    stale = StaleCache(kube)
    kube.fail_gets["PersonalDataStore"] = 403  # only the fresh read fails; the cache answers
    settings = ReconcileSettings(evidence=sink)
    Synced(cast(Kube, kube), settings, caches=cast(Any, stale)).reconcile(KEY, now=DUE)
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")


def test_a_statute_the_cache_has_not_seen_yet_stops_the_destruction(kube: FakeKube) -> None:
    # A moment before the scheduled destruction the privacy officer adds a statute to the
    # category (in force at once): its records must now be kept years. The cache still has
    # the policy without it.
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    stale = StaleCache(kube)
    policy = next(obj for (kind, _, _), obj in kube.objects.items() if kind == "PrivacyPolicy")
    for category in policy["spec"]["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["statutory"] = {"period": "5y", "statute": "Commercial Act, Article 33"}
    policy["metadata"]["generation"] = int(policy["metadata"].get("generation") or 1) + 1
    kube._store(policy)
    settings = ReconcileSettings(evidence=sink)
    Synced(cast(Kube, kube), settings, caches=cast(Any, stale)).reconcile(KEY, now=DUE)
    assert "2025-07" in ring(kube).buckets and ring(kube).shredded == ()
    assert sink.of("key.shredded") == []  # not even recorded as destroyed
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    # Read as the watch brings it: a statutory category; the key stays.
    run(kube, sink, DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets and sink.of("key.shredded") == []


# --- the evidence never claims a destruction that a hold stopped ---------------------------


def standing_claims(sink: Sink) -> set[int]:
    """The key ids the evidence log says were destroyed: a key.shredded record that no later
    key.shred.cancelled record of the same key withdrew."""
    claims: set[int] = set()
    for kind, payload in sink.records:
        if kind == "key.shredded":
            claims.add(payload["keyId"])
        elif kind == "key.shred.cancelled":
            claims.discard(payload["keyId"])
    return claims


def assert_evidence_matches_the_ring(kube: FakeKube, sink: Sink) -> None:
    present = {key.id for key in ring(kube).keys}
    destroyed = {gone.id for gone in ring(kube).shredded}
    assert not standing_claims(sink) & present, "the evidence says destroyed; the key is there"
    assert destroyed <= standing_claims(sink), "a key left the ring without a standing record"


def test_a_hold_set_while_the_destruction_is_recorded_aborts_it_and_withdraws_the_record(
    kube: FakeKube,
) -> None:
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    july = ring(kube).bucket_key("2025-07")
    assert july is not None
    sink.after_shredded = lambda: set_hold(kube)  # after the hold was read, before the act
    run(kube, sink, DUE)
    sink.after_shredded = None
    assert "2025-07" in ring(kube).buckets and ring(kube).shredded == ()  # the key stays ...
    assert_evidence_matches_the_ring(kube, sink)  # ... and the evidence says so
    assert "shreddedBuckets" not in status(kube)["encryption"]
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    (cancelled,) = sink.of("key.shred.cancelled")
    assert (cancelled["keyId"], cancelled["bucket"], cancelled["reason"]) == (
        july.id, "2025-07", "LegalHold"
    )
    # Held: the next pass reads the hold and keeps the key, saying why; no more records.
    run(kube, sink, DUE + timedelta(minutes=1))
    assert (len(sink.of("key.shredded")), len(sink.of("key.shred.cancelled"))) == (1, 1)
    assert "2025-07" in ring(kube).buckets
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyShreddingHeld")
    # Lifted: recorded again, then destroyed; the evidence ends by saying destroyed.
    lift_hold(kube, lambda at: run(kube, sink, at), DUE + timedelta(minutes=2))
    run(kube, sink, DUE + timedelta(minutes=3))
    assert "2025-07" not in ring(kube).buckets
    assert len(sink.of("key.shredded")) == 2 and len(sink.of("key.shred.cancelled")) == 1
    assert_evidence_matches_the_ring(kube, sink)


def test_a_hold_after_the_status_recorded_the_shredding_withdraws_it(kube: FakeKube) -> None:
    """The record and shreddedBuckets are written, the ring write loses a race, and a hold
    arrives before the retry: the key stays, and neither evidence nor status says destroyed."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    with ring_writes_lose_a_race(kube):
        run(kube, sink, DUE)
    assert [g["bucket"] for g in status(kube)["encryption"]["shreddedBuckets"]] == ["2025-07"]
    set_hold(kube)
    run(kube, sink, DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets
    assert_evidence_matches_the_ring(kube, sink)
    assert "shreddedBuckets" not in status(kube)["encryption"]
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyShreddingHeld")
    run(kube, sink, DUE + timedelta(minutes=2))  # still held: withdrawn once
    assert len(sink.of("key.shred.cancelled")) == 1
    lift_hold(kube, lambda at: run(kube, sink, at), DUE + timedelta(minutes=3))
    run(kube, sink, DUE + timedelta(minutes=4))
    assert "2025-07" not in ring(kube).buckets
    assert len(sink.of("key.shredded")) == 2
    assert_evidence_matches_the_ring(kube, sink)


def test_a_listed_shredding_no_longer_due_is_withdrawn_not_carried_out_later(
    kube: FakeKube,
) -> None:
    """July's destruction is recorded and listed, but its ring write loses a race; before the
    retry the store's retention is lengthened to 200 days, under which July's records are
    live until Feb 16 2026 at 23:59:59.999999 (Jul 31 + 200 days, worked by hand). The key
    stays: neither evidence nor status may go on saying it was destroyed (nor, once July is
    due, date the destruction to January 28)."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    with ring_writes_lose_a_race(kube):
        run(kube, sink, DUE)
    assert [g["bucket"] for g in status(kube)["encryption"]["shreddedBuckets"]] == ["2025-07"]
    obj = kube.objects[("PersonalDataStore", *KEY)]
    obj["spec"]["retention"] = "200d"
    obj["metadata"]["generation"] = int(obj["metadata"]["generation"]) + 1
    kube._store(obj)
    run(kube, sink, DUE + timedelta(minutes=1))
    run(kube, sink, DUE + timedelta(minutes=2))
    assert "2025-07" in ring(kube).buckets
    assert_evidence_matches_the_ring(kube, sink)
    assert "shreddedBuckets" not in status(kube)["encryption"]
    (cancelled,) = sink.of("key.shred.cancelled")
    assert (cancelled["bucket"], cancelled["reason"]) == ("2025-07", "NotExpired")
    # Due under 200 days: recorded anew, destroyed, and dated then.
    run(kube, sink, datetime(2026, 2, 17, tzinfo=UTC))
    assert "2025-07" not in ring(kube).buckets
    assert [p["bucket"] for p in sink.of("key.shredded")] == ["2025-07", "2025-07"]
    assert_evidence_matches_the_ring(kube, sink)
    (gone,) = [g for g in ring(kube).shredded if g.bucket == "2025-07"]
    assert gone.shredded == datetime(2026, 2, 17, tzinfo=UTC)


def test_a_live_bucket_listed_as_shredded_in_status_is_withdrawn(kube: FakeKube) -> None:
    """Someone who may write the store's status lists September's key (live until March 29
    2026) in shreddedBuckets. Left there, it would be carried out once September is due,
    with no key.shredded record of its own and dated today; it is withdrawn at once."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    september = ring(kube).bucket_key("2025-09")
    assert september is not None
    obj = kube.objects[("PersonalDataStore", *KEY)]
    obj["status"]["encryption"]["shreddedBuckets"] = [
        {"bucket": "2025-09", "keyId": september.id, "shredded": "2026-01-10T08:02:00Z"}
    ]
    kube._store(obj)
    run(kube, sink, T0 + timedelta(minutes=3))
    assert "shreddedBuckets" not in status(kube)["encryption"]
    assert "2025-09" in ring(kube).buckets
    (cancelled,) = sink.of("key.shred.cancelled")
    assert (cancelled["keyId"], cancelled["reason"]) == (september.id, "NotExpired")


def test_a_withdrawal_the_evidence_log_refused_is_written_when_it_is_back(kube: FakeKube) -> None:
    """A hold arrives while a destruction is being recorded (the status write fails with 409),
    and the evidence database goes down right then: the key.shred.cancelled record is not
    written, and the log claims a key destroyed that is still in the ring. One operator
    (one reconciler) on: it keeps owing that withdrawal, says so, and writes it once the log
    is back; never a second one."""
    sink = Sink(kube)
    reconciler = Synced(cast(Kube, kube), ReconcileSettings(evidence=sink))
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))

    def hold_then_log_down() -> None:
        set_hold(kube)
        sink.fail = True  # down after the key.shredded record, before the withdrawal

    sink.after_shredded = hold_then_log_down
    reconciler.reconcile(KEY, now=DUE)
    sink.after_shredded = None
    assert "2025-07" in ring(kube).buckets
    assert sink.of("key.shred.cancelled") == []  # the claim stands, the key is there
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    # Still down: still owed, still said, nothing destroyed; then back.
    due = reconciler.reconcile(KEY, now=DUE + timedelta(minutes=1))
    assert due is not None and due <= DUE + timedelta(minutes=2), "retried soon, not at the hold"
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    sink.fail = False
    reconciler.reconcile(KEY, now=DUE + timedelta(minutes=2))
    assert_evidence_matches_the_ring(kube, sink)
    (cancelled,) = sink.of("key.shred.cancelled")
    assert (cancelled["bucket"], cancelled["reason"]) == ("2025-07", "LegalHold")
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyShreddingHeld")
    reconciler.reconcile(KEY, now=DUE + timedelta(minutes=3))
    assert len(sink.of("key.shred.cancelled")) == 1
    # Lifted: recorded again and destroyed; the evidence ends by saying so.
    lift_hold(kube, lambda at: reconciler.reconcile(KEY, now=at), DUE + timedelta(minutes=4))
    reconciler.reconcile(KEY, now=DUE + timedelta(minutes=5))
    assert "2025-07" not in ring(kube).buckets
    assert_evidence_matches_the_ring(kube, sink)


def test_no_key_is_destroyed_while_a_withdrawal_of_its_claim_is_owed(kube: FakeKube) -> None:
    """The hold is lifted while the withdrawal is still owed: the key is not destroyed (its
    first claim would then date the destruction to before it happened) until the withdrawal
    is written; then it is recorded anew and destroyed."""
    sink = Sink(kube)
    reconciler = Synced(cast(Kube, kube), ReconcileSettings(evidence=sink))
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))

    def hold_then_withdrawals_refused() -> None:
        set_hold(kube)
        sink.fail_kinds = {"key.shred.cancelled"}

    sink.after_shredded = hold_then_withdrawals_refused
    reconciler.reconcile(KEY, now=DUE)
    sink.after_shredded = None
    set_hold(kube, held=False)
    reconciler.reconcile(KEY, now=DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets, "destroyed on a claim still owed a withdrawal"
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    assert [kind for kind, _ in sink.records if kind.startswith("key.shred")] == ["key.shredded"]
    sink.fail_kinds = set()
    reconciler.reconcile(KEY, now=DUE + timedelta(minutes=2))  # withdraws, then destroys
    assert "2025-07" not in ring(kube).buckets
    assert_evidence_matches_the_ring(kube, sink)
    kinds = [kind for kind, _ in sink.records if kind.startswith("key.shred")]
    assert kinds == ["key.shredded", "key.shred.cancelled", "key.shredded"]


# --- what is owed survives a restart ----------------------------------------------------------


class Crash(BaseException):
    """The operator's process stops here (not an Exception: nothing in it catches this)."""


def restarted(kube: FakeKube, sink: Sink) -> Reconciler:
    """A fresh operator process: nothing of an earlier Reconciler's memory."""
    return Synced(cast(Kube, kube), ReconcileSettings(evidence=sink))


def shred_kinds(sink: Sink) -> list[str]:
    return [kind for kind, _ in sink.records if kind.startswith("key.shred")]


def test_a_withdrawal_owed_when_the_operator_restarts_is_still_written(kube: FakeKube) -> None:
    """As above, but the operator restarts while the evidence database is down: the new
    process still owes the withdrawal (says so, destroys nothing, not even once the hold is
    lifted) and writes it once the log is back, before it records and destroys the key anew."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))

    def hold_then_log_down() -> None:
        set_hold(kube)
        sink.fail = True

    sink.after_shredded = hold_then_log_down
    run(kube, sink, DUE)
    sink.after_shredded = None
    assert shred_kinds(sink) == ["key.shredded"]  # the claim stands, the key is there
    # Restarted during the outage: still owed and said, while held ...
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    (message,) = [c["message"] for c in status(kube)["conditions"]
                  if c["type"] == "EncryptionKeyReady"]  # fmt: skip
    assert "2025-07" in message
    # ... and once the hold is lifted, still during the outage (and restarted again).
    set_hold(kube, held=False)
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=2))
    assert "2025-07" in ring(kube).buckets
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    # The log is back: withdrawn first, then recorded anew and destroyed.
    sink.fail = False
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=3))
    assert shred_kinds(sink) == ["key.shredded", "key.shred.cancelled", "key.shredded"]
    (cancelled,) = sink.of("key.shred.cancelled")
    assert (cancelled["bucket"], cancelled["reason"]) == ("2025-07", "LegalHold")
    assert "2025-07" not in ring(kube).buckets
    assert_evidence_matches_the_ring(kube, sink)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
    assert "owedWithdrawals" not in status(kube)["encryption"]
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=4))
    assert len(shred_kinds(sink)) == 3  # settled: nothing written twice


def _stop_after_the_shredded_record(kube: FakeKube, sink: Sink) -> None:
    """A pass at DUE whose process stops right after its key.shredded record."""

    def crash() -> None:
        raise Crash

    sink.after_shredded = crash
    with pytest.raises(Crash):
        run(kube, sink, DUE)
    sink.after_shredded = None


def test_a_crash_right_after_the_shredded_record_is_withdrawn_by_the_next_process(
    kube: FakeKube,
) -> None:
    """The process stops between the key.shredded record and the status write that lists
    it, and a hold is set before it comes back: the key stays, and the new process withdraws
    the record it cannot know from memory."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))

    _stop_after_the_shredded_record(kube, sink)
    set_hold(kube)
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets
    assert shred_kinds(sink) == ["key.shredded", "key.shred.cancelled"]
    (cancelled,) = sink.of("key.shred.cancelled")
    assert (cancelled["bucket"], cancelled["reason"]) == ("2025-07", "LegalHold")
    assert_evidence_matches_the_ring(kube, sink)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyShreddingHeld")
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=2))
    assert len(shred_kinds(sink)) == 2
    lift_hold(kube, lambda at: restarted(kube, sink).reconcile(KEY, now=at),
              DUE + timedelta(minutes=3))  # fmt: skip
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=4))
    assert "2025-07" not in ring(kube).buckets
    assert_evidence_matches_the_ring(kube, sink)


def test_a_withdrawal_owed_that_the_cache_has_not_seen_yet_is_not_recorded_over(
    kube: FakeKube,
) -> None:
    """One replica stops right after a key.shredded record; the next leader's cache does not
    have that replica's last status write yet. It records nothing over the debt (the fresh
    read before any record shows it); once its cache has it, it withdraws the record (why
    the key stayed is not known: Interrupted), then records the destruction anew."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    stale = StaleCache(kube)  # the new leader's cache: from before the stop

    _stop_after_the_shredded_record(kube, sink)
    settings = ReconcileSettings(evidence=sink)
    Synced(cast(Kube, kube), settings, caches=cast(Any, stale)).reconcile(
        KEY, now=DUE + timedelta(minutes=1)
    )
    assert "2025-07" in ring(kube).buckets and shred_kinds(sink) == ["key.shredded"]
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=2))
    assert shred_kinds(sink) == ["key.shredded", "key.shred.cancelled", "key.shredded"]
    assert sink.of("key.shred.cancelled")[0]["reason"] == "Interrupted"
    assert "2025-07" not in ring(kube).buckets
    assert_evidence_matches_the_ring(kube, sink)
    assert "owedWithdrawals" not in status(kube)["encryption"]


def test_a_shredded_record_whose_append_failed_is_withdrawn_before_it_is_made_again(
    kube: FakeKube,
) -> None:
    """An append that raised may have been committed (a connection lost after COMMIT): the
    operator owes its withdrawal, across a restart, and writes it before the record anew."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    sink.fail = True
    run(kube, sink, DUE)
    (owed,) = status(kube)["encryption"]["owedWithdrawals"]
    assert (owed["bucket"], owed["reason"]) == ("2025-07", "EvidenceWriteFailed")
    sink.fail = False
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=1))
    assert shred_kinds(sink) == ["key.shred.cancelled", "key.shredded"]
    assert sink.of("key.shred.cancelled")[0]["reason"] == "EvidenceWriteFailed"
    assert "2025-07" not in ring(kube).buckets
    assert "owedWithdrawals" not in status(kube)["encryption"]


def test_an_outdated_crd_that_drops_the_debt_stops_the_shredding(kube: FakeKube) -> None:
    """Helm never upgrades CRDs: an older one prunes owedWithdrawals, so a debt would be held
    nowhere. Nothing is recorded or destroyed, and the condition says why."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    prune_owed_withdrawals(kube)
    run(kube, sink, DUE)
    assert "2025-07" in ring(kube).buckets and shred_kinds(sink) == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    (message,) = [c["message"] for c in status(kube)["conditions"]
                  if c["type"] == "EncryptionKeyReady"]  # fmt: skip
    assert "CRD is older" in message


def prune_owed_withdrawals(kube: FakeKube) -> None:
    """An installed CRD older than the operator: every status write loses owedWithdrawals."""
    real_patch, real_json_patch = kube.merge_patch, kube.json_patch

    def pruned(kind: str, namespace: str | None, name: str, answer: Any) -> Any:
        answer.get("status", {}).get("encryption", {}).pop("owedWithdrawals", None)
        kube.objects[(kind, namespace, name)] = answer
        return answer

    def pruning_patch(kind: str, namespace: str | None, name: str,
                      patch: Mapping[str, Any], subresource: str | None = None) -> Any:
        return pruned(kind, namespace, name,
                      real_patch(kind, namespace, name, patch, subresource=subresource))

    def pruning_json_patch(kind: str, namespace: str | None, name: str,
                           operations: Any, subresource: str | None = None) -> Any:
        return pruned(kind, namespace, name,
                      real_json_patch(kind, namespace, name, operations, subresource))

    kube.merge_patch = pruning_patch  # type: ignore[method-assign]
    kube.json_patch = pruning_json_patch  # type: ignore[method-assign]


def test_a_withdrawal_under_an_outdated_crd_is_not_lost_when_the_log_refuses_it(
    kube: FakeKube,
) -> None:
    """A shredding listed (its ring write lost a race) when the operator is upgraded and
    Helm keeps the older CRD, which prunes owedWithdrawals. A hold comes, and the evidence
    log refuses the key.shred.cancelled record: the debt cannot be held in status, so the
    listing must stay its marker; once the log is back the withdrawal is written, and the
    evidence never keeps saying destroyed about a key in the ring."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    with ring_writes_lose_a_race(kube):
        run(kube, sink, DUE)
    assert [g["bucket"] for g in status(kube)["encryption"]["shreddedBuckets"]] == ["2025-07"]
    prune_owed_withdrawals(kube)
    set_hold(kube)
    sink.fail_kinds = {"key.shred.cancelled"}
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=1))
    assert "2025-07" in ring(kube).buckets
    assert sink.of("key.shred.cancelled") == []
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyShreddingFailed")
    sink.fail_kinds = set()
    restarted(kube, sink).reconcile(KEY, now=DUE + timedelta(minutes=2))
    (cancelled,) = sink.of("key.shred.cancelled")
    assert (cancelled["bucket"], cancelled["reason"]) == ("2025-07", "LegalHold")
    assert_evidence_matches_the_ring(kube, sink)
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyShreddingHeld")


def _buckets_in_secret(kube: FakeKube) -> list[str]:
    secret = kube.objects[("Secret", "crm", RING)]
    document = json.loads(base64.b64decode(secret["data"]["keyring.json"]))
    return [k["bucket"] for k in document["keys"] if k.get("bucket")]


@pytest.mark.parametrize("bucket", ["9999-12", "9999", "9999-11"])
def test_a_bucket_at_the_calendars_end_planted_in_the_ring_is_reported_not_a_crash(
    kube: FakeKube, bucket: str
) -> None:
    """A bucket whose end is past year 9999 has no instant to expire at; planted in the
    ring, it is reported (a ring that does not parse, or a key added outside the operator),
    and the store's verdicts are still written (a reconcile that raises leaves the last)."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    secret = kube.objects[("Secret", "crm", RING)]
    secret["data"] = serialise(add_bucket_keys(ring(kube), (bucket,), T0))
    run(kube, sink, T0 + timedelta(minutes=2))
    assert conditions(kube)["EncryptionKeyReady"][0] == "False"
    run(kube, sink, DUE)
    assert "2025-07" in _buckets_in_secret(kube) and sink.of("key.shredded") == []


@pytest.mark.parametrize("bucket", ["9999-12", "9999"])
def test_a_shredded_entry_at_the_calendars_end_written_into_the_ring_is_reported(
    kube: FakeKube, bucket: str
) -> None:
    """The ring's `shredded` list is weighed before the ring is compared with status (an
    older release's shreddings are taken in when their bucket has expired); an entry whose
    bucket ends past year 9999 made that weighing raise on every pass, so the store's
    verdicts were never written again. Now the ring is reported, and nothing is destroyed."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    secret = kube.objects[("Secret", "crm", RING)]
    document = json.loads(base64.b64decode(secret["data"]["keyring.json"]))
    document["shredded"] = [{"id": 99, "bucket": bucket, "shredded": "2026-01-01T00:00:00Z"}]
    secret["data"]["keyring.json"] = base64.b64encode(json.dumps(document).encode()).decode()
    run(kube, sink, T0 + timedelta(minutes=2))
    assert conditions(kube)["EncryptionKeyReady"][0] == "False"
    run(kube, sink, DUE)
    assert "2025-07" in _buckets_in_secret(kube) and sink.of("key.shredded") == []


class Replica:
    """One operator replica's view of the shared API: its writes are fenced by its Lease, as
    Kube.may_write fences them (refused before anything is sent)."""

    WRITES = ("apply", "create", "replace", "merge_patch", "json_patch", "delete")

    def __init__(self, kube: FakeKube, leading: Callable[[], bool]) -> None:
        self.kube = kube
        self.may_write = leading
        self.after_write: Callable[[str, Any], None] | None = None

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.kube, name)
        if name not in self.WRITES:
            return found

        def fenced(*args: Any, **kwargs: Any) -> Any:
            if not self.may_write():
                raise KubeError(0, "not the leader: write refused", name)
            answer = found(*args, **kwargs)
            if self.after_write is not None:
                self.after_write(name, args)
            return answer

        return fenced


def test_a_leader_frozen_mid_shredding_records_no_shredding_once_another_leads(
    kube: FakeKube,
) -> None:
    """The leader writes its claims' debt, then freezes (SIGSTOP, a long GC, a node freeze)
    past its Lease. Another replica takes over, finds a legal hold just set and withdraws the
    debt; the key stays. Then the old leader resumes where it stopped: appending key.shredded
    there left a record of a destruction that never happens, and nothing owed to withdraw it
    (its own status writes are fenced off)."""
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    kube.server_time = DUE
    held = [True]
    old = Replica(kube, lambda: held[0])
    new = Replica(kube, lambda: True)
    settings = ReconcileSettings(evidence=sink)

    def freeze_after_the_debt(_verb: str, args: Any) -> None:
        if held[0] and "owedWithdrawals" in json.dumps(args, default=str):
            held[0] = False  # frozen past its Lease: another replica leads now
            set_hold(kube)
            Reconciler(cast(Kube, new), settings).reconcile(KEY, now=DUE + timedelta(minutes=1))

    old.after_write = freeze_after_the_debt
    with suppress(KubeError):  # its last status write is refused: the worker retries it
        Reconciler(cast(Kube, old), settings).reconcile(KEY, now=DUE)
    assert held == [False], "the scenario did not reach the debt write"
    assert "2025-07" in ring(kube).buckets
    assert sink.of("key.shredded") == [], "a replica that lost the Lease recorded a shredding"
    assert_evidence_matches_the_ring(kube, sink)

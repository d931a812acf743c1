"""Secrets from watch-fed caches (issue 11): key rings with their data, every other Secret as
metadata only; Unknown while a cache is not synced; reads by name when listing is forbidden.

The informers' list path runs for real against the in-memory API (test_cache.ListingKube, which
answers a metadata-only LIST with whole Secrets, data and all, as a careless server might: the
cache must drop it itself). Watches and threads are e2e's (e2e/test_secret_watch.py).
"""

from __future__ import annotations

import copy
import logging
import threading
from datetime import timedelta
from typing import Any, cast

import pytest

from dataward.controller.cache import Caches
from dataward.controller.kube import Kube, KubeError
from dataward.controller.operator import CACHED_KINDS, SECRET_KINDS, keys_for_event
from dataward.controller.reconcile import KEY_RING_CACHE, Reconciler, ReconcileSettings
from dataward.controller.subjects import SubjectRequests, SubjectSettings
from dataward.keys.ring import generate_ring, parse_ring, serialise
from dataward.model.store import parse_store
from dataward.subjects.request import parse_request
from tests.controller.test_cache import ListingKube
from tests.controller.test_reconcile import KEY, RING, T0, conditions, sample_cluster, status
from tests.model.samples import STORE
from tests.subjects.samples import request

CREDENTIALS = "crm-postgres-purger"


class ForbiddingKube(ListingKube):
    """Refuses to LIST Secrets (the chart's watchSecrets: false): 403, as RBAC does."""

    def _call(self, method: str, path: str, *, what: str, **rest: Any) -> Any:
        if path.endswith("/secrets"):
            raise KubeError(403, "Forbidden", what)
        return super()._call(method, path, what=what, **rest)


def _caches(kube: ListingKube, events: list[tuple[str, Any, Any]] | None = None) -> Caches:
    def on_event(kind: str, old: Any, new: Any) -> None:
        if events is not None:
            events.append((kind, old, new))

    return Caches(cast(Kube, kube), (*CACHED_KINDS, *SECRET_KINDS), (), 3600, on_event,
                  lambda kind, namespace: None)  # fmt: skip


def _relist(caches: Caches) -> None:
    for informer in caches.informers.values():
        informer._relist()


def _reconcile(kube: ListingKube, caches: Caches, minutes: int = 0) -> Reconciler:
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minutes))
    return reconciler


def _secret_reads(kube: ListingKube) -> list[tuple[str, str, str]]:
    return [c for c in kube.calls if c[1] == "Secret" and c[0] == "get"]


def _settled() -> tuple[ListingKube, Caches]:
    """A store reconciled once (ring made, status written) and every cache listed since."""
    kube = sample_cluster(ListingKube())
    caches = _caches(kube)
    _relist(caches)
    _reconcile(kube, caches)
    _relist(caches)
    kube.calls.clear()
    return kube, caches


def test_a_settled_store_reads_no_secret_from_the_api_and_writes_nothing() -> None:
    kube, caches = _settled()
    _reconcile(kube, caches, minutes=5)
    assert _secret_reads(kube) == []
    assert kube.writes() == []
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")
    assert conditions(kube)["EncryptionKeyReady"][0] == "True"


def test_no_secret_but_a_key_ring_keeps_its_data_in_the_cache() -> None:
    kube, caches = _settled()
    other = caches.informers[("Secret", None)]
    cached = [o for objs in other.by_namespace.values() for o in objs.values()]
    assert {o["metadata"]["name"] for o in cached} >= {CREDENTIALS, RING}
    for obj in cached:  # the fake server sent data; the cache must not keep it
        assert set(obj) == {"kind", "metadata"}, obj
        assert "annotations" not in obj["metadata"]
    ring = caches.get(KEY_RING_CACHE, "crm", RING)
    assert ring is not None and ring["data"] == kube.objects[("Secret", "crm", RING)]["data"]
    assert caches.get(KEY_RING_CACHE, "crm", CREDENTIALS) is None  # not labelled as a ring


def test_credentials_absent_from_a_synced_cache_are_missing() -> None:
    kube, caches = _settled()
    kube.objects.pop(("Secret", "crm", CREDENTIALS))
    _relist(caches)  # what the watch would have delivered
    _reconcile(kube, caches, minutes=1)
    assert conditions(kube)["PurgeScheduled"] == ("False", "CredentialsSecretMissing")
    assert _secret_reads(kube) == []


def test_credentials_in_a_cache_that_failed_are_unknown_never_missing() -> None:
    kube, caches = _settled()
    kube.objects.pop(("Secret", "crm", CREDENTIALS))  # gone, but the cache cannot tell
    caches.informers[("Secret", None)]._fail("HTTP 500 Internal Server Error")
    _reconcile(kube, caches, minutes=1)
    assert conditions(kube)["PurgeScheduled"] == ("Unknown", "CredentialsSecretUnreadable")
    assert conditions(kube)["Ready"][0] != "True"


def test_a_ring_cache_that_failed_is_unknown_and_creates_nothing() -> None:
    kube, caches = _settled()
    kube.objects.pop(("Secret", "crm", RING))
    caches.informers[(KEY_RING_CACHE, None)]._fail("HTTP 500 Internal Server Error")
    _reconcile(kube, caches, minutes=1)
    assert conditions(kube)["EncryptionKeyReady"] == ("Unknown", "KeyRingUnreadable")
    assert ("create", "Secret", RING) not in kube.calls
    assert ("Secret", "crm", RING) not in kube.objects


def test_a_ring_the_cache_has_not_seen_is_read_by_name_not_made_twice() -> None:
    """The cache says "no ring" (its labels were removed, or the watch is behind); the API has
    the operator's own ring: one GET finds it, nothing is created, the ring is still ours."""
    kube, caches = _settled()
    ring = kube.objects[("Secret", "crm", RING)]
    before = copy.deepcopy(ring["data"])
    ring["metadata"]["labels"] = {}
    _relist(caches)
    assert caches.get(KEY_RING_CACHE, "crm", RING) is None
    _reconcile(kube, caches, minutes=1)
    assert ("get", "Secret", RING) in kube.calls
    assert not [c for c in kube.writes() if c[1] == "Secret"]
    assert kube.objects[("Secret", "crm", RING)]["data"] == before
    assert conditions(kube)["EncryptionKeyReady"][0] == "True"


@pytest.mark.parametrize("seen", [True, False], ids=["in-the-secrets-cache", "in-no-cache"])
def test_a_planted_ring_the_cache_has_not_seen_is_not_adopted(seen: bool) -> None:
    """A new store; someone made a Secret under its ring's name without the ring labels. The
    ring cache misses it. Seen by the Secrets' metadata cache, it is read by name before any
    create; seen by no cache yet (made a moment ago), the operator's create of the ring is
    refused (409: the name is taken). Either way the Secret is neither used nor replaced nor
    recorded as the store's, in this pass or the next."""
    kube = sample_cluster(ListingKube())
    planted = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": RING, "namespace": "crm"},
        "data": serialise(generate_ring(T0 - timedelta(days=1))),
    }
    caches = _caches(kube)
    if not seen:
        _relist(caches)
    kube._store(copy.deepcopy(planted))
    version = kube.objects[("Secret", "crm", RING)]["metadata"]["resourceVersion"]
    if seen:
        _relist(caches)
    assert caches.get(KEY_RING_CACHE, "crm", RING) is None
    assert caches.exists("Secret", "crm", RING) is seen
    for minutes in (0, 1):
        _reconcile(kube, caches, minutes=minutes)
        _relist(caches)
        # At most a create the API refuses: nothing that could change the planted Secret.
        refused = set() if seen else {("create", "Secret", RING)}
        assert {c for c in kube.writes() if c[1] == "Secret"} <= refused
        assert kube.objects[("Secret", "crm", RING)]["data"] == planted["data"]
        assert kube.objects[("Secret", "crm", RING)]["metadata"]["resourceVersion"] == version
        assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyRingNotCreatedByOperator")
        encryption = status(kube).get("encryption") or {}
        recorded = {k["fingerprint"] for k in encryption.get("keys", [])}
        assert not recorded & set(parse_ring(planted["data"]).fingerprints().values())


def test_the_operators_new_ring_is_in_both_caches_at_once_without_data_in_the_other() -> None:
    kube = sample_cluster(ListingKube())
    caches = _caches(kube)
    _relist(caches)
    _reconcile(kube, caches)  # creates the ring
    ring = caches.get(KEY_RING_CACHE, "crm", RING)
    assert ring is not None and ring["data"]
    plain = caches.get("Secret", "crm", RING)
    assert plain is not None and "data" not in plain
    kube.calls.clear()
    _reconcile(kube, caches, minutes=1)  # before any watch event: no second create, no GET
    assert _secret_reads(kube) == [] and not [c for c in kube.writes() if c[1] == "Secret"]


def test_a_credentials_secret_event_queues_the_store_that_names_it_only() -> None:
    kube, caches = _settled()
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)
    gone = {"metadata": {"name": CREDENTIALS, "namespace": "crm", "resourceVersion": "9"}}
    assert keys_for_event("Secret", gone, None, reconciler) == ([KEY], [])
    other = {"metadata": {"name": "helm-release", "namespace": "crm", "resourceVersion": "9"}}
    assert keys_for_event("Secret", None, other, reconciler) == ([], [])
    ring = caches.get(KEY_RING_CACHE, "crm", RING)
    assert keys_for_event(KEY_RING_CACHE, ring, None, reconciler) == ([KEY], [])


def test_a_forbidden_secret_list_falls_back_to_reads_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = sample_cluster(ForbiddingKube())
    caches = _caches(kube)
    stop = threading.Event()
    with caplog.at_level(logging.WARNING, logger="dataward.cache"):
        for key, informer in caches.informers.items():
            if key[0] in (KEY_RING_CACHE, "Secret"):
                informer.run(stop)  # returns on the 403: the kind is read by name from now on
            else:
                informer._relist()
    assert caches.listed() and caches.synced()
    assert not caches.watching("Secret", "crm") and not caches.watching(KEY_RING_CACHE, "crm")
    forbidden = [r for r in caplog.records if "forbidden" in r.getMessage()]
    assert len(forbidden) == 2  # once per cache, not once per read
    _reconcile(kube, caches)
    kube.calls.clear()
    _reconcile(kube, caches, minutes=1)
    assert sorted(_secret_reads(kube)) == [("get", "Secret", CREDENTIALS), ("get", "Secret", RING)]
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")


def test_a_requests_identifier_secret_is_unknown_while_the_cache_is_not_synced() -> None:
    kube = sample_cluster(ListingKube())
    dsr = request()
    caches = _caches(kube)
    _relist(caches)
    caches.informers[("Secret", None)]._fail("HTTP 500 Internal Server Error")
    requests = SubjectRequests(cast(Kube, kube), SubjectSettings(), caches)
    blocked = requests._precondition(parse_request(dsr))
    assert blocked is not None and blocked.status == "Unknown"
    assert not _secret_reads(kube)


def test_an_identifier_secret_event_finds_the_requests_that_name_it_only() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(request())
    kube._store({**request(), "metadata": {"name": "case-9", "namespace": "privacy"}, "spec": {
        **request()["spec"], "subject": {"identifierSecretRef": {"name": "case-9-identifier"}}}})
    caches = _caches(kube)
    _relist(caches)
    requests = SubjectRequests(cast(Kube, kube), SubjectSettings(), caches)
    kube.calls.clear()
    assert requests.keys_for_secret("privacy", "case-4711-identifier") == [
        ("privacy", "case-4711")]
    assert requests.keys_for_secret("privacy", "unrelated") == []
    assert requests.keys_for_secret("crm", "case-4711-identifier") == []
    assert kube.calls == []  # from the cache: a Secret event costs no request
    caches = _caches(kube)
    caches.drop("DataSubjectRequest")  # the CRD not served: no LIST per Secret event either
    _relist(caches)
    kube.calls.clear()
    no_crd = SubjectRequests(cast(Kube, kube), SubjectSettings(), caches)
    assert no_crd.keys_for_secret("privacy", "case-4711-identifier") == []
    assert kube.calls == []


# A new store's first ring (issue 11): made without a GET of the Secret or of the store when
# the caches and a resourceVersion precondition prove there is none yet; each case where they
# cannot falls back to the reads, and nothing the operator did not make is written or adopted.


class _PatchesKube(ListingKube):
    """ListingKube keeping every merge patch's body, and how the API answered it."""

    def __init__(self) -> None:
        super().__init__()
        self.patches: list[tuple[dict[str, Any], str]] = []

    def merge_patch(self, kind: str, namespace: str | None, name: str, patch: Any,
                    subresource: str | None = None) -> dict[str, Any]:
        try:
            answer = super().merge_patch(kind, namespace, name, patch, subresource)
        except KubeError as error:
            self.patches.append((copy.deepcopy(patch), f"HTTP {error.status}"))
            raise
        self.patches.append((copy.deepcopy(patch), "ok"))
        return answer


def _ring_fingerprints(kube: ListingKube) -> set[str]:
    return set(parse_ring(kube.objects[("Secret", "crm", RING)]["data"]).fingerprints().values())


def _recorded(kube: ListingKube) -> set[str]:
    return {k["fingerprint"] for k in (status(kube).get("encryption") or {}).get("keys", [])}


def test_a_new_stores_ring_is_made_without_reading_the_store_or_the_secret_first() -> None:
    kube = sample_cluster(_PatchesKube())
    caches = _caches(kube)
    _relist(caches)
    cached = caches.get("PersonalDataStore", *KEY)
    assert cached is not None
    _reconcile(kube, caches)
    assert [c for c in kube.calls if c[0] == "get"] == []
    assert [c for c in kube.writes() if c[1] == "Secret"] == [("create", "Secret", RING)]
    # The pending record was written at the version the cache held, before the create.
    pending = [p for p, _ in kube.patches if (p.get("status") or {}).get("encryption", {})
               .get("pending")]  # fmt: skip
    assert [p["metadata"] for p in pending] == [
        {"resourceVersion": cached["metadata"]["resourceVersion"]}]
    assert _recorded(kube) == _ring_fingerprints(kube)
    assert conditions(kube)["EncryptionKeyReady"][0] == "True"
    _relist(caches)
    kube.calls.clear()
    _reconcile(kube, caches, minutes=1)
    assert [c for c in kube.writes() if c[1] == "Secret"] == []
    assert conditions(kube)["EncryptionKeyReady"][0] == "True"


def test_the_finalizer_written_just_before_leaves_the_cached_version_current() -> None:
    """deletionPolicy: Delete: the grace finalizer is patched onto the store in the same pass,
    just before the ring; its answer is the cached version, so the precondition holds and no
    read is sent."""
    store = copy.deepcopy(STORE)
    store["spec"]["deletionPolicy"] = "Delete"
    kube = sample_cluster(_PatchesKube(), store=store)
    caches = _caches(kube)
    _relist(caches)
    _reconcile(kube, caches)
    assert ("patch", "PersonalDataStore", KEY[1]) in kube.calls  # the finalizer
    assert [c for c in kube.calls if c[0] == "get"] == []
    assert "HTTP 409" not in [answer for _, answer in kube.patches]
    assert _recorded(kube) == _ring_fingerprints(kube)


def test_a_ring_status_records_that_the_cache_has_not_seen_is_not_made_twice() -> None:
    """A new leader whose caches lag: the leader before it made the ring and recorded it, and
    neither the store's status nor the ring has reached these caches. The pending record's
    precondition (the cached version) is refused; the reads find the ring, and it is ours."""
    kube = sample_cluster(_PatchesKube())
    caches = _caches(kube)
    _relist(caches)
    Reconciler(cast(Kube, kube), ReconcileSettings()).reconcile(KEY, now=T0)  # the last leader
    made = copy.deepcopy(kube.objects[("Secret", "crm", RING)])
    recorded = _recorded(kube)
    assert recorded == _ring_fingerprints(kube)
    assert (caches.get("PersonalDataStore", *KEY) or {}).get("status") is None
    assert caches.get(KEY_RING_CACHE, "crm", RING) is None
    kube.calls.clear()
    kube.patches.clear()
    _reconcile(kube, caches, minutes=1)
    assert [c for c in kube.writes() if c[1] == "Secret"] == []
    assert kube.objects[("Secret", "crm", RING)] == made
    assert _recorded(kube) == recorded
    assert conditions(kube)["EncryptionKeyReady"][0] == "True"
    assert [answer for p, answer in kube.patches if "resourceVersion" in p.get("metadata", {})
            and "status" in p] == ["HTTP 409"]  # fmt: skip
    assert ("get", "PersonalDataStore", KEY[1]) in kube.calls


def test_a_pending_ring_with_its_labels_removed_and_nothing_cached_is_still_ours() -> None:
    """The last leader recorded a ring as pending and created it, then stopped; someone removed
    the ring's labels. This operator's caches have seen neither: the ring it finds is the one
    status records, kept as it is, and no second ring is made."""
    kube = sample_cluster(_PatchesKube())
    caches = _caches(kube)
    _relist(caches)
    store = parse_store(kube.objects[("PersonalDataStore", *KEY)])
    assert Reconciler(cast(Kube, kube), ReconcileSettings())._create_ring(store, RING, T0)
    assert (status(kube)["encryption"] or {}).get("pending") is True
    kube.objects[("Secret", "crm", RING)]["metadata"]["labels"] = {}
    made = copy.deepcopy(kube.objects[("Secret", "crm", RING)])
    kube.calls.clear()
    _reconcile(kube, caches, minutes=1)
    assert [c for c in kube.writes() if c[1] == "Secret"] == []
    assert kube.objects[("Secret", "crm", RING)] == made
    assert _recorded(kube) == _ring_fingerprints(kube)
    assert conditions(kube)["EncryptionKeyReady"][0] == "True"


def test_a_ring_status_records_but_that_is_gone_is_not_made_again_from_a_lagging_cache() -> None:
    """Status records a ring (the last leader's) that has since been deleted; these caches saw
    neither. A new ring could not decrypt what the old one encrypted: none is made."""
    kube = sample_cluster(_PatchesKube())
    caches = _caches(kube)
    _relist(caches)
    Reconciler(cast(Kube, kube), ReconcileSettings()).reconcile(KEY, now=T0)
    recorded = _recorded(kube)
    del kube.objects[("Secret", "crm", RING)]
    kube.calls.clear()
    _reconcile(kube, caches, minutes=1)
    assert ("create", "Secret", RING) not in kube.calls
    assert ("Secret", "crm", RING) not in kube.objects
    assert _recorded(kube) == recorded
    assert conditions(kube)["EncryptionKeyReady"] == ("False", "KeyRingMissing")


def test_a_store_changed_since_its_cached_version_reads_first_and_gets_one_ring() -> None:
    kube = sample_cluster(_PatchesKube())
    caches = _caches(kube)
    _relist(caches)
    kube.merge_patch("PersonalDataStore", *KEY, {"metadata": {"annotations": {"a": "b"}}})
    kube.calls.clear()
    _reconcile(kube, caches)
    assert ("get", "PersonalDataStore", KEY[1]) in kube.calls  # the precondition was refused
    assert [c for c in kube.writes() if c[1] == "Secret"] == [("create", "Secret", RING)]
    assert _recorded(kube) == _ring_fingerprints(kube)
    assert conditions(kube)["EncryptionKeyReady"][0] == "True"


def test_a_new_store_whose_ring_cache_is_not_synced_gets_no_ring_and_no_record() -> None:
    kube = sample_cluster(ListingKube())
    caches = _caches(kube)
    _relist(caches)
    caches.informers[(KEY_RING_CACHE, None)]._fail("HTTP 500 Internal Server Error")
    _reconcile(kube, caches)
    assert [c for c in kube.writes() if c[1] == "Secret"] == []
    assert "encryption" not in status(kube)
    assert conditions(kube)["EncryptionKeyReady"] == ("Unknown", "KeyRingUnreadable")


def test_a_planted_ring_the_cache_has_not_seen_is_adopted_only_when_the_store_asks() -> None:
    store = copy.deepcopy(STORE)
    store["spec"]["encryption"] = {**store["spec"].get("encryption", {}),
                                   "adoptExistingKeyRing": True}  # fmt: skip
    kube = sample_cluster(ListingKube(), store=store)
    planted = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": RING, "namespace": "crm"},
        "data": serialise(generate_ring(T0 - timedelta(days=1))),
    }
    caches = _caches(kube)
    _relist(caches)
    kube._store(copy.deepcopy(planted))  # after the caches listed: the create meets it (409)
    _reconcile(kube, caches)
    assert ("create", "Secret", RING) in kube.calls
    assert kube.objects[("Secret", "crm", RING)]["data"] == planted["data"]
    assert _recorded(kube) == set(parse_ring(planted["data"]).fingerprints().values())
    assert status(kube)["encryption"].get("pending") is not True


class _OldCrdKube(ListingKube):
    """An API server whose CRD predates status.encryption.pending: it prunes the mark."""

    def merge_patch(self, kind: str, namespace: str | None, name: str, patch: Any,
                    subresource: str | None = None) -> dict[str, Any]:
        answer = super().merge_patch(kind, namespace, name, patch, subresource)
        (self.objects[(kind, namespace, name)].get("status", {}).get("encryption") or {}).pop(
            "pending", None)
        (answer.get("status", {}).get("encryption") or {}).pop("pending", None)
        return answer


def test_an_outdated_crd_that_drops_the_pending_mark_gets_no_ring_from_the_caches_either() -> None:
    kube = sample_cluster(_OldCrdKube())
    caches = _caches(kube)
    _relist(caches)
    _reconcile(kube, caches)
    assert ("create", "Secret", RING) not in kube.calls
    assert ("Secret", "crm", RING) not in kube.objects
    assert conditions(kube)["EncryptionKeyReady"][0] != "True"
